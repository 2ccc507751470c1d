"""The reference profile (``reference_profile.json``): the training rows' distribution, built by prepare_data and
read by drift detection and the model server's feature signals. One module owns its format, both ways.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from model_bundle.features import NUMERIC, infer_feature_types
from model_bundle.schema import as_text, kind_of

PROFILE_FILE = "reference_profile.json"
PROFILE_BINS = 10  # quantile bins of a numeric feature in the reference profile
PROFILE_CATEGORIES = 50  # most frequent categories listed in the reference profile; the rest share "other"
PROFILE_SAMPLE_ROWS = 200_000  # values of a numeric column its quantiles and histogram are computed from
# Training rows kept verbatim in the profile: what drift tests compare new data with (summaries cannot be tested).
REFERENCE_SAMPLE_ROWS = 5_000
QUANTILES = {"min": 0.0, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}


def build_profile(frame: pd.DataFrame, target: str, seed: int = 0) -> dict:
    """The distribution of each column of the training rows: the reference later data is compared with.

    Every column: count of values and missing fraction. Numeric columns: mean, standard deviation, quantiles and
    a histogram over ``PROFILE_BINS`` quantile bins (bin edges and the fraction of values in each), the last two
    from a random sample of at most ``PROFILE_SAMPLE_ROWS`` values (seeded: the same data gives the same profile),
    which pins quantiles far below any drift worth seeing at a fraction of the cost of sorting millions.
    Categorical columns: the share of each category (the ``PROFILE_CATEGORIES`` most frequent; the rest as
    ``other``). ``sample``: at most ``REFERENCE_SAMPLE_ROWS`` rows drawn at random (seeded), as ``columns`` and
    ``data`` (JSON values, missing as null): the reference of detect_drift's statistical tests.
    """
    present = {name: int(frame[name].notna().sum()) for name in frame.columns}

    def batches():
        yield Batch(len(frame), frame)  # one batch: the frame is in memory already

    return profile_batches(frame.iloc[:0], len(frame), present, batches, target, seed)


class Batch(NamedTuple):
    """One batch of ``profile_batches``: ``rows`` rows; ``frame``, its columns that neither ``texts`` nor ``numbers``
    holds (None: no such column); ``texts``, name -> (values present, distinct values, their counts) of the columns
    the caller counted itself (text in Arrow, say); ``numbers``, name -> the present values of a numeric column as
    float64 (missing values dropped); ``take(positions)``, the batch's rows at ``positions`` with every column (a
    frame, or what ``profile_batches``' ``join`` makes one of), or None to take them from the frame."""

    rows: int
    frame: pd.DataFrame | None
    texts: Mapping = {}
    numbers: Mapping = {}
    take: Callable | None = None


@dataclass
class _Numbers:
    """A numeric column's running count, mean and sum of squared deviations, and its sampled values."""

    wanted: np.ndarray | None  # positions among the present values to sample (sorted), None: all of them
    count: int = 0
    mean: float = 0.0
    squares: float = 0.0
    sampled: list = field(default_factory=list)

    def add(self, numbers: np.ndarray) -> None:
        if not len(numbers):
            return
        mean = numbers.mean()
        deviations = numbers - mean
        squares = float(np.sum(np.multiply(deviations, deviations, out=deviations)))  # as numpy's std sums them
        if not self.count:
            self.mean, self.squares = float(mean), squares
        else:  # Chan et al.'s pairwise merge: stable for any batch sizes
            total = self.count + len(numbers)
            delta = float(mean) - self.mean
            self.mean += delta * len(numbers) / total
            self.squares += squares + delta * delta * self.count * len(numbers) / total
        if self.wanted is None:
            self.sampled.append(numbers)
        else:
            lo, hi = np.searchsorted(self.wanted, [self.count, self.count + len(numbers)])
            self.sampled.append(numbers[self.wanted[lo:hi] - self.count])
        self.count += len(numbers)


