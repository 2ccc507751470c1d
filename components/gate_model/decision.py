"""The gate's decision as data: every check it made (``Check``: name, passed, detail), the verdict derived from
them, and the intervals and slices behind them, so that noise, a broken slice or a changed schema never promotes a
model.

Against a champion, the challenger is approved only when every check passes:
1. the test set has at least ``min_test_rows`` rows (fewer cannot tell two models apart);
2. each configured threshold holds (``{"r2": 0.6}`` is a floor, ``{"rmse": 40000}`` a ceiling: the direction
   follows the metric); a threshold on a metric undefined on this test set fails, saying why;
3. it beats the constant-prediction baseline on the primary metric;
4. both models scored on this run's test set (the champion is re-scored, never trusted from its own run): the
   gain on the primary metric is at least ``min_improvement`` and its paired bootstrap confidence interval lies
   above zero. A difference within noise is a tie, decided by the ``ties`` policy;
5. with a ``slice_column``, no slice judged by the shared slice rule (components._common.slices) is worse than
   under the champion by more than ``max_slice_regression``;
6. with ``sensitive_columns``, no gap between the groups of a sensitive column (fairlearn's demographic parity and
   equalized odds for a classifier, the relative error gaps for a regressor) is wider than the champion's on the
   same rows by more than ``max_fairness_gap`` beyond noise (fairness_guard.py says how noise is told apart). A
   model that scores better on labels biased against a group (it learnt the bias) widens the gap and is refused.
Without a champion to compare with (a cold start, or an incompatible champion under ``incompatible_champion:
approve``) nothing needs telling apart, so the evidence decides whatever the test-set size: the thresholds hold
and the same paired bootstrap, challenger against the constant baseline's predictions on the same rows, puts the
gain above zero (in r2, or for a classifier balanced accuracy: see BASELINE_EVIDENCE_METRIC). Explicit policies
decide the cases without a fair comparison: ``cold_start`` and ``incompatible_champion``. A champion whose files
cannot be loaded always blocks promotion: a person must look. Without a champion to compare with, the fairness
gaps are not judged (a gap says nothing good or bad until compared: base rates differ between groups) but reported
in a passed check per sensitive column and in the reasons, for the person who reads them; monitoring holds the
champion's gaps to absolute limits (detect_drift's ``max_fairness_gap``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from components._common import registry
from components._common.bootstrap import Interval, metric_value, paired_bootstrap
from components._common.fairness import HIGHER_IS_FAIRER, MIN_GROUP_ROWS
from components._common.scoring import HIGHER_IS_BETTER, PRIMARY_METRIC, Scored, improvement, mape_undefined_reason
from components._common.slices import MIN_SLICE_ROWS, score_slices
from components.gate_model.baseline import BASELINE_EVIDENCE_METRIC, ConstantBaseline, baseline_of_test_rows
from components.gate_model.champion import Champion
from components.gate_model.fairness_guard import ColumnComparison, GapComparison, compare_fairness
from components.gate_model.policy import APPROVE, PROMOTE_CHALLENGER, GatePolicy

TEST_SET, THRESHOLD, BASELINE, CHAMPION, SLICE, FAIRNESS = (
    "test set",
    "threshold",
    "baseline",
    "champion",
    "slice",
    "fairness",
)


@dataclass(frozen=True)
class Check:
    """One check of the gate: which (``name``, one of the constants above, and ``subject`` when it concerns one
    thing, e.g. ``v3`` or ``city=Hamburg (100 rows)``), whether it passed, and its numbers and verdict."""

    name: str
    passed: bool
    detail: str
    subject: str = ""


@dataclass(frozen=True)
class SliceResult:
    """One slice: its rows and, when the slice rule judges it, both models' primary metric on its rows."""

    value: str
    rows: int
    challenger: float | None = None
    champion: float | None = None

    @property
    def judged(self) -> bool:
        return self.champion is not None


