"""ingest_data called as the pipeline calls it (``python_func``), with a local output artifact."""

from __future__ import annotations

from kfp import dsl

from components._common.datasets import read_dataset
from components.ingest_data.component import ingest_data

SAMPLE = "sample://house-prices?rows=200&seed=5"


def test_ingest_writes_parquet_with_lineage_metadata(artifact):
    dataset = artifact(dsl.Dataset, "dataset")

    rows, content_sha256, source_uri = ingest_data.python_func(source_uri=SAMPLE, dataset=dataset)

    frame = read_dataset(dataset.path)
    assert rows == len(frame) == 200
    assert dataset.metadata["content_sha256"] == content_sha256
    assert dataset.metadata["source_uri"] == source_uri == SAMPLE
