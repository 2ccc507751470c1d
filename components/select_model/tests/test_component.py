"""select_model called as the pipeline calls it (``python_func``), on candidate model directories."""

from __future__ import annotations

from pathlib import Path

from kfp import dsl

from components.select_model.component import select_model
from components.train_model.logic import train
from model_bundle import load, read_card, save


def test_select_passes_on_a_copy_of_the_best_candidate_with_a_leaderboard(houses, artifact):
    models = []
    for index, hyperparameters in enumerate(({"max_iter": 2, "max_depth": 1}, {"max_iter": 50})):
        pipeline, card = train(houses, "price", "regression", hyperparameters=hyperparameters, seed=1)
        candidate = artifact(dsl.Model, f"candidate-{index}")
        save(candidate.path, pipeline, card)
        models.append(candidate)
    model = artifact(dsl.Model, "model")
    leaderboard = artifact(dsl.Markdown, "leaderboard")
    metrics = artifact(dsl.Metrics, "metrics")

    select_model.python_func(models=models, model=model, leaderboard=leaderboard, metrics=metrics)

    assert read_card(model.path) == read_card(models[1].path)
    assert load(model.path).card.hyperparameters == {"max_iter": 50}
    assert Path(leaderboard.path).read_text().startswith("# Model selection: candidate 1 (hist_gradient_boosting) wins")
    assert metrics.metadata["winner_index"] == 1
    assert metrics.metadata["candidates"] == 2
