"""The leakage check: which features give the target away, typically because they are recorded after it (a refund
amount for "was refunded", a copy of the price in another currency, the parts of a total), and its findings.

Both measures work on a seeded sample of at most ``SAMPLE_ROWS`` labelled rows (exact duplicate rows dropped, as
prepare_data drops them: a repeated row would be learnt by heart across folds) and score out-of-fold predictions of
``FOLDS``-fold cross-validation: r2 for regression, balanced accuracy (each class weighs the same) for
classification. Categories are coded once by scikit-learn's OrdinalEncoder, the ``MAX_CATEGORIES - 1`` most
frequent kept; missing values stay missing (the trees route them).

1. Alone: per feature, a small decision tree (``ALONE_LEAVES`` leaves) on that column only. It finds a copy of the
   target with noise, a rescaled or monotone transform of it (its log) or a coded label. A feature scoring at least
   ``ALONE`` is suspected. The score of every feature is in the report.
2. Too good a fit: the whole table, fitted by extra-trees and by a linear model (Ridge / LogisticRegression on
   imputed, scaled numbers and one-hot categories): the linear one sees targets that are sums of columns, which
   trees only approximate. When the better score reaches ``NEAR_PERFECT``, the features that fit leans on (those
   whose shuffling on the held-out folds costs ``COLLAPSE``: permutation importance; at most ``MAX_DROPPED``) are
   dropped one at a time and both models refitted: a feature whose removal lowers the score by ``COLLAPSE`` or
   more is suspected. This names leaks spread over columns that are unremarkable alone, e.g. the parts of a total.

Calibration: legitimately strong predictors must not be named. Measured by ``bench/leakage.py --tables`` (seed 0;
"alone": the best single feature; "whole": the better whole-table model; "fall": the largest fall of the whole score
when one feature is dropped, measured here whatever the whole score; none: no feature weighs ``COLLAPSE``):

====================================  ==============  =====  ================================  =====  =====
table (target)                        task            rows   best alone                        whole  fall
====================================  ==============  =====  ================================  =====  =====
sample://house-prices (price)         regression      2000   0.522 size_sqm                    0.910  0.261
sample://house-prices (energy_label)  classification  2000   0.224 age_years                   0.360  0.152
sklearn iris (species)                classification  149    0.953 petal width                 0.953  0.020
sklearn wine (cultivar)               classification  178    0.779 flavanoids                  0.980  none
sklearn breast_cancer (diagnosis)     classification  569    0.889 worst concave points        0.972  none
sklearn digits (digit)                classification  1797   0.284 pixel_7_5                   0.978  none
sklearn diabetes (progression)        regression      442    0.180 s4                          0.495  0.066
statsmodels cancer (cancer deaths)    regression      301    0.868 population                  0.917  0.917
statsmodels engel (income)            regression      232    0.681 foodexp                     0.806  0.806
statsmodels grunfeld (invest)         regression      220    0.764 firm                        0.959  0.156
statsmodels modechoice (choice)       classification  840    0.840 ttme                        0.852  0.109
statsmodels star98 (NABOVE)           regression      303    0.233 NBELOW                      0.460  0.260
statsmodels fair (affairs)            regression      1828   0.038 rate_marriage               0.048  0.038
statsmodels anes96 (PID)              classification  943    0.297 selfLR                      0.324  0.041
statsmodels randhie (mdvis)           regression      1567   0.027 disea                       0.040  0.029
planted: price + 10% noise            regression      2000   0.980 price_eur                   0.989  0.079
planted: log(price)                   regression      2000   0.990 log_price                   0.994  0.084
planted: total = materials + labour   regression      1500   0.439 labour                      1.000  0.506
====================================  ==============  =====  ================================  =====  =====

None of the real tables is named; the planted leaks are (the noisy copy and the log alone, the log also by the fit,
the two parts of the total by the fit only). Hence ``ALONE`` r2 0.95 (the best honest single feature: 0.87) and
balanced accuracy 0.98 (iris, nearly separable by one petal measurement: 0.95); ``NEAR_PERFECT`` 0.99 (the best
honest whole fits: 0.98, and there no feature weighs enough to be refitted); ``COLLAPSE`` 0.05. Neither condition of
the too-good fit suffices alone: honest tables fall by up to 0.92 without their main feature, and reach 0.98. A table
of fewer than ``MIN_ROWS`` labelled rows is not checked: cross-validated scores of a few dozen rows are noise.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from components._common.cleaning import to_numbers
from components._common.scoring import CLASSIFICATION, REGRESSION
from components.validate_data.policy import LEAKAGE
from model_bundle import CATEGORICAL
from model_bundle.schema import Finding

SAMPLE_ROWS = 2000
# The check's peak memory per feature column, on its sample of at most SAMPLE_ROWS rows: its matrix and the models
# fitted on it (counted by the step's memory estimate). 2,000 rows of 4,000 numeric columns: validate_data peaked at
# 894 MB, 593 MB with the check off (75 KB a column); of 10,001 columns at 1,986 MB, where the estimate without the
# check was 960 MB (about 100 KB a column).
MEMORY_PER_COLUMN = 128 * 1024
MIN_ROWS = 50
FOLDS = 3
MAX_CATEGORIES = 64
ALONE_LEAVES = 32
TREES = 50
PERMUTATION_REPEATS = 3
MAX_DROPPED = 5  # features refitted without, at most (a leak spread wider is no longer "too good to be true")
METRIC = {REGRESSION: "r2", CLASSIFICATION: "balanced_accuracy"}
ALONE = {REGRESSION: 0.95, CLASSIFICATION: 0.98}
NEAR_PERFECT = {REGRESSION: 0.99, CLASSIFICATION: 0.99}
COLLAPSE = 0.05

BY_ALONE = "alone"
BY_FIT = "too good a fit"


@dataclass(frozen=True)
class FeatureScore:
    name: str
    alone: float  # out-of-fold score of a small tree on this feature only
    without: float | None = None  # the whole table's score refitted without it; only measured for a too-good fit
    suspected_by: tuple[str, ...] = ()  # BY_ALONE and/or BY_FIT


@dataclass
class LeakageCheck:
    task: str
    rows: int = 0  # rows the measures used
    whole: float | None = None  # the whole table's score (the better model's)
    features: list[FeatureScore] = field(default_factory=list)
    not_run: str = ""  # why the measures did not run; empty when they did

    @property
    def metric(self) -> str:
        return METRIC[self.task]

    @property
    def suspects(self) -> list[FeatureScore]:
        return [feature for feature in self.features if feature.suspected_by]

    def evidence(self, feature: FeatureScore) -> str:
        """Why ``feature`` is suspected, with its scores."""
        reasons = []
        if BY_ALONE in feature.suspected_by:
            reasons.append(f"alone it predicts the target with {self.metric} {feature.alone:.3f}")
        if BY_FIT in feature.suspected_by:
            reasons.append(
                f"the whole table fits the target too well ({self.metric} {self.whole:.3f}) and falls to "
                f"{feature.without:.3f} without it"
            )
        return "; ".join(reasons)


def check_leakage(
    frame: pd.DataFrame, target: str, task: str, features: Mapping[str, str], seed: int = 0
) -> LeakageCheck:
    """Measures how well each of ``features`` (name -> numeric or categorical) alone, and all of them together,
    predict ``target``; names the suspects (see the module docstring)."""
    if not features:
        return check_leakage_sample(frame.iloc[:0], target, task, features, seed)
    labelled = np.flatnonzero(frame[target].notna().to_numpy())
    ranks = sample_ranks(len(labelled), seed)
    if ranks is not None:
        labelled = labelled[ranks]
    return check_leakage_sample(frame.iloc[labelled], target, task, features, seed)


def sample_ranks(labelled: int, seed: int = 0) -> np.ndarray | None:
    """Which of ``labelled`` rows (those with a target) ``check_leakage`` samples, as ascending ranks among them;
    None for all of them. What ``rng.choice(rows, n)`` picks is ``rows[rng.choice(len(rows), n)]``, so a caller
    streaming the data picks the same rows knowing only how many there are."""
    if labelled <= SAMPLE_ROWS:
        return None
    return np.sort(np.random.default_rng(seed).choice(labelled, SAMPLE_ROWS, replace=False))


def check_leakage_sample(
    sample: pd.DataFrame, target: str, task: str, features: Mapping[str, str], seed: int = 0
) -> LeakageCheck:
    """``check_leakage`` on the rows it samples (``sample_ranks``), given as ``sample``."""
    check = LeakageCheck(task)
    if not features:
        check.not_run = "no features to check"
        return check
    sample = sample[[*features, target]]
    sample = sample[~sample.duplicated()]
    check.rows = len(sample)
    if len(sample) < MIN_ROWS:
        check.not_run = f"{len(sample)} labelled distinct rows, fewer than {MIN_ROWS}: scores would be noise"
        return check

    x = np.column_stack([_encode(sample[name], kind) for name, kind in features.items()])
    categorical = np.array([kind == CATEGORICAL for kind in features.values()])
    if task == CLASSIFICATION:
        y = pd.factorize(sample[target].astype(str))[0]
        folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    else:
        y = sample[target].to_numpy(dtype="float64")
        folds = KFold(FOLDS, shuffle=True, random_state=seed)
    names = list(features)
    with warnings.catch_warnings():
        # A class rarer than FOLDS rows, or a linear model not fully converged, still gives a usable screening score.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        splits = list(folds.split(x, y))
        if task == CLASSIFICATION and any(len(np.unique(y[train])) < 2 for train, _ in splits):
            # A two-class target with a class of one row: a fold learns from the other class alone (the estimators
            # refuse it). Such a class cannot be split into train and test either: prepare_data stops naming it.
            counts = sample[target].astype(str).value_counts()
            check.not_run = (
                f"class(es) {counts[counts < FOLDS].index.tolist()} have fewer labelled distinct rows than the "
                f"{FOLDS} folds of the check"
            )
            return check
        alone = [
            _score(task, y, _out_of_fold(_alone_model(task, len(y), seed), x[:, [j]], y, splits)[0])
            for j in range(len(names))
        ]
        check.whole, fitted = _whole_score(x, y, categorical, task, splits, seed)
        without: dict[int, float] = {}
        if check.whole >= NEAR_PERFECT[task]:
            # A refit costs a whole cross-validation: only features whose shuffling alone costs COLLAPSE are refitted
            # (shuffled, a feature weighs at least as much as dropped, when the model can lean on the others).
            importance = _importance(fitted, x, y, splits, task, seed)
            ranked = [int(j) for j in np.argsort(-importance) if importance[j] >= COLLAPSE][:MAX_DROPPED]
            for j in ranked:
                keep = np.arange(len(names)) != j
                without[j] = (
                    _whole_score(x[:, keep], y, categorical[keep], task, splits, seed)[0] if keep.any() else 0.0
                )
    for j, name in enumerate(names):
        by = []
        if alone[j] >= ALONE[task]:
            by.append(BY_ALONE)
        if j in without and without[j] <= check.whole - COLLAPSE:
            by.append(BY_FIT)
        check.features.append(FeatureScore(name, alone[j], without.get(j), tuple(by)))
    return check


def leakage_findings(check: LeakageCheck, target: str, already: list[str]) -> list[Finding]:
    """One finding per suspect, each with the whole ``exclude_columns`` to rerun with: ``already`` and the suspects."""
    rerun = [*already, *(feature.name for feature in check.suspects)]
    return [
        Finding(
            LEAKAGE,
            feature.name,
            f"column {feature.name!r} is suspected target leakage of {target!r}: {check.evidence(feature)}. If its "
            f"value is not known when predicting, exclude it: rerun with exclude_columns={rerun}",
        )
        for feature in check.suspects
    ]


def _encode(values: pd.Series, kind: str) -> np.ndarray:
    """A column as numbers for the trees: categories coded (missing stays NaN), numbers as floats."""
    if kind != CATEGORICAL:
        return to_numbers(values).to_numpy(dtype="float64", na_value=np.nan)
    text = values.astype(str).astype(object).where(values.notna(), np.nan)
    encoder = OrdinalEncoder(
        max_categories=MAX_CATEGORIES,
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
    )
    return encoder.fit_transform(text.to_frame())[:, 0]


def _alone_model(task: str, rows: int, seed: int):
    tree = DecisionTreeClassifier if task == CLASSIFICATION else DecisionTreeRegressor
    return tree(max_leaf_nodes=ALONE_LEAVES, min_samples_leaf=max(3, rows // 200), random_state=seed)


def _whole_models(task: str, categorical: np.ndarray, seed: int) -> list:
    numeric, coded = np.flatnonzero(~categorical), np.flatnonzero(categorical)
    prepare = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1), OneHotEncoder(handle_unknown="ignore")
                ),
                coded,
            ),
        ]
    )
    if task == CLASSIFICATION:
        trees = ExtraTreesClassifier(n_estimators=TREES, random_state=seed)
        linear = LogisticRegression(max_iter=500)
    else:
        trees = ExtraTreesRegressor(n_estimators=TREES, max_features=0.5, random_state=seed)
        linear = Ridge(alpha=1.0)
    return [trees, make_pipeline(prepare, linear)]


def _whole_score(x, y, categorical, task, splits, seed) -> tuple[float, list]:
    """The better of the two whole-table models' scores, and that model fitted on each fold."""
    best, best_fitted = -np.inf, []
    for model in _whole_models(task, categorical, seed):
        predicted, fitted = _out_of_fold(model, x, y, splits)
        scored = _score(task, y, predicted)
        if scored > best:
            best, best_fitted = scored, fitted
    return float(best), best_fitted


def _out_of_fold(model, x, y, splits) -> tuple[np.ndarray, list]:
    predicted = np.empty_like(y)
    fitted = []
    for train, test in splits:
        estimator = clone(model).fit(x[train], y[train])
        predicted[test] = estimator.predict(x[test])
        fitted.append(estimator)
    return predicted, fitted


def _importance(fitted: list, x, y, splits, task: str, seed: int) -> np.ndarray:
    """Mean permutation importance of each feature over the held-out folds."""
    importances = [
        permutation_importance(
            estimator, x[test], y[test], scoring=METRIC[task], n_repeats=PERMUTATION_REPEATS, random_state=seed
        ).importances_mean
        for estimator, (_, test) in zip(fitted, splits, strict=True)
    ]
    return np.mean(importances, axis=0)


def _score(task: str, y, predicted) -> float:
    if task == CLASSIFICATION:
        return float(balanced_accuracy_score(y, predicted))
    return float(r2_score(y, predicted))
