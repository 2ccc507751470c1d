"""The KFP component select_model: its artifacts, handed to ``logic.select_model_directory``."""

from kfp import dsl
from kfp.dsl import Input, Markdown, Metrics, Model, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def select_model(
    models: Input[list[Model]],
    model: Output[Model],
    leaderboard: Output[Markdown],
    metrics: Output[Metrics],
):
    """Passes on the candidate model with the best validation score on the primary metric (r2 or f1_macro).

    A single candidate is passed on even without a validation score (trained with `validation_fraction` 0); several
    candidates must all have one.

    Args:
        models: The candidate model directories (`dsl.Collected` of train_model's `model` in a `dsl.ParallelFor`).
        model: A copy of the winning model directory.
        leaderboard: Markdown table of the candidates, best first.
        metrics: The winner's validation score (none when it was not validated), its index and the number of
            candidates.
    """
    from pathlib import Path

    from components.select_model.logic import render_leaderboard, select_model_directory, selection_metrics

    selection = select_model_directory([candidate.path for candidate in models], model.path)
    model.metadata.update(models[selection.winner.index].metadata)
    board = render_leaderboard(selection)
    Path(leaderboard.path).write_text(board)
    for name, value in selection_metrics(selection).items():
        metrics.log_metric(name, value)
    print(board)
