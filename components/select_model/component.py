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

    Args:
        models: The candidate model directories (`dsl.Collected` of train_model's `model` in a `dsl.ParallelFor`).
        model: A copy of the winning model directory.
        leaderboard: Markdown table of the candidates, best first.
        metrics: The winner's validation score, its index and the number of candidates.
    """
    import shutil

    from components.select_model.logic import render_leaderboard, select
    from model_bundle import read_card

    selection = select([read_card(candidate.path) for candidate in models])
    shutil.copytree(models[selection.winner.index].path, model.path, dirs_exist_ok=True)
    model.metadata.update(models[selection.winner.index].metadata)
    with open(leaderboard.path, "w") as stream:
        stream.write(render_leaderboard(selection))
    metrics.log_metric(f"validation_{selection.metric}", selection.winner.validation_score)
    metrics.log_metric("winner_index", selection.winner.index)
    metrics.log_metric("candidates", len(selection.ranking))
    print(render_leaderboard(selection))
