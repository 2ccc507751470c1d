"""The KFP component train_model: its parameters and artifacts, handed to ``logic.train_model_directory``."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def train_model(
    train: Input[Dataset],
    schema: Input[Artifact],
    reference_profile: Input[Artifact],
    target: str,
    task: str,
    model: Output[Model],
    metrics: Output[Metrics],
    candidate: dict = {"model_type": "hist_gradient_boosting", "hyperparameters": {}},  # noqa: B006 (never mutated)
    seed: int = 42,
    validation_fraction: float = 0.2,
    data_content_sha256: str = "",
    sensitive_columns: list = [],  # noqa: B006 (never mutated)
    max_training_rows: int = 500000,
):
    """Fits a scikit-learn Pipeline (imputation, scaling, one-hot encoding and the estimator) on the train set.

    Args:
        train: The training rows.
        schema: The data contract from validate_data, stored with the model as `schema.json`: the reference of
            later validations and what the model server holds requests to. Its column roles decide the features:
            columns it excludes (by `exclude_columns` or as identifiers) are not used.
        reference_profile: The training rows' profile from prepare_data, stored with the model as
            `reference_profile.json`: the reference for drift detection.
        target: Name of the column to predict.
        task: `regression` or `classification`.
        model: The model directory: `model.joblib` (the fitted Pipeline), `model.json` (its model card),
            `schema.json` and `reference_profile.json`.
        metrics: Training-set and validation scores, fit time and row count.
        candidate: The configuration to train: `model_type` (`hist_gradient_boosting`, `random_forest` or
            `linear`, i.e. Ridge / LogisticRegression) and `hyperparameters` (estimator parameters, e.g.
            `{"max_depth": 6}`; unknown names fail the step). A random forest fitted on more than 100,000 rows
            fits each tree on a bootstrap sample of 100,000 (`max_samples` as a fraction, recorded in the model
            card) unless the candidate sets `max_samples` or `bootstrap: false`: it fits several times faster in a
            fraction of the memory, at the same score.
        seed: Random state of the estimator (unless given in hyperparameters) and of the validation split.
        validation_fraction: Share of the training rows held out to score the candidate (model selection
            compares these scores); the model is then refitted on every row. 0 skips validation: only with a single
            candidate, which select_model then passes on unvalidated.
        data_content_sha256: Hash of the ingested data (ingest_data's `content_sha256`), recorded in the model
            card as lineage; register_model tags the registered version with it.
        sensitive_columns: Columns holding groups of people to compare (e.g. `["sex", "age_band"]`), features or
            columns excluded from the features (still in the train set); not the target. The model card lists each
            one's 10 most frequent groups in the training rows (`sensitive_groups`): the model server counts
            predictions per group of these columns, the rest as `(other)`. Unknown names fail the step.
        max_training_rows: The most labelled rows fitted (0: every row). A larger train set is sampled while it is
            read in batches, so memory holds the sample only: seeded (by `seed`), stratified for classification
            (every class in proportion, each kept), the same rows for the same data. The model card records both
            sizes (`training_rows`, `training_rows_available`); evaluation and the gate still score the whole test
            set. The default 500,000 comes from the learning curve of the default candidates in
            docs/benchmarks.md: twice the rows or more changes their scores by at most 0.0033, while the random
            forest's memory keeps growing.
    """
    from components.train_model.logic import card_metrics, train_model_directory
    from model_bundle import PROFILE_FILE, SCHEMA_FILE

    card = train_model_directory(
        train.path,
        {SCHEMA_FILE: schema.path, PROFILE_FILE: reference_profile.path},
        model.path,
        target=target,
        task=task,
        candidate=candidate,
        seed=seed,
        validation_fraction=validation_fraction,
        data_content_sha256=data_content_sha256,
        sensitive_columns=sensitive_columns,
        max_training_rows=max_training_rows,
    )
    model.metadata.update({"sha256": card.sha256, "task": task, "estimator": card.estimator})
    for name, value in card_metrics(card).items():
        metrics.log_metric(name, value)
    sampled = card.training_rows < card.training_rows_available
    of = f" (a sample of {card.training_rows_available}: max_training_rows)" if sampled else ""
    print(f"trained {card.estimator} on {card.training_rows} rows{of} in {card.fit_seconds} s")
