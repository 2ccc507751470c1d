"""Decides whether a challenger may replace the champion: absolute checks, then the champion on the same data.

A challenger is approved only when every check passes:
1. each configured threshold holds (``{"r2": 0.6}`` is a floor, ``{"rmse": 40000}`` a ceiling: the direction
   follows the metric);
2. it beats the constant-prediction baseline on the primary metric;
3. when a champion exists, it scores at least ``min_improvement`` better than the champion on the primary
   metric, both scored on this run's test set. A champion that cannot be scored on it (for instance its columns
   are gone) blocks promotion: the difference must be looked at by a person.
With no champion (cold start) checks 1 and 2 decide.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import pandas as pd

from components._common import registry
from components._common.scoring import (
    HIGHER_IS_BETTER,
    METRICS_BY_TASK,
    PRIMARY_METRIC,
    improvement,
    score_bundle,
)


@dataclass
class Champion:
    version: str | None = None
    scores: dict[str, float] | None = None
    problem: str | None = None


@dataclass
class GateDecision:
    approved: bool
    primary_metric: str
    challenger_score: float
    champion: Champion
    reasons: list[str] = field(default_factory=list)


def check_thresholds(task: str, thresholds: dict) -> None:
    allowed = METRICS_BY_TASK[task]
    unknown = sorted(set(thresholds) - set(allowed))
    if unknown:
        raise ValueError(f"parameter thresholds names metric(s) {unknown} not computed for {task}; use {list(allowed)}")
    not_numbers = sorted(name for name, value in thresholds.items() if not isinstance(value, int | float))
    if not_numbers:
        raise ValueError(f"parameter thresholds must map metrics to numbers; {not_numbers} are not numbers")


def decide(
    task: str,
    challenger_scores: dict[str, float],
    baseline_scores: dict[str, float],
    champion: Champion,
    thresholds: dict | None = None,
    min_improvement: float = 0.0,
) -> GateDecision:
    thresholds = thresholds or {}
    check_thresholds(task, thresholds)
    primary = PRIMARY_METRIC[task]
    passed, failed = [], []

    for metric, bound in sorted(thresholds.items()):
        value = challenger_scores[metric]
        holds = value >= bound if HIGHER_IS_BETTER[metric] else value <= bound
        sign = ">=" if HIGHER_IS_BETTER[metric] else "<="
        (passed if holds else failed).append(
            f"threshold: {metric} {value:.4g} {'' if holds else 'not '}{sign} {bound:g}"
        )

    challenger = challenger_scores[primary]
    over_baseline = improvement(primary, challenger, baseline_scores[primary])
    (passed if over_baseline > 0 else failed).append(
        f"baseline: {primary} {challenger:.4g} vs constant prediction {baseline_scores[primary]:.4g}"
        + ("" if over_baseline > 0 else " (no better than predicting a constant)")
    )

    if champion.problem:
        failed.append(f"champion v{champion.version}: cannot be compared on this test set: {champion.problem}")
    elif champion.scores is None:
        passed.append("champion: none registered yet (cold start): the absolute checks decide")
    else:
        gain = improvement(primary, challenger, champion.scores[primary])
        holds = gain >= min_improvement
        (passed if holds else failed).append(
            f"champion v{champion.version}: {primary} {challenger:.4g} vs {champion.scores[primary]:.4g} "
            f"(improvement {gain:+.4g}, required {min_improvement:+.4g})"
        )

    return GateDecision(
        approved=not failed,
        primary_metric=primary,
        challenger_score=challenger,
        champion=champion,
        reasons=[f"FAILED {reason}" for reason in failed] + [f"passed {reason}" for reason in passed],
    )


def score_champion(tracking_uri: str, model_name: str, test: pd.DataFrame, target: str) -> Champion:
    """Loads the registry's champion of ``model_name`` and scores it on ``test``; a failure becomes a problem."""
    from model_bundle import BundleError, FeatureError, load

    client = registry.connect(tracking_uri)
    version = registry.version_by_alias(client, model_name, registry.CHAMPION)
    if version is None:
        return Champion()
    champion = Champion(version=str(version.version))
    with tempfile.TemporaryDirectory() as workdir:
        try:
            bundle = load(registry.download_version(version, workdir), expected_sha256=version.tags.get("model_sha256"))
            if bundle.card["target"] != target:
                champion.problem = f"it predicts {bundle.card['target']!r}, this run predicts {target!r}"
            else:
                champion.scores = score_bundle(bundle, test, target)
        except (BundleError, FeatureError, OSError) as error:
            champion.problem = str(error)
    return champion


def render_reasons(decision: GateDecision) -> str:
    verdict = "approved" if decision.approved else "rejected"
    lines = [
        f"# Challenger {verdict}",
        "",
        f"Primary metric `{decision.primary_metric}`: {decision.challenger_score:.4g}.",
        "",
    ]
    lines += [f"- {reason}" for reason in decision.reasons]
    return "\n".join(lines) + "\n"
