"""Detects drift of new data from the champion's training rows with Evidently's statistical tests.

Each feature gets a test chosen by its type and the size of the reference sample, Evidently's own rule made
explicit so that every test gets the threshold of its kind:
- up to ``LARGE_REFERENCE`` reference rows, tests with a p-value: Kolmogorov-Smirnov for numbers, the chi-square
  test of homogeneity for categories (``HOMOGENEITY``); a feature drifts when p < ``alpha``, divided by the number
  of such tests under the ``bonferroni`` correction (many features tested at once would otherwise flag some by
  chance);
- above it, where any p-value test flags differences too small to matter, distances: the Wasserstein distance
  normed by the reference's standard deviation for numbers, the Jensen-Shannon distance for categories; a feature
  drifts when the distance reaches ``distance_threshold`` (what a value means for each distance: see DriftPolicy).
The data drifts when at least ``drift_share`` of the features drift. Categories never seen in the reference are
listed for each feature (the category tests count them too).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import model_bundle.profile
from components._common import fairness
from components._common.policies import policy_from_mapping
from model_bundle import CATEGORICAL, NUMERIC, coerce_features

LARGE_REFERENCE = 1000  # Evidently's limit between p-value tests and distances
# Evidently's own category tests for small references are goodness of fit: chisquare takes the reference's shares
# as exact, so a batch of the same distribution 5-20 times the reference's size drifts (p 1e-7 at 5,000 rows against
# 1,000), and its z-test merges a category never seen with one that was. Two samples of counts are compared by the
# chi-square test of homogeneity (scipy's chi2_contingency on the 2 x categories table), registered as this test.
HOMOGENEITY = "chi2_homogeneity"
P_VALUE_TESTS = {"ks": "Kolmogorov-Smirnov", HOMOGENEITY: "chi-square test of homogeneity"}
DISTANCE_TESTS = {"wasserstein": "Wasserstein distance (normed)", "jensenshannon": "Jensen-Shannon distance"}
# The largest Jensen-Shannon distance (scipy's, natural logarithm, as Evidently calls it), of two samples with no
# category in common: sqrt(ln 2) = 0.83255... The normed Wasserstein distance has no upper bound.
JENSEN_SHANNON_MAX = math.sqrt(math.log(2))
BONFERRONI, NO_CORRECTION = "bonferroni", "none"
MAX_UNSEEN_LISTED = 5
# The policy key the gap limits are read from, as error messages name it.
FAIRNESS_PARAMETER = "drift_policy['max_fairness_gap']"
# The absolute limit of each fairness gap of the champion on a labelled batch, by default (why: see
# DriftPolicy.max_fairness_gap); a ratio's limit is a floor, every other gap's a ceiling.
DEFAULT_FAIRNESS_LIMITS = {
    fairness.DP_DIFFERENCE: 0.1,
    fairness.DP_RATIO: 0.8,
    fairness.EO_DIFFERENCE: 0.1,
    fairness.MAE_GAP: 0.5,
    fairness.RMSE_GAP: 0.5,
}


class DriftError(ValueError):
    """Drift cannot be measured as asked; the message names the column, document or parameter."""


@dataclass(frozen=True)
class DriftPolicy:
    """When a feature, and the data, drift; every field can be set through the parameter ``drift_policy``.

    Attributes:
        drift_share: Share of the features that must drift for the data to drift, in (0, 1] (Evidently's default).
        alpha: Significance of the p-value tests (reference samples up to 1,000 rows), in (0, 1), before the
            correction.
        correction: `bonferroni` (alpha divided by the number of p-value tests, so that many features tested at
            once do not flag some by chance) or `none`.
        distance_threshold: Distance from which a feature drifts (reference samples above 1,000 rows), above 0
            and at most sqrt(ln 2) = 0.8325...: for numbers the normed Wasserstein distance, the shift in reference
            standard deviations (0.1: a tenth of one); for categories the Jensen-Shannon distance, from 0 (same
            shares) to sqrt(ln 2) (no category in common), so a larger threshold would never flag a category.
        min_rows: Fewest rows of new data to test; a smaller batch cannot show drift reliably and is refused.
        max_fairness_gap: Per gap metric (components._common.fairness.GAP_METRICS), the limit of the champion's
            gap between the groups of each `sensitive_columns` column on a labelled batch; keys set here override
            the defaults: 0.1 for `demographic_parity_difference` and `equalized_odds_difference`, 0.8 for
            `demographic_parity_ratio` (a floor: the four-fifths rule), 0.5 for the regressors'
            `mae_relative_gap` and `rmse_relative_gap`. The differences' 0.1 and the ratio's 0.8 are the bounds
            usually read as unfair; the regressors' gaps have none customary, and 0.5 (the worst-served group's
            error exceeding the best-served one's by half the typical error) flags what a person should look
            at. A gap alerts (`fairness_alert`) when it is beyond its limit and so is its whole bootstrap interval,
            so a small batch's noise does not page anyone; null (`None`) turns a gap's alert off (still reported). A
            ratio's limit is in [0, 1].
        min_group_rows: Groups of a sensitive column with fewer labelled rows in the batch are listed but not
            judged: their rates move by 1/rows per row.
    """

    drift_share: float = 0.5
    alpha: float = 0.05
    correction: str = BONFERRONI
    distance_threshold: float = 0.1
    min_rows: int = 30
    max_fairness_gap: dict = field(default_factory=dict)
    min_group_rows: int = fairness.MIN_GROUP_ROWS

    @classmethod
    def from_mapping(cls, values: Mapping) -> DriftPolicy:
        policy = policy_from_mapping(cls, values, "drift_policy")
        if not 0 < policy.drift_share <= 1:
            raise DriftError(f"parameter drift_policy['drift_share'] must be in (0, 1], got {policy.drift_share}")
        if not 0 < policy.alpha < 1:
            raise DriftError(f"parameter drift_policy['alpha'] must be in (0, 1), got {policy.alpha}")
        if policy.correction not in (BONFERRONI, NO_CORRECTION):
            raise DriftError(
                f"parameter drift_policy['correction'] must be {BONFERRONI!r} or {NO_CORRECTION!r}, got "
                f"{policy.correction!r}"
            )
        if not 0 < policy.distance_threshold <= JENSEN_SHANNON_MAX:
            raise DriftError(
                "parameter drift_policy['distance_threshold'] must be above 0 and at most sqrt(ln 2) = 0.8325..., "
                f"got {policy.distance_threshold}: the Jensen-Shannon distance of a category reaches sqrt(ln 2) when "
                "no category is in common, so a larger threshold would never flag one"
            )
        if policy.min_rows < 1:
            raise DriftError(f"parameter drift_policy['min_rows'] must be at least 1, got {policy.min_rows}")
        if policy.min_group_rows < 1:
            raise DriftError(
                f"parameter drift_policy['min_group_rows'] must be at least 1, got {policy.min_group_rows}"
            )
        try:
            fairness.check_gap_limits(policy.max_fairness_gap, FAIRNESS_PARAMETER, "alert off")
        except ValueError as error:
            raise DriftError(str(error)) from error
        return policy

    def fairness_limits(self, task: str) -> dict[str, float | None]:
        """The limit of each gap metric of ``task``: the defaults with ``max_fairness_gap`` over them (None: no
        alert); a gap of another task is refused, naming it."""
        try:
            return fairness.gap_limits(task, self.max_fairness_gap, DEFAULT_FAIRNESS_LIMITS, FAIRNESS_PARAMETER)
        except ValueError as error:
            raise DriftError(str(error)) from error


@dataclass(frozen=True)
class FeatureDrift:
    column: str
    feature_type: str
    test: str
    score: float  # a p-value or a distance, as the test says
    threshold: float
    drifted: bool
    unseen_categories: tuple[str, ...] = ()
    unseen_share: float = 0.0

    @property
    def is_p_value(self) -> bool:
        return self.test in P_VALUE_TESTS


@dataclass
class DriftResult:
    features: list[FeatureDrift]
    reference_rows: int
    current_rows: int
    policy: DriftPolicy
    snapshot: object = field(default=None, repr=False)  # Evidently's report, for its HTML

    @property
    def drifted_features(self) -> list[str]:
        return [feature.column for feature in self.features if feature.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.features)

    @property
    def dataset_drift(self) -> bool:
        return self.drifted_share >= self.policy.drift_share


def reference_sample(profile: Mapping) -> pd.DataFrame:
    """The training rows kept in a reference profile (``reference_profile.json``) as a frame."""
    sample = model_bundle.profile.reference_sample(profile)
    if sample is None:
        raise DriftError(
            "the reference profile holds no sample of training rows (a model trained before samples were kept): "
            "train a new champion to monitor it"
        )
    return sample


def champion_reference(tracking_uri: str, model_name: str) -> tuple[pd.DataFrame, list[dict]]:
    """The champion's reference sample and its features (names and types from its model card), read with one
    registry look-up and verified against their digests (a tampered file raises model_bundle.BundleError naming it).
    """
    return reference_of(monitored_champion(tracking_uri, model_name))


def monitored_champion(tracking_uri: str, model_name: str):
    """The registry's champion of ``model_name`` (a registry.VerifiedVersion: card and documents verified), the one
    look-up behind both the drift reference and the fairness of a labelled batch; DriftError when it has none with
    a reference profile."""
    from components._common import registry
    from model_bundle import PROFILE_FILE

    champion = registry.champion(tracking_uri, model_name)
    if champion is None or champion.document(PROFILE_FILE) is None:
        raise DriftError(
            f"model {model_name!r} has no champion with a reference profile in the registry: train and deploy one "
            "before monitoring it"
        )
    return champion


def reference_of(champion) -> tuple[pd.DataFrame, list[dict]]:
    """A verified champion's reference sample and its features (names and types from its model card)."""
    from model_bundle import PROFILE_FILE

    return reference_sample(champion.document(PROFILE_FILE)), champion.card.features


def choose_test(feature_type: str, reference: pd.Series) -> str:
    """The test of one feature, by its type and the reference sample's size (see the module docstring)."""
    small = len(reference) <= LARGE_REFERENCE
    if feature_type == NUMERIC:
        return "ks" if small else "wasserstein"
    return HOMOGENEITY if small else "jensenshannon"


def _homogeneity_p_value(
    reference: pd.Series, current: pd.Series, feature_type, threshold: float
) -> tuple[float, bool]:
    """Evidently's stat-test interface: the p-value that both samples' categories come from one distribution."""
    from scipy.stats import chi2_contingency

    counts = pd.concat([reference.value_counts(), current.value_counts()], axis=1).fillna(0).to_numpy().T
    p_value = 1.0 if counts.shape[1] < 2 else float(chi2_contingency(counts, correction=False).pvalue)
    return p_value, p_value < threshold


@functools.cache  # once a process: Evidently's registry is global
def _register_homogeneity_test() -> None:
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    test = StatTest(
        name=HOMOGENEITY, display_name=P_VALUE_TESTS[HOMOGENEITY], allowed_feature_types=[ColumnType.Categorical]
    )
    register_stattest(test, default_impl=_homogeneity_p_value)


def detect(
    reference: pd.DataFrame, current: pd.DataFrame, features: Sequence[Mapping[str, str]], policy: DriftPolicy
) -> DriftResult:
    """Tests every feature of the model (``features``: names and types from its card) of ``current`` against
    ``reference``; raises DriftError naming a missing or empty column or a batch too small to test."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    _register_homogeneity_test()

    names = [feature["name"] for feature in features]
    for frame, what in ((reference, "the reference sample"), (current, "the new data")):
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise DriftError(f"{what} lacks feature column(s) {missing} of the model")
    if len(current) < policy.min_rows:
        raise DriftError(
            f"the new data has {len(current)} rows, fewer than drift_policy['min_rows']={policy.min_rows}: too few "
            "to test for drift"
        )
    types = {feature["name"]: feature["type"] for feature in features}
    # Typed as the model sees them (numbers as float, categories as text), by the one coercion training uses.
    reference, current = (coerce_features(frame[names], features) for frame in (reference, current))
    # Evidently refuses an empty column with its own error; say which and what to do.
    empty = [name for name in names if current[name].isna().all()]
    if empty:
        raise DriftError(
            f"feature column(s) {empty} of the new data have no values (every row is missing), so their drift cannot "
            "be tested: fill them in the batch (an upstream source or export that stopped writing them is the usual "
            "cause) and run again"
        )
    tests = {name: choose_test(types[name], reference[name].dropna()) for name in names}
    p_value_tests = sum(test in P_VALUE_TESTS for test in tests.values())
    alpha = policy.alpha / p_value_tests if policy.correction == BONFERRONI and p_value_tests else policy.alpha
    thresholds = {name: alpha if test in P_VALUE_TESTS else policy.distance_threshold for name, test in tests.items()}

    definition = DataDefinition(
        numerical_columns=[name for name in names if types[name] == NUMERIC],
        categorical_columns=[name for name in names if types[name] == CATEGORICAL],
    )
    snapshot = Report(
        [
            DataDriftPreset(
                columns=names,
                drift_share=policy.drift_share,
                per_column_method=tests,
                per_column_threshold=thresholds,
            )
        ]
    ).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    scores = {
        metric["config"]["column"]: float(metric["value"])
        for metric in snapshot.dict()["metrics"]
        if metric["config"]["type"].endswith(":ValueDrift")
    }
    results = []
    for name in names:
        score, test, threshold = scores[name], tests[name], thresholds[name]
        unseen, unseen_share = _unseen(reference[name], current[name]) if types[name] == CATEGORICAL else ((), 0.0)
        results.append(
            FeatureDrift(
                column=name,
                feature_type=types[name],
                test=test,
                score=score,
                threshold=threshold,
                drifted=score < threshold if test in P_VALUE_TESTS else score >= threshold,
                unseen_categories=unseen,
                unseen_share=unseen_share,
            )
        )
    return DriftResult(results, len(reference), len(current), policy, snapshot)


def _unseen(reference: pd.Series, current: pd.Series) -> tuple[tuple[str, ...], float]:
    present = current.dropna()
    unseen = present[~present.isin(set(reference.dropna()))]
    if unseen.empty:
        return (), 0.0
    listed = tuple(unseen.value_counts().index[:MAX_UNSEEN_LISTED].tolist())
    return listed, len(unseen) / len(present)


def render_summary(result: DriftResult) -> str:
    """The decision as Markdown: verdict (with the features that drifted), policy and one row per feature; its
    first two paragraphs are the verdict run_local.py prints after a monitoring run."""
    policy = result.policy
    verdict = "Drift detected" if result.dataset_drift else "No drift"
    drifted = f": {', '.join(result.drifted_features)}" if result.drifted_features else ""
    lines = [
        f"# {verdict}",
        "",
        f"{len(result.drifted_features)} of {len(result.features)} features drifted ({result.drifted_share:.0%}"
        f"{drifted}); the data drifts from {policy.drift_share:.0%} (`drift_share`). {result.current_rows} new rows "
        f"against {result.reference_rows} reference rows (a sample of the champion's training rows).",
        "",
        _thresholds_ran(result),
        "",
        "| feature | type | test | score | threshold | drifted | unseen categories |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for feature in sorted(result.features, key=lambda item: (not item.drifted, item.column)):
        name = P_VALUE_TESTS.get(feature.test) or DISTANCE_TESTS[feature.test]
        unseen = (
            f"{list(feature.unseen_categories)} ({feature.unseen_share:.1%} of rows)"
            if feature.unseen_categories
            else ""
        )
        kind = "p-value" if feature.is_p_value else "distance"
        lines.append(
            f"| {feature.column} | {feature.feature_type} | {name} | {kind} {_number(feature.score)} | "
            f"{_number(feature.threshold)} | {'**yes**' if feature.drifted else 'no'} | {unseen} |"
        )
    return "\n".join(lines) + "\n"


def _thresholds_ran(result: DriftResult) -> str:
    """The thresholds of the kinds of test that ran, so the correction is named only where it divided alpha."""
    policy, kinds = result.policy, {feature.is_p_value for feature in result.features}
    said = []
    if True in kinds:
        correction = " divided by their number (Bonferroni)" if policy.correction == BONFERRONI else ""
        said.append(f"p-value tests drift below alpha {policy.alpha:g}{correction}")
    if False in kinds:
        said.append(f"distances drift from {policy.distance_threshold:g}")
    return "; ".join(said) + "."


def _number(value: float) -> str:
    return f"{value:.3g}" if np.isfinite(value) else str(value)