@dataclass
class GateDecision:
    primary_metric: str
    challenger_score: float
    champion: Champion
    test_rows: int
    checks: list[Check] = field(default_factory=list)
    rule: str = ""  # which rule decided, and its verdict, in one sentence
    interval: Interval | None = None  # against the champion
    # Set when no champion is compared: the constant, the metric the gain over it is measured in, and its interval.
    baseline: ConstantBaseline | None = None
    baseline_metric: str = ""
    baseline_interval: Interval | None = None
    slices: list[SliceResult] = field(default_factory=list)
    min_slice_rows: int = MIN_SLICE_ROWS  # the slice rule's minimum the slices were judged by
    fairness: list[ColumnComparison] = field(default_factory=list)  # one per sensitive column, in the given order
    min_group_rows: int = MIN_GROUP_ROWS  # groups with fewer test rows were not judged

    @property
    def approved(self) -> bool:
        """Approved exactly when every check passed (a decision always has at least the champion check)."""
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def decide(
    task: str,
    y_true: pd.Series,
    challenger: Scored,
    baseline_scores: Mapping[str, float],
    champion: Champion,
    policy: GatePolicy | None = None,
    slices: pd.Series | None = None,
    baseline: ConstantBaseline | None = None,
    groups: Mapping[str, pd.Series] | None = None,
    positive_label: str | None = None,
) -> GateDecision:
    """The gate's decision for ``challenger`` (scored on the test rows whose truth is ``y_true``).

    ``slices`` holds the slice of each test row (components._common.slices.slice_labels), for the per-slice guard.
    ``groups`` maps each sensitive column to the group of each test row (components._common.fairness.group_labels),
    for the fairness guard; ``positive_label`` is a binary classifier's positive class (None: multiclass, each
    class in turn).
    ``baseline_scores`` (from evaluate_model) judge the baseline check beside a champion comparison; without one,
    the predictions of ``baseline`` (None: the test rows' mean or most frequent class) are bootstrapped against the
    challenger's.
    """
    policy = policy or GatePolicy()
    policy.check_thresholds(task)
    policy.check_fairness_gaps(task)
    primary = PRIMARY_METRIC[task]
    y_true = np.asarray(y_true)
    decision = GateDecision(
        primary_metric=primary,
        challenger_score=challenger.scores[primary],
        champion=champion,
        test_rows=len(y_true),
        min_group_rows=policy.min_group_rows,
    )
    fairness_of = _FairnessInputs(task, y_true, challenger, policy, groups or {}, positive_label)
    checks = decision.checks
    comparing = champion.version is not None and not champion.problem and not champion.incompatibility

    # Only a comparison with the champion needs enough rows to tell two close models apart; without one, the
    # baseline interval below carries its own evidence, whatever the test-set size.
    if comparing:
        enough = len(y_true) >= policy.min_test_rows
        too_few = f", fewer than min_test_rows={policy.min_test_rows}: too few to tell models apart"
        checks.append(Check(TEST_SET, enough, f"{len(y_true)} rows" + ("" if enough else too_few)))

    failed_thresholds = []
    for metric, bound in sorted(policy.thresholds.items()):
        value = challenger.scores.get(metric)
        if value is None:
            failed_thresholds.append(metric)
            checks.append(Check(THRESHOLD, False, f"{metric} cannot be checked: {_why_undefined(metric, y_true)}"))
            continue
        holds = policy.threshold_holds(metric, value)
        if not holds:
            failed_thresholds.append(metric)
        sign = ">=" if HIGHER_IS_BETTER[metric] else "<="
        checks.append(Check(THRESHOLD, holds, f"{metric} {value:.4g} {'' if holds else 'not '}{sign} {bound:g}"))

    if comparing:
        reference = baseline_scores[primary]
        beats = improvement(primary, decision.challenger_score, reference) > 0
        detail = f"{primary} {decision.challenger_score:.4g} vs constant prediction {reference:.4g}"
        checks.append(Check(BASELINE, beats, detail + ("" if beats else " (no better than predicting a constant)")))
    elif not champion.problem:  # an unloadable champion blocks promotion whatever the challenger shows
        evidence_metric = decision.baseline_metric = BASELINE_EVIDENCE_METRIC[task]
        decision.baseline = baseline or baseline_of_test_rows(task, y_true)
        constant = decision.baseline.predictions(len(y_true))
        decision.baseline_interval = paired_bootstrap(
            evidence_metric, y_true, challenger.predictions, constant, *_bootstrap_settings(policy)
        )
        evidence, beats = _baseline_evidence(evidence_metric, decision.baseline_interval)
        # Rounded: the test rows' own mean scores an r2 of 0 up to float error, and -1e-14 would read as a number.
        scores = [round(metric_value(evidence_metric, y_true, p), 12) + 0.0 for p in (challenger.predictions, constant)]
        detail = (
            f"{evidence_metric} {scores[0]:.4g} vs {scores[1]:.4g} predicting {decision.baseline.described()} for "
            f"every row: {evidence}" + (f"; {decision.baseline.note}" if decision.baseline.note else "")
        )
        checks.append(Check(BASELINE, beats, detail))

    cited = champion.subject
    title = f"Champion {cited}".rstrip()  # "Champion v3", or "Champion" when its version is not known
    if champion.absent:
        context = "Cold start (no champion registered)"
        if policy.cold_start == APPROVE:
            detail = (
                "none registered yet (cold start): the thresholds and the gain over the constant baseline decide, "
                "whatever the test-set size"
            )
            checks.append(Check(CHAMPION, True, detail))
            decision.rule = _evidence_rule(context, evidence, beats, failed_thresholds, policy.thresholds)
        else:
            detail = "none registered yet (cold start) and policy cold_start=reject: a person promotes"
            checks.append(Check(CHAMPION, False, detail))
            decision.rule = f"{context}, policy cold_start=reject: not approved, a person promotes ({evidence})"
    elif champion.problem:
        detail = (
            f"its files cannot be loaded ({champion.problem}); restore them or move the alias `{registry.CHAMPION}` "
            "to a version that loads"
        )
        checks.append(Check(CHAMPION, False, detail, cited))
        decision.rule = f"{title} cannot be loaded: not approved, a person must look"
    elif champion.incompatibility:
        message = f"not comparable on this data ({champion.incompatibility})"
        context = f"{title} not comparable"
        if policy.incompatible_champion == APPROVE:
            detail = (
                f"{message}; policy incompatible_champion=approve: the thresholds and the gain over the constant "
                "baseline decide"
            )
            checks.append(Check(CHAMPION, True, detail, cited))
            context += ", policy incompatible_champion=approve"
            decision.rule = _evidence_rule(context, evidence, beats, failed_thresholds, policy.thresholds)
        else:
            detail = f"{message}; policy incompatible_champion=reject: a person decides"
            checks.append(Check(CHAMPION, False, detail, cited))
            decision.rule = f"{context}, policy incompatible_champion=reject: not approved, a person decides"
    else:
        _compare_with_champion(decision, task, y_true, challenger, policy, slices, fairness_of)
        return decision
    if champion.absent:
        without = "no champion to compare with (cold start)"
    elif champion.problem:
        without = "the champion cannot be loaded to compare with"
    else:
        without = "the champion is not comparable on this data"
    _fairness_checks(decision, fairness_of, None, without)
    return decision


