"""Decides whether a challenger may replace the champion, so that noise, a broken slice or a changed schema
never promotes a model.

Against a champion, the challenger is approved only when every check passes:
1. the test set has at least ``min_test_rows`` rows (fewer cannot tell two models apart);
2. each configured threshold holds (``{"r2": 0.6}`` is a floor, ``{"rmse": 40000}`` a ceiling: the direction
   follows the metric); a threshold on a metric undefined on this test set fails, saying why;
3. it beats the constant-prediction baseline on the primary metric;
4. both models scored on this run's test set (the champion is re-scored, never trusted from its own run): the
   gain on the primary metric is at least ``min_improvement`` and its paired bootstrap confidence interval lies
   above zero. A difference within noise is a tie, decided by the ``ties`` policy;
5. with a ``slice_column``, no slice of at least ``min_slice_rows`` rows is worse than under the champion by
   more than ``max_slice_regression``.
Without a champion to compare with (a cold start, or an incompatible champion under ``incompatible_champion:
approve``) nothing needs telling apart, so the evidence decides whatever the test-set size: the thresholds hold
and the same paired bootstrap, challenger against the constant baseline's predictions on the same rows, puts the
gain above zero (in r2, or for a classifier balanced accuracy: see BASELINE_EVIDENCE_METRIC). Explicit policies
decide the cases without a fair comparison: ``cold_start`` (no champion yet: ``approve`` on that evidence, or
``reject``: a person promotes) and ``incompatible_champion`` (the champion predicts another target or task, or
needs columns or types this data no longer has). A champion whose files cannot be loaded always blocks
promotion: a person must look.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from components._common import registry
from components._common.policies import policy_from_mapping
from components._common.scoring import (
    CLASSIFICATION,
    HIGHER_IS_BETTER,
    METRICS_BY_TASK,
    MIN_SLICE_ROWS,
    PRIMARY_METRIC,
    REGRESSION,
    improvement,
    mape_undefined_reason,
    predictions,
    score,
    slice_labels,
)
from model_bundle import ModelCard

APPROVE, REJECT = "approve", "reject"
# What the gain over the constant baseline is measured in, without a champion. On these, predictions made without
# looking at the features score no better than the constant on average (r2 at most 0, balanced accuracy
# 1 / classes), so a gain beyond noise means the model learned something. Not macro F1: guesses spread over the
# classes beat a constant's macro F1 (it scores only one class), so a model of pure noise would often pass.
BASELINE_EVIDENCE_METRIC = {REGRESSION: "r2", CLASSIFICATION: "balanced_accuracy"}
KEEP_CHAMPION, PROMOTE_CHALLENGER = "keep_champion", "promote_challenger"
# Resampled rows held in memory at once (8 bytes each): bounds the bootstrap's memory on large test sets.
BOOTSTRAP_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class GatePolicy:
    """How strict the gate is; every field can be set through the pipeline parameter ``gate_policy``."""

    confidence: float = 0.95  # of the bootstrap intervals of the gain over the champion or the constant baseline
    bootstrap_samples: int = 1000
    min_test_rows: int = 100  # for a comparison with the champion only; a cold start is decided by its interval
    cold_start: str = APPROVE  # no champion yet: `approve` on thresholds and the baseline interval, or `reject`
    incompatible_champion: str = REJECT  # champion cannot be compared fairly: `reject`, or `approve` on the rest
    ties: str = KEEP_CHAMPION  # gain within noise: `keep_champion`, or `promote_challenger` (fresher data wins)
    min_slice_rows: int = MIN_SLICE_ROWS  # smaller slices are too noisy to judge
    max_slice_regression: float = 0.02  # how much worse than the champion a slice may be
    seed: int = 0  # of the bootstrap resampling: the same data always gets the same decision

    @classmethod
    def from_mapping(cls, values: Mapping) -> GatePolicy:
        """The policy from the parameter ``gate_policy``; unknown keys and invalid values raise naming the key."""
        policy = policy_from_mapping(cls, values, "gate_policy")
        policy.check()
        return policy

    def check(self) -> None:
        choices = {
            "cold_start": (APPROVE, REJECT),
            "incompatible_champion": (APPROVE, REJECT),
            "ties": (KEEP_CHAMPION, PROMOTE_CHALLENGER),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"parameter gate_policy[{key!r}] must be one of {allowed}, got {getattr(self, key)!r}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"parameter gate_policy['confidence'] must be in [0.5, 1), got {self.confidence}")
        for key in ("bootstrap_samples", "min_test_rows", "min_slice_rows"):
            if getattr(self, key) < 1:
                raise ValueError(f"parameter gate_policy[{key!r}] must be at least 1, got {getattr(self, key)}")
        if self.max_slice_regression < 0:
            raise ValueError(
                f"parameter gate_policy['max_slice_regression'] must be >= 0, got {self.max_slice_regression}"
            )


@dataclass
class Scored:
    """A model's predictions on the gate's test set and its scores there."""

    predictions: np.ndarray
    scores: dict[str, float]


@dataclass
class Champion:
    """The registry's champion as the gate found it: absent, unloadable, incompatible, or scored."""

    version: str | None = None
    scored: Scored | None = None
    problem: str | None = None  # its files could not be loaded
    incompatibility: str | None = None  # it cannot be compared fairly on this data