def profile_batches(
    empty: pd.DataFrame,
    rows: int,
    present: dict,
    batches,
    target: str,
    seed: int,
    counter: type | None = None,
    join: Callable[[list], pd.DataFrame] | None = None,
) -> dict | None:
    """The profile of ``rows`` rows with ``empty``'s columns and dtypes, ``present[name]`` values in each column;
    None when the batches hold other counts than ``present``. ``batches()`` gives them in order, as ``Batch``es.
    ``counter``: what counts a categorical column's categories (``add(uniques, counts)``, ``shares(total)``,
    ``exact``); None counts every one.
    ``join``: one frame of the rows the batches' ``take`` gave, in order (None: ``pd.concat``, for frames).
    Here nothing but pandas and numpy: the model server's image holds this module without pyarrow."""
    counter = counter or _Categories
    types = {f["name"]: f["type"] for f in infer_feature_types(empty)}
    # The same draws as over the whole column: one generator, used in column order by the columns sampled.
    sample = np.random.default_rng(seed)
    numbers, categories = {}, {}
    for name in empty.columns:
        if types[str(name)] != NUMERIC:
            categories[name] = counter()
        elif present[name] > PROFILE_SAMPLE_ROWS:
            numbers[name] = _Numbers(np.sort(sample.choice(present[name], PROFILE_SAMPLE_ROWS, replace=False)))
        else:
            numbers[name] = _Numbers(None)
    taken = min(rows, REFERENCE_SAMPLE_ROWS)
    drawn = _sample_positions(rows, taken, seed)
    wanted = np.sort(drawn)
    counted = dict.fromkeys(empty.columns, 0)
    picked, start = [], 0
    for batch in batches():
        for name in empty.columns:
            if name in batch.texts:  # counted by the caller, in order of first appearance
                count, uniques, counts = batch.texts[name]
                counted[name] += count
                categories[name].add(uniques, counts)
                continue
            if name in batch.numbers:  # present values given by the caller
                values = batch.numbers[name]
                counted[name] += len(values)
                numbers[name].add(values)
                continue
            values = batch.frame[name].dropna()
            counted[name] += len(values)
            if name in numbers:
                numbers[name].add(values.to_numpy(dtype="float64"))
            elif len(values):
                kind = kind_of(values)
                dtype = values.dtype
                if (isinstance(dtype, np.dtype) and dtype.kind in "bM") or isinstance(dtype, pd.DatetimeTZDtype):
                    # numpy booleans and times counted, then made text: a distinct value has one text, formatted
                    # alike for the batch's values and their distinct ones (the same set); formatting every row
                    # is the cost.
                    found = values.value_counts(sort=False)
                    uniques = as_text(found.index.to_series(), kind).to_numpy()
                else:
                    found = as_text(values, kind).value_counts(sort=False)
                    uniques = found.index.to_numpy()
                categories[name].add(uniques, found.to_numpy())
        lo, hi = np.searchsorted(wanted, [start, start + batch.rows])
        if hi > lo:
            at = wanted[lo:hi] - start
            picked.append(batch.frame.iloc[at] if batch.take is None else batch.take(at))
        start += batch.rows
    if counted != present:
        return None
    columns = {}
    for name in empty.columns:
        count = counted[name]
        entry = {"type": types[str(name)], "count": count, "null_fraction": 1 - count / rows if rows else 0.0}
        if name in numbers and count:
            column = numbers[name]
            sampled = np.sort(np.concatenate(column.sampled))
            edges = np.unique(_sorted_quantiles(sampled, np.linspace(0, 1, PROFILE_BINS + 1)))
            # Counts per bin as np.histogram counts them (the last bin includes its right edge), on sorted values.
            positions = np.searchsorted(sampled, edges, side="left")
            positions[-1] = len(sampled)
            bins = np.diff(positions) if len(edges) > 1 else np.array([len(sampled)])
            entry |= {
                "mean": column.mean,
                "std": math.sqrt(column.squares / column.count),
                "quantiles": dict(zip(QUANTILES, _sorted_quantiles(sampled, list(QUANTILES.values())), strict=True)),
                "bin_edges": edges.tolist(),
                "bin_fractions": (bins / len(sampled)).tolist(),
                "sampled": len(sampled),
            }
        elif count:
            # value_counts(normalize=True) over the whole column: counts in order of first appearance, then the
            # same sort, so ties fall the same way.
            found = categories[name]
            shares = found.shares(count)
            entry["category_fractions"] = shares.iloc[:PROFILE_CATEGORIES].to_dict()
            if found.exact:
                entry["other_fraction"] = float(shares.iloc[PROFILE_CATEGORIES:].sum())
            else:  # the summary's counts are lower bounds: the rest is what the listed shares leave
                entry["other_fraction"] = max(0.0, 1.0 - float(shares.iloc[:PROFILE_CATEGORIES].sum()))
        columns[str(name)] = entry
    kept = (join or pd.concat)(picked) if picked else empty
    # The drawn order, as DataFrame.sample gives the rows.
    rows_frame = kept.iloc[np.searchsorted(wanted, drawn)] if taken else kept.iloc[:0]
    # With a plain index, which is then dropped: "split" without the index converts the rows to Python objects first.
    sample = json.loads(rows_frame.reset_index(drop=True).to_json(orient="split", date_format="iso"))
    del sample["index"]
    return {"rows": rows, "target": target, "columns": columns, "sample": sample}


