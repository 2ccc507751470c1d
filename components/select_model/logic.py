"""Model selection: ranks the candidate models by validation score on the primary metric, passes on the winner's
directory and renders the leaderboard.

Candidates are compared on their validation scores (rows held out of the training set), never on the test set:
the test set stays untouched for the gate's comparison with the champion. A single candidate has nothing to be
compared with: it is passed on even when it was trained without validation (``validation_fraction`` 0).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from components._common.scoring import PRIMARY_METRIC, improvement
from model_bundle import ModelCard, read_card


class SelectionError(ValueError):
    """The candidates cannot be compared; the message names the candidate."""


@dataclass(frozen=True)
class Candidate:
    index: int
    model_type: str
    hyperparameters: dict
    validation_score: float | None  # None: trained without validation (a single candidate)
    training_rows: int
    fit_seconds: float


@dataclass(frozen=True)
class Selection:
    metric: str
    winner: Candidate
    ranking: list[Candidate]  # best first


def select(cards: Sequence[ModelCard]) -> Selection:
    """Ranks the candidates' model cards by validation score; the first of equals (in candidate order) wins. A single
    candidate wins whether or not it was validated; several must all have validation scores."""
    if not cards:
        raise SelectionError("no candidate models to select from: parameter candidates is empty")
    tasks = {card.task for card in cards}
    targets = {card.target for card in cards}
    if len(tasks) > 1 or len(targets) > 1:
        raise SelectionError(f"candidates predict different things (tasks {sorted(tasks)}, targets {sorted(targets)})")
    metric = PRIMARY_METRIC[cards[0].task]
    candidates = []
    for index, card in enumerate(cards):
        scores = card.validation_scores or {}
        if metric not in scores and len(cards) > 1:
            raise SelectionError(
                f"candidate {index} ({card.model_type}) has no validation {metric}, and {len(cards)} candidates are "
                "compared on their validation scores: set validation_fraction above 0, or pass a single candidate in "
                "candidates"
            )
        candidates.append(
            Candidate(
                index=index,
                model_type=card.model_type,
                hyperparameters=card.hyperparameters,
                validation_score=float(scores[metric]) if metric in scores else None,
                training_rows=card.training_rows,
                fit_seconds=card.fit_seconds,
            )
        )
    if len(candidates) == 1:
        return Selection(metric=metric, winner=candidates[0], ranking=candidates)
    best = candidates[0]
    for candidate in candidates[1:]:
        if improvement(metric, candidate.validation_score, best.validation_score) > 0:
            best = candidate
    ranking = sorted(
        candidates, key=lambda c: (-improvement(metric, c.validation_score, best.validation_score), c.index)
    )
    return Selection(metric=metric, winner=best, ranking=ranking)


def select_model_directory(candidate_dirs: Sequence[str | Path], model_dir: str | Path) -> Selection:
    """The step: ranks the model directories ``candidate_dirs`` by their cards and copies the winner's directory to
    ``model_dir``."""
    selection = select([read_card(directory) for directory in candidate_dirs])
    shutil.copytree(candidate_dirs[selection.winner.index], model_dir, dirs_exist_ok=True)
    return selection


def selection_metrics(selection: Selection) -> dict[str, float]:
    """The step's metrics: the winner's validation score (none when it was not validated), its index and the number
    of candidates."""
    score = selection.winner.validation_score
    return {
        **({f"validation_{selection.metric}": score} if score is not None else {}),
        "winner_index": selection.winner.index,
        "candidates": len(selection.ranking),
    }


def render_leaderboard(selection: Selection) -> str:
    """The candidates as a Markdown table, best first."""
    winner = selection.winner
    if winner.validation_score is None:
        heading = f"candidate {winner.index} ({winner.model_type}) is passed on, not validated"
        why = "The only candidate, trained with validation_fraction 0: nothing to compare, no validation score."
    else:
        heading = f"candidate {winner.index} ({winner.model_type}) wins"
        why = f"Ranked by validation `{selection.metric}` (rows held out of the training set)."
    lines = [
        f"# Model selection: {heading}",
        "",
        why,
        "",
        f"| rank | candidate | model type | hyperparameters | validation {selection.metric} | fit seconds |",
        "|---:|---:|---|---|---:|---:|",
    ]
    for rank, candidate in enumerate(selection.ranking, start=1):
        lines.append(
            f"| {rank} | {candidate.index} | {candidate.model_type} | "
            f"`{json.dumps(candidate.hyperparameters, sort_keys=True)}` | {_score(candidate.validation_score)} | "
            f"{candidate.fit_seconds:.3g} |"
        )
    return "\n".join(lines) + "\n"


def _score(value: float | None) -> str:
    return "not validated" if value is None else f"{value:.4g}"
