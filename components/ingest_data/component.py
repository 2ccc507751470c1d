"""The ingest_data component: reads the source into a Parquet dataset with its lineage (decisions in logic.py)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def ingest_data(
    dataset: Output[Dataset],
    source_uri: str = "",
    csv_delimiter: str = "",
    csv_encoding: str = "",
    csv_decimal: str = "",
    # Deprecated, kept for one release; `= None` is how KFP 2.17 compiles an optional parameter.
    data_uri: str = None,  # noqa: RUF013
) -> NamedTuple("Outputs", [("rows", int), ("content_sha256", str), ("source_uri", str)]):
    """Reads raw data from a URI into a Parquet dataset.

    Fails, naming the file and the problem, on: a missing path, object, bucket or URL (HTTP errors with their
    status), an empty file, a header without rows, a file that is not in the format its extension says, bytes
    the encoding cannot decode, a CSV row with another number of fields than the header (a truncated last line),
    a CSV quote that never closes, repeated column names, a column without a name (a blank CSV header cell,
    named by its position), or files of one glob whose columns or column types differ, or a container memory
    limit below what reading needs. CSV values are parsed as `pandas.read_csv`
    parses them by default (dates stay text), JSON Lines values as `pandas.read_json(lines=True)` types them.
    CSV, Parquet and JSON Lines are streamed (blocks of about 16 MB written and hashed as they are read), so
    memory does not grow with the rows.

    Args:
        dataset: The data as Parquet, with rows, columns, content hash, source URI, bytes read and the files read
            in its metadata.
        source_uri: Where the data is: `sample://house-prices?rows=N&seed=S`; a local path, `file://` URI or local
            glob (`data/*.csv`); `gs://bucket/path/file.csv` or `gs://bucket/prefix/*.csv`; or an `https://` /
            `http://` URL. Formats by extension: CSV (`.csv`, `.tsv`, `.csv.gz`), Parquet (`.parquet`, `.pq`),
            JSON Lines (`.jsonl`, `.ndjson`). A glob's files are read in name order and concatenated only when
            they have the same columns with compatible types. Credentials come from the environment (Application
            Default Credentials for `gs://`), never from parameters. A download meeting a dropped connection, a
            timeout or a 408/429/5xx answer is tried again (4 tries, after 5, 10 and 20 s or the server's
            Retry-After); a 404 fails at once. Required (or the deprecated `data_uri`).
        csv_delimiter: CSV field delimiter, one character (or `tab`); empty detects it among `,` `;` tab `|`
            (a `.tsv` file is tab-separated).
        csv_encoding: CSV text encoding (a Python codec name such as `latin-1` or `cp1252`); empty means UTF-8,
            with or without a byte-order mark.
        csv_decimal: CSV decimal mark, `.` or `,` (`102,5`, as Excel writes numbers in many locales); empty means
            `.`, and then a column whose every value is a number with a decimal comma is refused, naming it: set
            `,` to read such columns as numbers, or `.` to keep them as text.
        data_uri: Deprecated: use `source_uri`.

    Returns:
        rows: Number of rows read.
        content_sha256: sha256 of the data itself (format independent), recorded as lineage with the model.
        source_uri: The URI that was read (from `source_uri`, or the deprecated `data_uri`), for the lineage the
            model is registered with.
    """
    from components._common.policies import renamed
    from components.ingest_data.logic import ingest_source

    source_uri = renamed("data_uri", data_uri, "source_uri", source_uri).strip()
    written = ingest_source(
        source_uri, dataset.path, csv_delimiter=csv_delimiter, csv_encoding=csv_encoding, csv_decimal=csv_decimal
    )
    info = written.info
    dataset.metadata.update({**info, "source_uri": source_uri, **written.metadata()})
    print(
        f"ingested {info['rows']} rows x {info['columns']} columns from {source_uri} "
        f"({len(written.files)} file(s), {written.bytes} bytes)"
    )
    return (info["rows"], info["content_sha256"], source_uri)
