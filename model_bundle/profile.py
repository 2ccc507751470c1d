"""The reference profile (``reference_profile.json``): the training rows' distribution, built by prepare_data and
read by drift detection and the model server's feature signals. One module owns its format, both ways.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

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
    types = {f["name"]: f["type"] for f in infer_feature_types(frame)}
    sample = np.random.default_rng(seed)
    columns = {}
    for name in frame.columns:
        values = frame[name]
        present = values.dropna()
        entry = {
            "type": types[str(name)],
            "count": len(present),
            "null_fraction": 1 - len(present) / len(values) if len(values) else 0.0,
        }
        if types[str(name)] == NUMERIC and len(present):
            numbers = present.to_numpy(dtype="float64")
            sampled = numbers
            if len(numbers) > PROFILE_SAMPLE_ROWS:
                sampled = numbers[sample.choice(len(numbers), PROFILE_SAMPLE_ROWS, replace=False)]
            sampled = np.sort(sampled)
            edges = np.unique(_sorted_quantiles(sampled, np.linspace(0, 1, PROFILE_BINS + 1)))
            # Counts per bin as np.histogram counts them (the last bin includes its right edge), on sorted values.
            positions = np.searchsorted(sampled, edges, side="left")
            positions[-1] = len(sampled)
            counts = np.diff(positions) if len(edges) > 1 else np.array([len(sampled)])
            entry |= {
                "mean": float(numbers.mean()),
                "std": float(numbers.std()),
                "quantiles": dict(zip(QUANTILES, _sorted_quantiles(sampled, list(QUANTILES.values())), strict=True)),
                "bin_edges": edges.tolist(),
                "bin_fractions": (counts / len(sampled)).tolist(),
                "sampled": len(sampled),
            }
        elif len(present):
            shares = as_text(present, kind_of(present)).value_counts(normalize=True)
            entry["category_fractions"] = shares.iloc[:PROFILE_CATEGORIES].to_dict()
            entry["other_fraction"] = float(shares.iloc[PROFILE_CATEGORIES:].sum())
        columns[str(name)] = entry
    rows = frame.sample(n=min(len(frame), REFERENCE_SAMPLE_ROWS), random_state=seed) if len(frame) else frame
    sample = json.loads(rows.to_json(orient="split", index=False, date_format="iso"))
    return {"rows": len(frame), "target": target, "columns": columns, "sample": sample}


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