@dataclass(frozen=True)
class ConstantBaseline:
    """The one value the constant baseline predicts for every test row, and what it is (for the reasons)."""

    value: float | str
    description: str  # e.g. "the training mean"
    note: str = ""  # why it is not the training rows' constant, when it is not

    def predictions(self, rows: int) -> np.ndarray:
        return np.full(rows, self.value, dtype="float64" if isinstance(self.value, float) else object)


@dataclass(frozen=True)
class Interval:
    gain: float  # challenger minus reference (champion or constant baseline) on the metric compared; > 0: better
    low: float
    high: float
    confidence: float
    samples: int


@dataclass(frozen=True)
class SliceResult:
    value: str
    rows: int
    challenger: float | None = None
    champion: float | None = None

    @property
    def judged(self) -> bool:
        return self.champion is not None


@dataclass
class GateDecision:
    approved: bool
    primary_metric: str
    challenger_score: float
    champion: Champion
    test_rows: int
    reasons: list[str] = field(default_factory=list)
    rule: str = ""  # which rule decided, and its verdict, in one sentence
    interval: Interval | None = None  # against the champion
    # Set when no champion is compared: the constant, the metric the gain over it is measured in, and its interval.
    baseline: ConstantBaseline | None = None
    baseline_metric: str = ""
    baseline_interval: Interval | None = None
    slices: list[SliceResult] = field(default_factory=list)


def check_thresholds(task: str, thresholds: Mapping) -> None:
    allowed = METRICS_BY_TASK[task]
    unknown = sorted(set(thresholds) - set(allowed))
    if unknown:
        raise ValueError(f"parameter thresholds names metric(s) {unknown} not computed for {task}; use {list(allowed)}")
    not_numbers = sorted(name for name, value in thresholds.items() if not isinstance(value, int | float))
    if not_numbers:
        raise ValueError(f"parameter thresholds must map metrics to numbers; {not_numbers} are not numbers")


def constant_baseline(card: ModelCard, y_true) -> ConstantBaseline:
    """evaluate_model's constant baseline as the model card records it (``baseline_prediction``: the training
    target's mean, or its most frequent class). A card without it (a model trained before the card had it) falls
    back to the test rows' mean or most frequent class, and the description says so."""
    task = card.task
    value = card.baseline_prediction
    if value is None:
        return baseline_of_test_rows(task, y_true)
    if task == CLASSIFICATION:
        classes = [str(label) for label in card.classes or []]
        if (
            isinstance(value, bool)
            or not isinstance(value, str | int | float)
            or (classes and str(value) not in classes)
        ):
            raise ValueError(
                f"model card key 'baseline_prediction' must be one of the model's classes {classes}, got {value!r}"
            )
        return ConstantBaseline(str(value), "the most frequent training class")
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"model card key 'baseline_prediction' must be a finite number for regression, got {value!r}")
    return ConstantBaseline(float(value), "the training mean")


