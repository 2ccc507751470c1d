"""Every pipeline of the suite, by the name run_local.py and compile.py use."""

from pipelines.monitoring_pipeline import monitoring_pipeline
from pipelines.rollback_pipeline import rollback_pipeline
from pipelines.training_pipeline import training_pipeline

PIPELINES = {
    "training": training_pipeline,
    "monitoring": monitoring_pipeline,
    "rollback": rollback_pipeline,
}