def _compare_with_champion(
    decision: GateDecision,
    task: str,
    y_true: np.ndarray,
    challenger: Scored,
    policy: GatePolicy,
    slices,
    fairness_of: _FairnessInputs,
) -> None:
    """The champion check (the gain's interval), the slice and fairness checks and the rule of a comparison with
    the champion."""
    champion, primary, checks = decision.champion, decision.primary_metric, decision.checks
    interval = decision.interval = paired_bootstrap(
        primary, y_true, challenger.predictions, champion.scored.predictions, *_bootstrap_settings(policy)
    )
    verdict, holds = _compare(interval, policy.min_improvement, policy.ties)
    detail = (
        f"{primary} {decision.challenger_score:.4g} vs {champion.scored.scores[primary]:.4g}, gain "
        f"{interval.gain:+.4g} ({_ci(interval)}, required {policy.min_improvement:+.4g}): {verdict}"
    )
    checks.append(Check(CHAMPION, holds, detail, champion.subject))
    if slices is not None:
        rule = policy.slice_rule
        decision.min_slice_rows = rule.min_slice_rows
        by_challenger = score_slices(slices, rule, task, y_true, challenger.predictions)
        by_champion = score_slices(slices, rule, task, y_true, champion.scored.predictions)
        for mine, theirs in zip(by_challenger, by_champion, strict=True):
            if mine.scores is None:
                decision.slices.append(SliceResult(mine.value, mine.rows))
                continue
            result = SliceResult(mine.value, mine.rows, mine.scores[primary], theirs.scores[primary])
            decision.slices.append(result)
            if improvement(primary, result.challenger, result.champion) < -policy.max_slice_regression:
                detail = (
                    f"{primary} {result.challenger:.4g} vs champion {result.champion:.4g}, worse by more than "
                    f"max_slice_regression={policy.max_slice_regression:g}"
                )
                checks.append(Check(SLICE, False, detail, f"{slices.name}={result.value} ({result.rows} rows)"))
    _fairness_checks(decision, fairness_of, champion.scored.predictions)
    context = f"Comparison with champion {champion.subject} ({primary} on the same {len(y_true)} test rows)"
    failed = decision.failed
    if failed:
        decision.rule = f"{context}: not approved, {len(failed)} check(s) failed (listed first below)"
    else:
        decision.rule = f"{context}: approved, {verdict}: gain {interval.gain:+.4g} ({_ci(interval)})"


