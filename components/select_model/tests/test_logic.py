"""select_model: the best validation score wins, ties go to the earlier candidate, the winner's directory is passed
on, and the leaderboard shows why."""

from __future__ import annotations

import json

import pytest

from components.select_model.logic import (
    SelectionError,
    render_leaderboard,
    select,
    select_model_directory,
    selection_metrics,
)
from model_bundle import CARD_FILE, ModelCard, read_card


def card(model_type: str, score: float | None, task: str = "regression", target: str = "price") -> ModelCard:
    metric = "r2" if task == "regression" else "f1_macro"
    return ModelCard(
        task=task,
        target=target,
        features=[],
        classes=["a", "b"] if task == "classification" else None,
        model_type=model_type,
        hyperparameters={"alpha": 1.0} if model_type == "linear" else {},
        validation_scores=None if score is None else {metric: score, "other": 0.0},
        training_rows=100,
        fit_seconds=0.5,
    )


def test_the_best_validation_score_wins():
    selection = select([card("linear", 0.71), card("random_forest", 0.84), card("hist_gradient_boosting", 0.80)])

    assert selection.metric == "r2"
    assert selection.winner.index == 1
    assert [candidate.index for candidate in selection.ranking] == [1, 2, 0]


def test_classifiers_are_compared_on_f1_macro():
    selection = select([card("linear", 0.6, "classification"), card("random_forest", 0.5, "classification")])

    assert (selection.metric, selection.winner.index) == ("f1_macro", 0)


def test_equal_scores_go_to_the_earlier_candidate():
    assert select([card("linear", 0.8), card("random_forest", 0.8)]).winner.index == 0


@pytest.mark.parametrize("scores", [(0.8, None), (None, None)])
def test_several_candidates_without_validation_scores_are_refused_naming_the_parameters(scores):
    cards = [card("linear", scores[0]), card("random_forest", scores[1])]
    first = scores.index(None)
    with pytest.raises(SelectionError, match=rf"candidate {first} \(\w+\) has no validation r2") as refused:
        select(cards)

    assert "validation_fraction above 0" in str(refused.value)
    assert "a single candidate in candidates" in str(refused.value)


def test_a_single_candidate_without_validation_is_passed_on_and_said_not_validated():
    # validation_fraction=0 skips validation: with one candidate there is nothing to compare.
    selection = select([card("linear", None)])

    assert (selection.winner.index, selection.winner.validation_score) == (0, None)
    assert selection_metrics(selection) == {"winner_index": 0, "candidates": 1}
    board = render_leaderboard(selection)
    assert board.startswith("# Model selection: candidate 0 (linear) is passed on, not validated\n")
    assert "validation_fraction 0" in board
    assert '| 1 | 0 | linear | `{"alpha": 1.0}` | not validated | 0.5 |' in board


def test_candidates_of_different_targets_cannot_be_compared():
    with pytest.raises(SelectionError, match=r"candidates predict different things"):
        select([card("linear", 0.8), card("linear", 0.8, target="rent")])


def test_no_candidates_is_named():
    with pytest.raises(SelectionError, match=r"parameter candidates is empty"):
        select([])


def test_leaderboard_ranks_the_candidates_best_first():
    board = render_leaderboard(select([card("linear", 0.71), card("random_forest", 0.84)]))

    assert board.startswith("# Model selection: candidate 1 (random_forest) wins\n")
    rows = [line for line in board.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert rows == [
        "| 1 | 1 | random_forest | `{}` | 0.84 | 0.5 |",
        '| 2 | 0 | linear | `{"alpha": 1.0}` | 0.71 | 0.5 |',
    ]


def _directory(path, model_card: ModelCard):
    """A candidate model directory as far as selection reads it: its card, and a file that must travel with it."""
    path.mkdir()
    (path / CARD_FILE).write_text(json.dumps(model_card.to_json()))
    (path / "model.joblib").write_bytes(path.name.encode())
    return path


def test_the_winners_directory_is_passed_on_whole(tmp_path):
    candidates = [
        _directory(tmp_path / "linear", card("linear", 0.71)),
        _directory(tmp_path / "forest", card("random_forest", 0.84)),
    ]

    selection = select_model_directory(candidates, tmp_path / "model")

    assert selection.winner.index == 1
    assert read_card(tmp_path / "model") == read_card(candidates[1])
    assert (tmp_path / "model" / "model.joblib").read_bytes() == b"forest"


def test_no_directory_is_written_when_the_candidates_cannot_be_compared(tmp_path):
    candidates = [_directory(tmp_path / "a", card("linear", 0.8)), _directory(tmp_path / "b", card("linear", None))]

    with pytest.raises(SelectionError, match=r"candidate 1 \(linear\) has no validation r2"):
        select_model_directory(candidates, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_selection_metrics_name_the_winner_and_its_score():
    selection = select([card("linear", 0.6, "classification"), card("random_forest", 0.7, "classification")])

    assert selection_metrics(selection) == {"validation_f1_macro": 0.7, "winner_index": 1, "candidates": 2}
