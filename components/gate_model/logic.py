"""The gate step end to end, as its component runs it: the challenger measured on the test rows, the champion
found and scored, the decision made (decision.py), and the figures the step logs as metrics.

The step's parts each have a module: the policy (policy.py), the decision as typed checks (decision.py), the
constant baseline (baseline.py), the champion from the registry (champion.py), the Markdown (report.py); the
paired bootstrap and the slice rule are shared (components._common.bootstrap, components._common.slices).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from components._common.scoring import score_bundle
from components._common.slices import slice_labels
from components.gate_model.baseline import constant_baseline
from components.gate_model.champion import load_champion
from components.gate_model.decision import GateDecision, decide
from components.gate_model.policy import GatePolicy
from model_bundle import Bundle


def gate(
    challenger: Bundle,
    test: pd.DataFrame,
    model_name: str,
    baseline_scores: Mapping[str, float],
    policy: GatePolicy,
    slice_column: str = "",
    tracking_uri: str = "",
) -> GateDecision:
    """The decision on ``challenger`` against ``model_name``'s champion, both scored on ``test``.

    Raises ValueError naming a ``slice_column`` that is not a feature of ``test`` or a threshold on a metric the
    task does not compute, before any model is scored.
    """
    target = challenger.card.target
    slices = slice_labels(test, target, slice_column)
    policy.check_thresholds(challenger.task)
    return decide(
        challenger.task,
        test[target],
        score_bundle(challenger, test),
        baseline_scores,
        load_champion(tracking_uri, model_name, challenger, test),
        policy,
        slices=slices,
        baseline=constant_baseline(challenger.card, test[target]),
    )


def decision_metrics(decision: GateDecision) -> dict[str, float]:
    """What the step logs: the challenger's primary metric; against a champion, the champion's, the gain and its
    interval; without one, the gain over the constant baseline and its interval; and ``approved`` (1 or 0)."""
    primary = decision.primary_metric
    figures = {f"challenger_{primary}": decision.challenger_score}
    if decision.interval is not None:
        figures[f"champion_{primary}"] = decision.champion.scored.scores[primary]
        figures.update(
            gain=decision.interval.gain, gain_ci_low=decision.interval.low, gain_ci_high=decision.interval.high
        )
    if decision.baseline_interval is not None:
        interval = decision.baseline_interval
        figures.update(
            baseline_gain=interval.gain, baseline_gain_ci_low=interval.low, baseline_gain_ci_high=interval.high
        )
    figures["approved"] = int(decision.approved)
    return figures