class _Categories:
    """A categorical column's occurrences per category in order of first appearance, every one counted: what
    ``build_profile`` (a frame already in memory) counts with."""

    exact = True

    def __init__(self):
        self._counts: dict = {}

    def add(self, uniques: np.ndarray, counts: np.ndarray) -> None:
        for value, count in zip(uniques.tolist(), counts.tolist(), strict=True):  # per distinct value of a batch
            self._counts[value] = self._counts.get(value, 0) + count

    def shares(self, total: int) -> pd.Series:
        """Each category's share of ``total`` values, most frequent first (ties: the first seen)."""
        shares = pd.Series(list(self._counts.values()), index=list(self._counts.keys()), dtype="int64")
        return shares.sort_values(ascending=False) / total


def _sample_positions(rows: int, taken: int, seed: int) -> np.ndarray:
    """The positions ``DataFrame.sample(n=taken, random_state=seed)`` draws from ``rows`` rows: the first ``taken``
    of ``np.random.RandomState(seed).permutation(rows)``, shuffled here in 32-bit integers when they fit (the same
    draws: the shuffle does not depend on the item size), half the memory of the 64-bit permutation."""
    if not taken:
        return np.empty(0, dtype=np.int64)
    order = np.arange(rows, dtype=np.int32 if rows < 2**31 else np.int64)
    np.random.RandomState(seed).shuffle(order)
    return order[:taken].astype(np.int64)


def _sorted_quantiles(ordered: np.ndarray, probabilities) -> list[float]:
    """``np.quantile(values, probabilities)`` (linear interpolation) of values already sorted, without sorting."""
    position = np.asarray(probabilities) * (len(ordered) - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(ordered) - 1)
    return (ordered[below] + (ordered[above] - ordered[below]) * (position - below)).tolist()


def reference_sample(profile: Mapping) -> pd.DataFrame | None:
    """The training rows kept in the profile, as a frame; None for a profile without them (an older model)."""
    sample = profile.get("sample")
    if not sample or not sample.get("data"):
        return None
    return pd.DataFrame(sample["data"], columns=sample["columns"])


def numeric_bins(profile: Mapping, name: str) -> tuple[np.ndarray, list[float]] | None:
    """A numeric column's quantile bin edges and the fraction of training values in each, or None."""
    entry = profile.get("columns", {}).get(name, {})
    if "bin_edges" not in entry or len(entry["bin_edges"]) < 2:
        return None
    return np.asarray(entry["bin_edges"], dtype="float64"), list(entry["bin_fractions"])


def category_shares(profile: Mapping, name: str) -> tuple[dict[str, float], float] | None:
    """A categorical column's listed categories with their training shares, and the share of all others, or None."""
    entry = profile.get("columns", {}).get(name, {})
    if "category_fractions" not in entry:
        return None
    return dict(entry["category_fractions"]), float(entry.get("other_fraction", 0.0))
