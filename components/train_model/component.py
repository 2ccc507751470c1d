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
            `{"max_depth": 6}`; unknown names fail the step).
        seed: Random state of the estimator (unless given in hyperparameters) and of the validation split.
        validation_fraction: Share of the training rows held out to score the candidate (model selection
            compares these scores); the model is then refitted on every row. 0 skips validation.
        data_content_sha256: Hash of the ingested data, recorded in the model card as lineage.
    """
    import dataclasses
    import json

    from components._common.datasets import read_dataset
    from components.train_model.logic import parse_candidate
    from components.train_model.logic import train as fit
    from model_bundle import PROFILE_FILE, SCHEMA_FILE, excluded_columns, save

    documents = {}
    for name, artifact in ((SCHEMA_FILE, schema), (PROFILE_FILE, reference_profile)):
        with open(artifact.path) as stream:
            documents[name] = json.load(stream)
    model_type, hyperparameters = parse_candidate(candidate)
    pipeline, card = fit(
        read_dataset(train.path),
        target=target,
        task=task,
        model_type=model_type,
        hyperparameters=hyperparameters,
        seed=seed,
        validation_fraction=validation_fraction,
        excluded_columns=excluded_columns(documents[SCHEMA_FILE]),  # the schema's column roles
    )
    card = save(model.path, pipeline, dataclasses.replace(card, data_content_sha256=data_content_sha256), documents)
    model.metadata.update({"sha256": card.sha256, "task": task, "estimator": card.estimator})
    for name, value in card.training_scores.items():
        metrics.log_metric(f"train_{name}", value)
    for name, value in (card.validation_scores or {}).items():
        metrics.log_metric(f"validation_{name}", value)
    metrics.log_metric("fit_seconds", card.fit_seconds)
    metrics.log_metric("training_rows", card.training_rows)
    print(f"trained {card.estimator} on {card.training_rows} rows in {card.fit_seconds} s")
