from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def prepare_data(
    dataset: Input[Dataset],
    target: str,
    task: str,
    train: Output[Dataset],
    test: Output[Dataset],
    metrics: Output[Metrics],
    test_fraction: float = 0.2,
    seed: int = 42,
    drop_duplicates: bool = True,
):
    """Drops rows without a target (and exact duplicates), then splits train and test sets.

    Args:
        dataset: The validated data.
        target: Name of the column to predict.
        task: `regression` or `classification` (classification splits are stratified).
        train: The training rows as Parquet.
        test: The held-out rows as Parquet, scored by evaluation and by the champion/challenger gate.
        metrics: Row counts of each set and of the rows dropped, by reason.
        test_fraction: Share of rows held out for testing, between 0 and 1.
        seed: Seed of the split; the same seed and data give the same split.
        drop_duplicates: Drop rows that repeat another row exactly.
    """
    from components._common.datasets import read_dataset, write_dataset
    from components.prepare_data.logic import prepare

    prepared = prepare(
        read_dataset(dataset.path),
        target=target,
        task=task,
        test_fraction=test_fraction,
        seed=seed,
        drop_duplicates=drop_duplicates,
    )
    train.metadata.update(write_dataset(prepared.train, train.path))
    test.metadata.update(write_dataset(prepared.test, test.path))
    metrics.log_metric("train_rows", len(prepared.train))
    metrics.log_metric("test_rows", len(prepared.test))
    metrics.log_metric("dropped_missing_target", prepared.dropped_missing_target)
    metrics.log_metric("dropped_duplicates", prepared.dropped_duplicates)
    print(
        f"train {len(prepared.train)} rows, test {len(prepared.test)} rows; dropped "
        f"{prepared.dropped_missing_target} without target and {prepared.dropped_duplicates} duplicates"
    )