def baseline_of_test_rows(task: str, y_true) -> ConstantBaseline:
    """The test rows' own mean or most frequent class: the stand-in when no model card records the training one."""
    y_true = np.asarray(y_true)
    note = (
        "the model card has no baseline_prediction, as models trained before cards recorded it do not: the test "
        "rows' constant stands in for the training rows'"
    )
    if task == CLASSIFICATION:
        labels, counts = np.unique(y_true.astype(str), return_counts=True)
        return ConstantBaseline(str(labels[counts.argmax()]), "the test rows' most frequent class", note)
    return ConstantBaseline(float(y_true.astype("float64").mean()), "the test rows' mean", note)


def decide(
    task: str,
    y_true: pd.Series,
    challenger: Scored,
    baseline_scores: Mapping[str, float],
    champion: Champion,
    thresholds: Mapping | None = None,
    min_improvement: float = 0.0,
    policy: GatePolicy | None = None,
    slices: pd.Series | None = None,
    baseline: ConstantBaseline | None = None,
) -> GateDecision:
    """The gate's decision for ``challenger`` (scored on the test rows whose truth is ``y_true``).

    ``slices`` holds the slice column's value of each test row, for the per-slice guard. ``baseline_scores`` (from
    evaluate_model) judge the baseline check beside a champion comparison; without one, the predictions of
    ``baseline`` (None: the test rows' mean or most frequent class) are bootstrapped against the challenger's.
    """
    thresholds = thresholds or {}
    policy = policy or GatePolicy()
    check_thresholds(task, thresholds)
    primary = PRIMARY_METRIC[task]
    y_true = np.asarray(y_true)
    decision = GateDecision(
        approved=False,
        primary_metric=primary,
        challenger_score=challenger.scores[primary],
        champion=champion,
        test_rows=len(y_true),
    )
    passed, failed = [], []
    comparing = champion.version is not None and not champion.problem and not champion.incompatibility

    # Only a comparison with the champion needs enough rows to tell two close models apart; without one, the
    # baseline interval below carries its own evidence, whatever the test-set size.
    if comparing:
        enough_rows = len(y_true) >= policy.min_test_rows
        (passed if enough_rows else failed).append(
            f"test set: {len(y_true)} rows"
            + (
                ""
                if enough_rows
                else f", fewer than min_test_rows={policy.min_test_rows}: too few to tell models apart"
            )
        )

    failed_thresholds = []
    for metric, bound in sorted(thresholds.items()):
        value = challenger.scores.get(metric)
        if value is None:
            failed_thresholds.append(metric)
            failed.append(f"threshold: {metric} cannot be checked: {_why_undefined(metric, y_true)}")
            continue
        holds = value >= bound if HIGHER_IS_BETTER[metric] else value <= bound
        sign = ">=" if HIGHER_IS_BETTER[metric] else "<="
        if not holds:
            failed_thresholds.append(metric)
        (passed if holds else failed).append(
            f"threshold: {metric} {value:.4g} {'' if holds else 'not '}{sign} {bound:g}"
        )

    if comparing:
        over_baseline = improvement(primary, decision.challenger_score, baseline_scores[primary])
        (passed if over_baseline > 0 else failed).append(
            f"baseline: {primary} {decision.challenger_score:.4g} vs constant prediction {baseline_scores[primary]:.4g}"
            + ("" if over_baseline > 0 else " (no better than predicting a constant)")
        )
    elif not champion.problem:  # an unloadable champion blocks promotion whatever the challenger shows
        evidence_metric = decision.baseline_metric = BASELINE_EVIDENCE_METRIC[task]
        decision.baseline = baseline or baseline_of_test_rows(task, y_true)
        constant = decision.baseline.predictions(len(y_true))
        decision.baseline_interval = paired_bootstrap(evidence_metric, y_true, challenger.predictions, constant, policy)
        evidence, beats = _baseline_evidence(evidence_metric, decision.baseline_interval)
        # Rounded: the test rows' own mean scores an r2 of 0 up to float error, and -1e-14 would read as a number.
        scores = [round(_one(evidence_metric, y_true, p), 12) + 0.0 for p in (challenger.predictions, constant)]
        (passed if beats else failed).append(
            f"baseline: {evidence_metric} {scores[0]:.4g} vs {scores[1]:.4g} predicting "
            f"{_described(decision.baseline)} for every row: {evidence}"
            + (f"; {decision.baseline.note}" if decision.baseline.note else "")
        )

    if champion.version is None:
        context = "Cold start (no champion registered)"
        if policy.cold_start == APPROVE:
            passed.append(
                "champion: none registered yet (cold start): the thresholds and the gain over the constant baseline "
                "decide, whatever the test-set size"
            )
            decision.rule = _evidence_rule(context, evidence, beats, failed_thresholds, thresholds)
        else:
            failed.append("champion: none registered yet (cold start) and policy cold_start=reject: a person promotes")
            decision.rule = f"{context}, policy cold_start=reject: not approved, a person promotes ({evidence})"
    elif champion.problem:
        failed.append(
            f"champion v{champion.version}: its files cannot be loaded ({champion.problem}); restore them or move "
            f"the alias `{registry.CHAMPION}` to a version that loads"
        )
        decision.rule = f"Champion v{champion.version} cannot be loaded: not approved, a person must look"
    elif champion.incompatibility:
        message = f"champion v{champion.version}: not comparable on this data ({champion.incompatibility})"
        if policy.incompatible_champion == APPROVE:
            passed.append(
                f"{message}; policy incompatible_champion=approve: the thresholds and the gain over the constant "
                "baseline decide"
            )
            decision.rule = _evidence_rule(
                f"Champion v{champion.version} not comparable, policy incompatible_champion=approve",
                evidence,
                beats,
                failed_thresholds,
                thresholds,
            )
        else:
            failed.append(f"{message}; policy incompatible_champion=reject: a person decides")
            decision.rule = (
                f"Champion v{champion.version} not comparable, policy incompatible_champion=reject: not approved, "
                "a person decides"
            )
    else:
        decision.interval = paired_bootstrap(
            primary, y_true, challenger.predictions, champion.scored.predictions, policy
        )
        verdict, holds = _compare(decision.interval, min_improvement, policy.ties)
        interval = decision.interval
        (passed if holds else failed).append(
            f"champion v{champion.version}: {primary} {decision.challenger_score:.4g} vs "
            f"{champion.scored.scores[primary]:.4g}, gain {interval.gain:+.4g} "
            f"({interval.confidence:.0%} CI [{interval.low:+.4g}, {interval.high:+.4g}], required "
            f"{min_improvement:+.4g}): {verdict}"
        )
        if slices is not None:
            decision.slices = slice_results(primary, task, y_true, challenger, champion.scored, slices, policy)
            for result in decision.slices:
                if (
                    result.judged
                    and improvement(primary, result.challenger, result.champion) < -policy.max_slice_regression
                ):
                    failed.append(
                        f"slice {slices.name}={result.value} ({result.rows} rows): {primary} {result.challenger:.4g} "
                        f"vs champion {result.champion:.4g}, worse by more than "
                        f"max_slice_regression={policy.max_slice_regression:g}"
                    )
        context = f"Comparison with champion v{champion.version} ({primary} on the same {len(y_true)} test rows)"
        if failed:
            decision.rule = f"{context}: not approved, {len(failed)} check(s) failed (listed first below)"
        else:
            decision.rule = (
                f"{context}: approved, {verdict}: gain {interval.gain:+.4g} ({interval.confidence:.0%} CI "
                f"[{interval.low:+.4g}, {interval.high:+.4g}])"
            )

    decision.approved = not failed
    decision.reasons = [f"FAILED {reason}" for reason in failed] + [f"passed {reason}" for reason in passed]
    return decision


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
    ci = f"{interval.confidence:.0%} CI [{interval.low:+.4g}, {interval.high:+.4g}]"
    if interval.low > 0 and interval.gain > 0:
        return f"it beats the constant baseline by {interval.gain:+.4g} {metric} ({ci})", True
    if interval.high < 0:
        return f"it is significantly worse than the constant baseline ({interval.gain:+.4g} {metric}, {ci})", False
    return f"its gain over the constant baseline is within noise ({interval.gain:+.4g} {metric}, {ci})", False


