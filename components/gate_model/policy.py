"""How strict the gate is: ``GatePolicy``, read from the step's one dict parameter ``gate_policy`` (the old
``thresholds`` and ``min_improvement`` parameters merged in for one release), with its defaults and checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from components._common import fairness
from components._common.policies import Deprecated, check_range, policy_from_mapping
from components._common.scoring import HIGHER_IS_BETTER, METRIC_RANGES, METRICS_BY_TASK
from components._common.slices import MIN_SLICE_ROWS, SliceRule

APPROVE, REJECT = "approve", "reject"
KEEP_CHAMPION, PROMOTE_CHALLENGER = "keep_champion", "promote_challenger"
CHOICES = {
    "cold_start": (APPROVE, REJECT),
    "incompatible_champion": (APPROVE, REJECT),
    "ties": (KEEP_CHAMPION, PROMOTE_CHALLENGER),
}
# The policy key the gap limits are read from, as error messages name it.
FAIRNESS_PARAMETER = "gate_policy['max_fairness_gap']"
# How much wider the challenger may make each gap than the champion's on the same test rows, by default (why: see
# GatePolicy.max_fairness_gap). Half the distance from parity to the bound usually read as unfair (a difference of
# 0.1; a ratio of 0.8, the four-fifths rule), so one promotion spends at most half of that budget.
DEFAULT_MAX_FAIRNESS_GAP = {
    fairness.DP_DIFFERENCE: 0.05,
    fairness.DP_RATIO: 0.1,
    fairness.EO_DIFFERENCE: 0.05,
    fairness.MAE_GAP: 0.1,
    fairness.RMSE_GAP: 0.1,
}


@dataclass(frozen=True)
class GatePolicy:
    """How strict the gate is; every field is a key of the pipeline parameter ``gate_policy``.

    Attributes:
        thresholds: Absolute bounds per metric the challenger must hold, e.g. `{"r2": 0.6}` (a floor: the metric is
            better higher) or `{"rmse": 40000}` (a ceiling); a bound on a metric undefined on the test set fails.
            Each bound lies in its metric's range: 0 to 1 for accuracy, balanced_accuracy, f1_macro and roc_auc (0.9,
            not 90), at most 1 for r2, at least 0 for the errors and log_loss.
        min_improvement: How much the primary metric (r2, or f1_macro for a classifier) must gain over the
            champion's, from 0 to 1.
        confidence: Of the bootstrap intervals of the gain over the champion or the constant baseline.
        bootstrap_samples: Resamples of the test rows behind each interval.
        min_test_rows: Test rows needed to compare with a champion (fewer cannot tell two models apart); a cold
            start is decided by its interval over the constant baseline, whatever the test-set size.
        cold_start: No champion yet: `approve` on the thresholds and the baseline interval, or `reject` (a person
            promotes).
        incompatible_champion: The champion cannot be compared fairly (another target or task, columns or types
            this data no longer has) or cannot be loaded by this release (another model format, or pickled by
            another scikit-learn version): `reject` (a person decides), or `approve` on the thresholds and the
            baseline interval.
        ties: A gain within noise: `keep_champion`, or `promote_challenger` (fresher data wins).
        min_slice_rows: Slices of the `slice_column` with fewer test rows are not judged (nor scored in the
            evaluation report, which reads this key too).
        max_slice_regression: How much worse than under the champion a judged slice's primary metric may be, from 0
            to 1.
        max_fairness_gap: Per gap metric of the task (components._common.fairness.GAP_METRICS), how much wider the
            challenger's gap between the groups of each `sensitive_columns` column may be than the champion's on the
            same test rows; it is refused when it widens a gap by more AND the paired bootstrap interval of the
            widening lies above zero (beyond noise). Each limit is at least 0, and at most 1 for the demographic
            parity and equalized odds gaps (which lie in [0, 1]). Keys set here override the defaults (`{}` keeps
            them all), which apply whenever `sensitive_columns` is set: 0.05 for `demographic_parity_difference` and
            `equalized_odds_difference`, 0.1 for `demographic_parity_ratio` (a ratio widens as it drops: a drop
            of 0.1) and for the regressors' `mae_relative_gap` and `rmse_relative_gap`. Why these: a difference of 0.1
            and a ratio of 0.8 (the four-fifths rule) are the bounds usually read as unfair, so one promotion may
            spend at most half of the distance from parity to them; a widening of 0.05 is also more than one row
            of a group at the smallest judged size (1/30 = 0.033), the bootstrap interval judging the rest of the
            noise. The regressors' relative gaps (the error gap between groups over the typical error) have no
            customary bound: 0.1 lets one promotion make the worst-served group's error exceed the best-served
            one's by at most a further tenth of the typical error. A key set to null (`None`) turns that gap's
            guard off (the gaps are still reported); setting every gap of the task to null turns the guard off.
            Demographic parity ignores the labels, so it catches a model that learnt labels biased against a group;
            equalized odds is measured against the recorded labels, so when those are known to be biased a model
            that is right where they are wrong widens it: set `equalized_odds_difference` to null then.
        min_group_rows: Groups of a sensitive column with fewer test rows are listed with their row count but
            neither scored (evaluation report, which reads this key too) nor judged (gate): their rates move by
            1/rows per row, too much to be read.
        seed: Of the bootstrap resampling (0 or more): the same data always gets the same decision.
    """

    thresholds: dict = field(default_factory=dict)
    min_improvement: float = 0.0
    confidence: float = 0.95
    bootstrap_samples: int = 1000
    min_test_rows: int = 100
    cold_start: str = APPROVE
    incompatible_champion: str = REJECT
    ties: str = KEEP_CHAMPION
    min_slice_rows: int = MIN_SLICE_ROWS
    max_slice_regression: float = 0.02
    max_fairness_gap: dict = field(default_factory=dict)
    min_group_rows: int = fairness.MIN_GROUP_ROWS
    seed: int = 0

    def __post_init__(self):
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"parameter gate_policy[{key!r}] must be one of {allowed}, got {getattr(self, key)!r}")
        check_range("gate_policy['confidence']", self.confidence, 0.5, 1.0, high_open=True)
        for key in ("bootstrap_samples", "min_test_rows"):
            if getattr(self, key) < 1:
                raise ValueError(f"parameter gate_policy[{key!r}] must be at least 1, got {getattr(self, key)}")
        SliceRule(self.min_slice_rows)  # checks min_slice_rows where the slice rule is owned
        # Gains and regressions of the primary metric (f1_macro in [0, 1], r2 at most 1 and under 0 worse than the
        # constant): beyond 1 no challenger gains enough (5 meant as 5%) and every slice regression is allowed.
        check_range("gate_policy['min_improvement']", self.min_improvement, 0.0, 1.0)
        check_range("gate_policy['max_slice_regression']", self.max_slice_regression, 0.0, 1.0)
        not_numbers = sorted(str(name) for name, value in self.thresholds.items() if not _is_number(value))
        if not_numbers:
            raise ValueError(
                f"parameter gate_policy['thresholds'] must map metrics to numbers; {not_numbers} are not numbers"
            )
        for metric, bound in self.thresholds.items():
            # A metric of no task is named by check_thresholds; its bound is still refused when it is NaN.
            check_range(f"gate_policy['thresholds'][{metric!r}]", bound, *METRIC_RANGES.get(metric, ()))
        if self.min_group_rows < 1:
            raise ValueError(f"parameter gate_policy['min_group_rows'] must be at least 1, got {self.min_group_rows}")
        if self.seed < 0:
            raise ValueError(f"parameter gate_policy['seed'] must be at least 0, got {self.seed}")
        fairness.check_gap_limits(self.max_fairness_gap, FAIRNESS_PARAMETER, "guard off")

    @classmethod
    def from_mapping(
        cls, values: Mapping | None, thresholds: Mapping | None = None, min_improvement: float | None = None
    ) -> GatePolicy:
        """The policy from the parameter ``gate_policy``; unknown keys and invalid values raise naming the key.

        ``thresholds`` and ``min_improvement`` are the deprecated parameters of those names (None: not given),
        merged into their keys with a deprecation message; one contradicting ``gate_policy`` raises.
        """
        return policy_from_mapping(
            cls,
            values,
            "gate_policy",
            deprecated=[
                Deprecated("thresholds", None if thresholds is None else {"thresholds": thresholds}),
                Deprecated(
                    "min_improvement", None if min_improvement is None else {"min_improvement": min_improvement}
                ),
            ],
        )

    @property
    def slice_rule(self) -> SliceRule:
        """The rule of which slices are judged, shared with evaluate_model's report."""
        return SliceRule(self.min_slice_rows)

    def check_fairness_gaps(self, task: str) -> None:
        """Every key of ``max_fairness_gap`` is a gap metric of ``task``; raises naming the others."""
        self.fairness_tolerances(task)

    def fairness_tolerances(self, task: str) -> dict[str, float | None]:
        """How much each gap metric of ``task`` may widen: the defaults with ``max_fairness_gap`` over them; None
        where the guard of that gap is off. Raises naming a gap metric of another task."""
        return fairness.gap_limits(task, self.max_fairness_gap, DEFAULT_MAX_FAIRNESS_GAP, FAIRNESS_PARAMETER)

    def check_thresholds(self, task: str) -> None:
        """Every threshold names a metric computed for ``task``; raises naming the others."""
        allowed = METRICS_BY_TASK[task]
        unknown = sorted(set(self.thresholds) - set(allowed))
        if unknown:
            raise ValueError(
                f"parameter gate_policy['thresholds'] names metric(s) {unknown} not computed for {task}; "
                f"use {list(allowed)}"
            )

    def threshold_holds(self, metric: str, value: float) -> bool:
        """Whether ``value`` of ``metric`` is within its threshold: at least a floor, at most a ceiling."""
        bound = self.thresholds[metric]
        return value >= bound if HIGHER_IS_BETTER[metric] else value <= bound


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