@dataclass(frozen=True)
class _FairnessInputs:
    """What the fairness guard needs besides the champion's predictions."""

    task: str
    y_true: np.ndarray
    challenger: Scored
    policy: GatePolicy
    groups: Mapping[str, pd.Series]
    positive_label: str | None


def _fairness_checks(decision: GateDecision, inputs: _FairnessInputs, champion_predictions, without: str = "") -> None:
    """Per sensitive column, the comparison of both models' gaps and its checks: against the champion, one check
    per gap metric; without one (``without`` says why), one passed check reporting the challenger's gaps."""
    policy = inputs.policy
    tolerances = policy.fairness_tolerances(inputs.task)
    for column, labels in inputs.groups.items():
        comparison = compare_fairness(
            inputs.task,
            inputs.y_true,
            inputs.challenger.predictions,
            champion_predictions,
            labels,
            tolerances,
            positive_label=inputs.positive_label,
            min_group_rows=policy.min_group_rows,
            samples=policy.bootstrap_samples,
            confidence=policy.confidence,
            seed=policy.seed,
        )
        decision.fairness.append(comparison)
        measured = [gap for gap in comparison.gaps if gap.challenger is not None]
        if not measured:
            groups = ", ".join(f"{group.value} ({group.rows})" for group in comparison.challenger.groups)
            detail = (
                f"fewer than two groups of at least min_group_rows={policy.min_group_rows} test rows "
                f"({groups}): no gap to judge"
            )
            decision.checks.append(Check(FAIRNESS, True, detail, column))
        elif champion_predictions is None:
            gaps = ", ".join(f"{gap.metric} {gap.challenger:.4g} (worst group {gap.worst_group})" for gap in measured)
            decision.checks.append(Check(FAIRNESS, True, f"{gaps}; {without}: reported, not judged", column))
        else:
            for gap in comparison.gaps:
                decision.checks.append(_gap_check(comparison, gap))


