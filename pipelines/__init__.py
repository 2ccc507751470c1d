"""Every pipeline of the suite, by the name run_local.py and compile.py use."""

from collections.abc import Mapping

from components._common.registry import check_model_name
from pipelines.monitoring_pipeline import monitoring_pipeline
from pipelines.rollback_pipeline import rollback_pipeline
from pipelines.training_pipeline import training_pipeline

PIPELINES = {
    "training": training_pipeline,
    "monitoring": monitoring_pipeline,
    "rollback": rollback_pipeline,
}


def check_arguments(arguments: Mapping[str, object]) -> None:
    """Refuses, before a run starts, an argument a step would refuse only after the steps before it have run: a
    ``model_name`` the registry cannot take (registry.check_model_name, which register_model applies after training).
    ValueError naming the parameter. A value that is no text is left to KFP, which refuses it for a `str`."""
    model_name = arguments.get("model_name")
    if isinstance(model_name, str):
        check_model_name(model_name)
