"""The gate step end to end, as its component runs it: the challenger measured on the test rows, the champion
found and scored, the decision made (decision.py), and the figures the step logs as metrics.

The step's parts each have a module: the policy (policy.py), the decision as typed checks (decision.py), the
constant baseline (baseline.py), the champion from the registry (champion.py), the fairness guard
(fairness_guard.py), the Markdown (report.py); the paired bootstrap, the slice rule and the fairness metrics are
shared (components._common.bootstrap, components._common.slices, components._common.fairness).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from components._common import fairness
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
    sensitive_columns: Sequence[str] = (),
) -> GateDecision:
    """The decision on ``challenger`` against ``model_name``'s champion, both scored on ``test``; the groups of each
    of ``sensitive_columns`` (columns of ``test``, features or not) are compared by the fairness guard.

    Raises ValueError naming a ``slice_column`` that is not a feature of ``test``, a sensitive column ``test`` lacks,
    a threshold on a metric the task does not compute or a fairness gap it does not report, before any model is
    scored.
    """
    target = challenger.card.target
    slices = slice_labels(test, target, slice_column)
    columns = fairness.check_sensitive_columns(list(sensitive_columns), test.columns, target=target)
    policy.check_thresholds(challenger.task)
    policy.check_fairness_gaps(challenger.task)
    return decide(
        challenger.task,
        test[target],
        score_bundle(challenger, test),
        baseline_scores,
        load_champion(tracking_uri, model_name, challenger, test),
        policy,
        slices=slices,
        baseline=constant_baseline(challenger.card, test[target]),
        groups={column: fairness.group_labels(test, column) for column in columns},
        positive_label=fairness.positive_label(challenger.task, challenger.card.classes),
    )


def decision_metrics(decision: GateDecision) -> dict[str, float]:
    """What the step logs: the challenger's primary metric; against a champion, the champion's, the gain and its
    interval; without one, the gain over the constant baseline and its interval; per sensitive column and gap
    metric, the challenger's gap (``challenger_<gap>.<column>``) and, against a champion, the champion's
    (``champion_<gap>.<column>``); and ``approved`` (1 or 0)."""
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
    for column in decision.fairness:
        for gap in column.gaps:
            for side in ("challenger", "champion"):
                value = getattr(gap, side)
                if value is not None:
                    figures[f"{side}_{gap.metric}.{column.column}"] = value
    figures["approved"] = int(decision.approved)
    return figures
