from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def ingest_data(
    source_uri: str,
    dataset: Output[Dataset],
) -> NamedTuple("Outputs", [("rows", int), ("content_sha256", str)]):
    """Reads raw data from a URI into a Parquet dataset.

    Args:
        source_uri: Where the data is: `sample://house-prices?rows=N&seed=S`, a local path or `file://` URI to a
            CSV, Parquet or JSON Lines file.
        dataset: The data as Parquet, with rows, columns, content hash and source in its metadata.

    Returns:
        rows: Number of rows read.
        content_sha256: sha256 of the data itself (format independent), recorded as lineage with the model.
    """
    from components._common.datasets import write_dataset
    from components.ingest_data.logic import ingest

    info = write_dataset(ingest(source_uri), dataset.path)
    dataset.metadata.update({**info, "source": source_uri})
    print(f"ingested {info['rows']} rows x {info['columns']} columns from {source_uri}")
    return (info["rows"], info["content_sha256"])