def _gap_check(comparison: ColumnComparison, gap: GapComparison) -> Check:
    """The check of one gap metric against the champion's: refused when it widened by more than its tolerance,
    beyond noise."""
    rows = {group.value: group.rows for group in comparison.challenger.groups}
    subject = comparison.column
    if gap.worst_group:
        subject += f" (worst group {gap.worst_group}, {rows[gap.worst_group]} rows)"
    if gap.challenger is None or gap.champion is None:
        who = (
            "either model"
            if gap.challenger is None and gap.champion is None
            else ("the challenger" if gap.challenger is None else "the champion")
        )
        return Check(FAIRNESS, True, f"{gap.metric} is undefined for {who} on these rows: not judged", subject)
    numbers = f"{gap.metric} {gap.challenger:.4g} vs champion {gap.champion:.4g}"
    if gap.interval is None:  # undefined on every resample: nothing to tell noise from
        return Check(FAIRNESS, True, f"{numbers}: no resample defines it, not judged", subject)
    # A ratio is fairer higher (1 is parity): its widening is how much it dropped.
    moved = "dropped" if HIGHER_IS_FAIRER[gap.metric] else "widened"
    change = f"{moved} by {gap.widening:+.4g} ({_widening_ci(gap.interval)})"
    if gap.tolerance is None:
        detail = f"{numbers}, {change}: not guarded (gate_policy['max_fairness_gap'][{gap.metric!r}] is null)"
        return Check(FAIRNESS, True, detail, subject)
    limit = f"max_fairness_gap={gap.tolerance:g}"
    if gap.refused:
        return Check(FAIRNESS, False, f"{numbers}, {change}: more than {limit}, beyond noise", subject)
    if gap.widening > gap.tolerance:
        return Check(FAIRNESS, True, f"{numbers}, {change}: more than {limit} but within noise", subject)
    return Check(FAIRNESS, True, f"{numbers}, {change}: within {limit}", subject)


def _widening_ci(interval: Interval) -> str:
    """The interval of a fairness gain read as the widening's (its negative)."""
    return f"{interval.confidence:.0%} CI [{-interval.high:+.4g}, {-interval.low:+.4g}]"


def _bootstrap_settings(policy: GatePolicy) -> tuple[int, float, int]:
    return policy.bootstrap_samples, policy.confidence, policy.seed


def _ci(interval: Interval) -> str:
    return f"{interval.confidence:.0%} CI [{interval.low:+.4g}, {interval.high:+.4g}]"


def _why_undefined(metric: str, y_true: np.ndarray) -> str:
    """Why ``metric`` has no value on this test set (score leaves out what is undefined)."""
    if metric == "mape":
        return mape_undefined_reason(y_true, "the test target") or "it is undefined on this test set"
    if metric == "roc_auc":
        return "it needs class probabilities from the model and at least two classes in the test target"
    if metric == "log_loss":
        return "it needs class probabilities from the model and every test label among the model's classes"
    return "it is undefined on this test set"


def _baseline_evidence(metric: str, interval: Interval) -> tuple[str, bool]:
    """What the interval of the gain over the constant baseline says, and whether it is evidence enough."""
    gain = f"{interval.gain:+.4g} {metric}"
    if interval.low > 0 and interval.gain > 0:
        return f"it beats the constant baseline by {gain} ({_ci(interval)})", True
    if interval.high < 0:
        return f"it is significantly worse than the constant baseline ({gain}, {_ci(interval)})", False
    return f"its gain over the constant baseline is within noise ({gain}, {_ci(interval)})", False


def _evidence_rule(context: str, evidence: str, beats: bool, failed_thresholds: list[str], thresholds) -> str:
    """The decision without a champion comparison, in one sentence: the baseline interval and the thresholds."""
    if beats and not failed_thresholds:
        return f"{context}: approved because {evidence}" + (" and it passes its thresholds" if thresholds else "")
    problems = [] if beats else [evidence]
    if failed_thresholds:
        problems.append(f"threshold(s) {', '.join(failed_thresholds)} failed")
    return f"{context}: not approved: {'; '.join(problems)}"


def _compare(interval: Interval, min_improvement: float, ties: str) -> tuple[str, bool]:
    """What the interval says of the challenger, and whether that approves it."""
    if interval.high < 0:
        return "significantly worse", False
    if interval.gain < min_improvement:
        return "gain below the required improvement", False
    if interval.low <= 0:
        holds = ties == PROMOTE_CHALLENGER
        return f"no significant difference (a tie; policy ties={ties})", holds
    return "significantly better", True
