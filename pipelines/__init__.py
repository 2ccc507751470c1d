"""Every pipeline of the suite, by the name run_local.py and compile.py use."""

from pipelines.training_pipeline import training_pipeline

PIPELINES = {
    "training": training_pipeline,
}