def _evidence_rule(context: str, evidence: str, beats: bool, failed_thresholds: list[str], thresholds) -> str:
    """The decision without a champion comparison, in one sentence: the baseline interval and the thresholds."""
    if beats and not failed_thresholds:
        return f"{context}: approved because {evidence}" + (" and it passes its thresholds" if thresholds else "")
    problems = [] if beats else [evidence]
    if failed_thresholds:
        problems.append(f"threshold(s) {', '.join(failed_thresholds)} failed")
    return f"{context}: not approved: {'; '.join(problems)}"


def _described(baseline: ConstantBaseline) -> str:
    value = f"{baseline.value:.6g}" if isinstance(baseline.value, float) else repr(baseline.value)
    return f"{baseline.description} {value}"


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


def paired_bootstrap(
    metric: str, y_true: np.ndarray, challenger: np.ndarray, reference: np.ndarray, policy: GatePolicy
) -> Interval:
    """Percentile interval of ``metric``'s gain of ``challenger`` over ``reference`` (the champion's predictions,
    or the constant baseline's), both rescored on the same resamples of the test rows.

    Pairing (one resample, both models) cancels what the two share, such as a hard test set, so only the
    difference between the models is left to vary.
    """
    rng = np.random.default_rng(policy.seed)
    rows = len(y_true)
    chunk = max(1, min(policy.bootstrap_samples, BOOTSTRAP_CHUNK_CELLS // max(rows, 1)))
    gains = []
    for start in range(0, policy.bootstrap_samples, chunk):
        size = min(chunk, policy.bootstrap_samples - start)
        counts = np.stack([np.bincount(rng.integers(0, rows, rows), minlength=rows) for _ in range(size)])
        gains.append(
            improvement_vector(
                metric,
                metric_on_resamples(metric, y_true, challenger, counts),
                metric_on_resamples(metric, y_true, reference, counts),
            )
        )
    gains = np.concatenate(gains)
    alpha = 1 - policy.confidence
    low, high = np.quantile(gains, [alpha / 2, 1 - alpha / 2])
    point = improvement(metric, *(_one(metric, y_true, p) for p in (challenger, reference)))
    return Interval(float(point), float(low), float(high), policy.confidence, policy.bootstrap_samples)


def improvement_vector(metric: str, challenger: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return challenger - reference if HIGHER_IS_BETTER[metric] else reference - challenger


def _one(metric: str, y_true: np.ndarray, predictions: np.ndarray) -> float:
    return float(metric_on_resamples(metric, y_true, predictions, np.ones((1, len(y_true))))[0])


def metric_on_resamples(metric: str, y_true: np.ndarray, predictions: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``metric`` on each resample at once; row ``i`` of ``counts`` says how often each test row is drawn.

    Equal to scikit-learn's metric on the resampled rows (tested), computed from weighted sums so a thousand
    resamples cost a few matrix products instead of a thousand metric calls.
    """
    counts = np.asarray(counts, dtype="float64")
    if metric == "r2":
        y = np.asarray(y_true, dtype="float64")
        errors = (y - np.asarray(predictions, dtype="float64")) ** 2
        sums = counts @ np.column_stack([y, y**2, errors])
        total = counts.sum(axis=1)
        spread = sums[:, 1] - sums[:, 0] ** 2 / total
        residual = sums[:, 2]
        # scikit-learn's convention for constant truth: 1 when predicted exactly, else 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = 1 - residual / spread
        constant = np.isclose(spread, 0.0, atol=1e-12 * np.maximum(1.0, sums[:, 1]))
        return np.where(constant, np.where(np.isclose(residual, 0.0), 1.0, 0.0), r2)
    if metric in ("f1_macro", "balanced_accuracy"):
        y = np.asarray(y_true).astype(str)
        predicted = np.asarray(predictions).astype(str)
        labels = np.union1d(y, predicted)
        truth = y[:, None] == labels[None, :]
        guess = predicted[:, None] == labels[None, :]
        true_positive = counts @ (truth & guess)
        if metric == "balanced_accuracy":
            # The mean recall over the labels drawn as truth (scikit-learn ignores a label only ever predicted).
            support = counts @ truth
            drawn = support > 0
            recall = np.divide(true_positive, support, out=np.zeros_like(support), where=drawn)
            return recall.sum(axis=1) / drawn.sum(axis=1)
        false_positive = counts @ (~truth & guess)
        false_negative = counts @ (truth & ~guess)
        denominator = 2 * true_positive + false_positive + false_negative
        # A label drawn neither as truth nor as prediction is not a label of that resample (as in scikit-learn).
        present = denominator > 0
        per_label = np.divide(2 * true_positive, denominator, out=np.zeros_like(denominator), where=present)
        return per_label.sum(axis=1) / present.sum(axis=1)
    raise ValueError(f"the gate compares r2, f1_macro or balanced_accuracy, not {metric!r}")


def slice_results(
    metric: str,
    task: str,
    y_true: np.ndarray,
    challenger: Scored,
    champion: Scored,
    slices: pd.Series,
    policy: GatePolicy,
) -> list[SliceResult]:
    """Both models' ``metric`` on each slice, largest slice first; slices under ``min_slice_rows`` are not judged."""
    values = slice_labels(slices).to_numpy()
    results = []
    names, sizes = np.unique(values, return_counts=True)
    for name, rows in sorted(zip(names, sizes, strict=True), key=lambda item: (-item[1], item[0])):
        if rows < policy.min_slice_rows:
            results.append(SliceResult(str(name), int(rows)))
            continue
        mask = values == name
        results.append(
            SliceResult(
                str(name),
                int(rows),
                challenger=score(task, y_true[mask], challenger.predictions[mask])[metric],
                champion=score(task, y_true[mask], champion.predictions[mask])[metric],
            )
        )
    return results


def slices_of(test: pd.DataFrame, slice_column: str) -> pd.Series | None:
    """The slice column of ``test``, None without one; a column the test set lacks raises naming it."""
    if not slice_column:
        return None
    if slice_column not in test.columns:
        raise ValueError(f"parameter slice_column: column {slice_column!r} is not in the test set {list(test.columns)}")
    return test[slice_column]


def measure(bundle, test: pd.DataFrame) -> Scored:
    """The bundle's predictions and scores on ``test`` (raises model_bundle.FeatureError for missing columns)."""
    target = bundle.card.target
    predicted, probabilities = predictions(bundle, test.drop(columns=[target]))
    scores = score(bundle.task, test[target], predicted, probabilities, bundle.card.classes)
    return Scored(predictions=predicted, scores=scores)


def incompatibility(champion, challenger, test: pd.DataFrame) -> str | None:
    """Why ``champion`` cannot be compared fairly with ``challenger`` on ``test``, or None when it can."""
    from model_bundle.schema import TYPES, compare

    for key, was, now in (
        ("target", champion.card.target, challenger.card.target),
        ("task", champion.card.task, challenger.card.task),
    ):
        if was != now:
            return f"it predicts {key} {was!r}, the challenger {now!r}"
    missing = [name for name in champion.feature_names if name not in test.columns]
    if missing:
        return f"it needs column(s) {missing} that this data does not have"
    if champion.schema and challenger.schema:
        needed = set(champion.feature_names)
        changed = [
            finding.message
            for finding in compare(champion.schema, challenger.schema, test)
            if finding.check == TYPES and finding.column in needed
        ]
        if changed:
            return "; ".join(changed)
    return None


def load_champion(tracking_uri: str, model_name: str, challenger, test: pd.DataFrame) -> Champion:
    """The registry's champion of ``model_name``, checked against ``challenger`` and scored on ``test``."""
    from mlflow.exceptions import MlflowException

    from model_bundle import BundleError, BundleFormatError, FeatureError, load

    client = registry.connect(tracking_uri)
    version = registry.version_by_alias(client, model_name, registry.CHAMPION)
    if version is None:
        return Champion()
    champion = Champion(version=str(version.version))
    with tempfile.TemporaryDirectory() as workdir:
        try:
            bundle = load(registry.download_version(version, workdir), expected_sha256=version.tags.get("model_sha256"))
        except BundleFormatError as error:
            # Intact files of an older release: no fair comparison, so incompatible_champion decides (not a person).
            champion.incompatibility = str(error)
            return champion
        except (BundleError, MlflowException, OSError) as error:
            champion.problem = str(error)
            return champion
        champion.incompatibility = incompatibility(bundle, challenger, test)
        if champion.incompatibility is None:
            try:
                champion.scored = measure(bundle, test)
            except FeatureError as error:
                champion.incompatibility = str(error)
    return champion


def render_reasons(decision: GateDecision) -> str:
    """The decision as Markdown: the verdict and the rule that decided, every check with its numbers, the
    intervals and the slices."""
    verdict = "approved" if decision.approved else "rejected"
    lines = [
        f"# Challenger {verdict}",
        "",
        f"**Decided by:** {decision.rule}.",
        "",
        f"Primary metric `{decision.primary_metric}`: {decision.challenger_score:.4g} "
        f"on {decision.test_rows} test rows.",
        "",
    ]
    lines += [f"- {reason}" for reason in decision.reasons]
    interval = decision.baseline_interval
    if interval is not None:
        lines += [
            "",
            "## Challenger vs constant baseline",
            "",
            f"The baseline predicts {_described(decision.baseline)} for every row"
            + (f"; {decision.baseline.note}" if decision.baseline.note else "")
            + f". Paired bootstrap over {interval.samples} resamples of the test rows: gain in "
            f"{decision.baseline_metric} {interval.gain:+.4g}, "
            f"{interval.confidence:.0%} confidence interval [{interval.low:+.4g}, {interval.high:+.4g}]; the "
            "challenger beats the baseline beyond noise when the interval lies above zero.",
        ]
    interval = decision.interval
    if interval is not None:
        lines += [
            "",
            "## Challenger vs champion",
            "",
            f"Paired bootstrap over {interval.samples} resamples of the test rows: gain {interval.gain:+.4g}, "
            f"{interval.confidence:.0%} confidence interval [{interval.low:+.4g}, {interval.high:+.4g}].",
        ]
    if decision.slices:
        lines += [
            "",
            "## Slices",
            "",
            f"| slice | rows | challenger {decision.primary_metric} | champion {decision.primary_metric} |",
            "|---|---:|---:|---:|",
        ]
        for result in decision.slices:
            if result.judged:
                lines.append(f"| {result.value} | {result.rows} | {result.challenger:.4g} | {result.champion:.4g} |")
            else:
                lines.append(f"| {result.value} | {result.rows} | too few rows to judge | |")
    return "\n".join(lines) + "\n"
