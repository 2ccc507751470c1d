"""Seeded per-row keys, and the exact stratified selection built on them (the train/test split of prepare_data).

Each row gets a key from a seeded hash of its row number in the data as read (``row_keys``), so a row's key does
not depend on the other rows, on the batch it arrives in, or on which rows cleaning drops. A selection is then
"in each group (class), the ``counts[g]`` rows with the smallest keys": exact counts per group, stratified, the same
rows for the same seed and data, and a uniform random choice within each group (the keys behave as independent
uniform draws). ``proportional_counts`` decides the counts; ``smallest_thresholds`` finds, for data in memory, the
key at which each group's selection stops; ``SmallestKeys`` finds the same thresholds over record batches in
bounded memory; ``Thresholds.select`` applies them to any batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment (2^64 / golden ratio, odd)
_TOP = np.uint64(_MASK)
_BLOCK = 65_536  # rows hashed at a time (512 KB of keys)
DEFAULT_SPREAD = 8.0  # z of the band (see SmallestKeys._start_pass): a miss (second pass) has probability < 1e-13
DEFAULT_EXACT_UP_TO = 1024  # a group with at most this many candidate keys (8 KB) is collected whole


def mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on ``z`` (uint64): a bijection with full avalanche (distinct inputs give
    distinct outputs). In place: each step would otherwise allocate another array the size of the batch."""
    with np.errstate(over="ignore"):  # uint64 arithmetic is modulo 2^64 by design
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def row_keys(row_numbers: np.ndarray, seed: int) -> np.ndarray:
    """The uint64 key of each row: output ``row + 1`` of a SplitMix64 generator whose state starts at a mix of
    ``seed``.

    ``row_numbers`` are 0-based positions in the data as read (before cleaning drops rows), so a row keeps its key
    whatever the batch size or cleaning settings. For one seed, distinct rows get distinct keys (the mix is a
    bijection), so "the k smallest keys" never has ties.
    """
    rows = np.asarray(row_numbers)
    if rows.dtype.kind not in "iu":
        raise TypeError(f"row numbers must be integers, got dtype {rows.dtype}")
    if rows.dtype.kind == "i" and rows.size and rows.min() < 0:
        raise ValueError(f"row numbers must be >= 0, got {int(rows.min())}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    # The seed is mixed first: unmixed, seed s + 0x9E3779B97F4A7C15 would give seed s's keys shifted by one row.
    state = int(mix64(np.array([int(seed) & _MASK], dtype=np.uint64))[0])
    flat = rows.ravel()
    out = np.empty(flat.shape, dtype=np.uint64)
    offset = np.uint64((state + _GOLDEN) & _MASK)
    # In blocks that stay in the CPU cache: several passes over a block beat several passes over a large array.
    for start in range(0, flat.size, _BLOCK):
        z = out[start : start + _BLOCK]
        z[:] = flat[start : start + _BLOCK]  # non-negative integers: exact in uint64
        with np.errstate(over="ignore"):
            z *= np.uint64(_GOLDEN)
            z += offset
        mix64(z)
    return out.reshape(rows.shape)


def proportional_counts(
    sizes: Sequence[int] | np.ndarray,
    total: int,
    low: Sequence[int] | np.ndarray | int = 0,
    high: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """How many of ``total`` selected rows each group gets: proportional to ``sizes``, and within [low, high].

    Each group starts at the whole part of its share ``total * size / sum(sizes)`` (clamped to its bounds); then,
    round by round, each group furthest below its share gets one more row (furthest above gets one fewer when the
    bounds pushed the sum past ``total``) until the counts sum to ``total``. Without binding bounds this is the
    largest-remainder rule, so every group is within one row of its share. Ties go to the earlier group. Integer
    arithmetic throughout, so the counts are exact for any size.
    """
    sizes = [int(s) for s in np.asarray(sizes).ravel()]
    n = sum(sizes)
    lows = [int(x) for x in np.broadcast_to(np.asarray(low), (len(sizes),))]
    highs = sizes if high is None else [int(x) for x in np.broadcast_to(np.asarray(high), (len(sizes),))]
    if any(s < 0 for s in sizes) or n == 0:
        raise ValueError(f"group sizes must be >= 0 with a positive sum, got {sizes}")
    if any(lo < 0 or lo > hi or hi > s for lo, hi, s in zip(lows, highs, sizes, strict=True)):
        raise ValueError(f"bounds must satisfy 0 <= low <= high <= size per group, got {lows}, {highs}, {sizes}")
    if not sum(lows) <= total <= sum(highs):
        raise ValueError(f"{total} rows cannot be split over groups bounded by {lows} .. {highs}")
    counts = [min(max(total * s // n, lo), hi) for s, lo, hi in zip(sizes, lows, highs, strict=True)]
    short = total - sum(counts)
    while short:
        # deficit * n = (share - count) * n, exact in integers
        deficit = [total * s - n * c for s, c in zip(sizes, counts, strict=True)]
        if short > 0:
            movable = sorted((-deficit[g], g) for g in range(len(sizes)) if counts[g] < highs[g])
        else:
            movable = sorted((deficit[g], g) for g in range(len(sizes)) if counts[g] > lows[g])
        step = 1 if short > 0 else -1
        for _, g in movable[: abs(short)]:
            counts[g] += step
        short -= step * min(abs(short), len(movable))
    return np.array(counts, dtype=np.int64)


@dataclass(frozen=True)
class Thresholds:
    """Per group, the largest selected key (``key``), or no row at all where ``any_selected`` is False.

    The one rule shared by the in-memory and the streaming paths: a row is selected iff its key is at most its
    group's threshold.
    """

    key: np.ndarray  # uint64, one per group
    any_selected: np.ndarray  # bool, one per group

    def select(self, keys: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """A boolean mask of the selected rows of one batch (``groups`` None: one group)."""
        if groups is None:
            return keys <= self.key[0] if self.any_selected[0] else np.zeros(len(keys), dtype=bool)
        return (keys <= self.key[groups]) & self.any_selected[groups]


def _check_counts(sizes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != sizes.shape or (counts < 0).any() or (counts > sizes).any():
        raise ValueError(f"counts {counts.tolist()} must be between 0 and the group sizes {sizes.tolist()}")
    return counts


def _small_groups(groups: np.ndarray | None, n: int, k: int) -> np.ndarray:
    if groups is None:
        return np.zeros(n, dtype=np.uint8)
    groups = np.asarray(groups)
    if groups.dtype.kind not in "iu" or (len(groups) and (groups.min() < 0 or groups.max() >= k)):
        raise ValueError(f"groups must be integer codes 0..{k - 1}")
    return groups


def smallest_thresholds(keys: np.ndarray, groups: np.ndarray | None, counts: Sequence[int] | np.ndarray) -> Thresholds:
    """The thresholds selecting the ``counts[g]`` smallest keys of each group ``g`` (``groups``: integer codes
    0..len(counts)-1 per row, or None for one group), for data in memory: O(rows) with one partition per group."""
    keys = np.asarray(keys, dtype=np.uint64)
    k = len(counts)
    groups = _small_groups(groups, len(keys), k)
    sizes = np.bincount(groups, minlength=k)
    counts = _check_counts(sizes, counts)
    if k == 1:
        segments = iter([keys])
    elif k <= 8:  # a few classes: one pass over the codes per class is cheaper than sorting them
        segments = (keys[groups == g] for g in range(k))
    else:
        # A stable sort of small integer codes is a radix sort in numpy: linear in the rows.
        order = np.argsort(groups.astype(np.min_scalar_type(k - 1)), kind="stable")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        segments = (keys[order[bounds[g] : bounds[g + 1]]] for g in range(k))
    threshold = np.zeros(k, dtype=np.uint64)
    for g, segment in enumerate(segments):
        c = int(counts[g])
        if c:
            threshold[g] = segment.max() if c == len(segment) else np.partition(segment, c - 1)[c - 1]
    return Thresholds(threshold, counts > 0)


def select_smallest(keys: np.ndarray, groups: np.ndarray | None, counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """A boolean mask of the ``counts[g]`` rows with the smallest keys in each group ``g`` (in memory)."""
    return smallest_thresholds(keys, groups, counts).select(np.asarray(keys, dtype=np.uint64), groups)


class SmallestKeys:
    """The thresholds of ``smallest_thresholds``, found over record batches in bounded memory.

    Needs each group's size up front (a counting pass, or a known profile). Per pass, every unresolved group keeps
    only the keys inside a band of key space around where its threshold is expected (keys are uniform, so the
    ``r``-th smallest of ``m`` keys lies near ``r/m`` of the key range), plus a count of the keys below the band:
    about 2 * (spread * sqrt(min(r, m - r)) + 2 * spread^2) keys per group (32,000 keys = 260 KB for a class of 20
    million rows with 4 million selected), growing with the square root of the rows, not with the rows. If the
    threshold falls outside the band (probability < 1e-13 at the default spread), the group is narrowed to the side
    of key space that holds it, the band is widened, and ``done`` stays False: the caller feeds every batch again.
    A group with at most ``exact_up_to`` candidate keys is collected whole, so the passes end.

    Usage::

        acc = SmallestKeys(sizes, counts)
        while not acc.done:
            for keys, groups in batches():
                acc.add(keys, groups)
            acc.end_pass()
        mask = acc.thresholds.select(keys, groups)  # per batch
    """

    def __init__(
        self,
        sizes: Sequence[int] | np.ndarray,
        counts: Sequence[int] | np.ndarray,
        *,
        spread: float = DEFAULT_SPREAD,
        exact_up_to: int = DEFAULT_EXACT_UP_TO,
    ):
        self._sizes = np.asarray(sizes, dtype=np.int64)
        self._counts = _check_counts(self._sizes, counts)
        if not spread > 0:
            raise ValueError(f"spread must be positive, got {spread}")
        self._spread, self._exact_up_to = float(spread), max(int(exact_up_to), 1)
        k = len(self._sizes)
        self._key = np.zeros(k, dtype=np.uint64)
        self._open = (self._counts > 0) & (self._counts < self._sizes)  # the others need no pass
        self._key[self._counts == self._sizes] = _TOP  # every key of the group is selected
        # Per open group: the key interval [lo, hi] known to hold the threshold, the keys in it, and the threshold's
        # rank among them (1-based). Python ints: the interval may span all 2^64 keys.
        self._lo = [0] * k
        self._hi = [_MASK] * k
        self._inside = self._sizes.tolist()
        self._rank = self._counts.tolist()
        self.passes = 0
        self._start_pass()

    @property
    def done(self) -> bool:
        return not self._open.any()

    @property
    def held(self) -> int:
        """Keys held in memory by the current pass (the bounded part of the accumulator's memory)."""
        return sum(len(kept) for kept in self._kept_keys)

    @property
    def thresholds(self) -> Thresholds:
        if not self.done:
            raise RuntimeError("thresholds are not known yet: feed every batch again and call end_pass()")
        return Thresholds(self._key.copy(), self._counts > 0)

    def _start_pass(self) -> None:
        k = len(self._sizes)
        self._from = np.zeros(k, dtype=np.uint64)  # count keys in [from, band_lo), collect [band_lo, band_hi]
        self._band_lo = np.ones(k, dtype=np.uint64)  # closed groups: an empty band (lo > hi)
        self._band_hi = np.zeros(k, dtype=np.uint64)
        self._below = np.zeros(k, dtype=np.int64)
        self._seen = np.zeros(k, dtype=np.int64)
        self._kept_keys: list[np.ndarray] = []
        self._kept_groups: list[np.ndarray] = []
        for g in np.flatnonzero(self._open):
            lo, hi, m, r = self._lo[g], self._hi[g], self._inside[g], self._rank[g]
            if m <= self._exact_up_to:
                band_lo, band_hi = lo, hi
            else:
                # Keys below a point x of the interval are Binomial(m, x'); a band of ranks r -+ t with
                # t = z * sqrt(min(r, m - r + 1)) + 2 z^2 misses the threshold with probability
                # <= 2 exp(-z^2 / 2) by Bernstein's inequality (2.5e-14 at z = 8).
                t = self._spread * math.sqrt(min(r, m - r + 1)) + 2 * self._spread**2
                width = hi - lo + 1
                band_hi = min(lo + int(min((r + t) / m, 1.0) * width), hi)
                band_lo = min(lo + int(max((r - t) / m, 0.0) * width), band_hi)
            self._from[g], self._band_lo[g], self._band_hi[g] = lo, band_lo, band_hi

    def add(self, keys: np.ndarray, groups: np.ndarray | None = None) -> None:
        """Counts or keeps the keys of one batch (``groups`` None: one group)."""
        keys = np.asarray(keys, dtype=np.uint64)
        groups = _small_groups(groups, len(keys), len(self._sizes))
        band_lo, band_hi = self._band_lo[groups], self._band_hi[groups]
        below = (keys >= self._from[groups]) & (keys < band_lo)
        self._below += np.bincount(groups[below], minlength=len(self._sizes))
        self._seen += np.bincount(groups, minlength=len(self._sizes))
        inside = (keys >= band_lo) & (keys <= band_hi)
        if inside.any():
            self._kept_keys.append(keys[inside])
            self._kept_groups.append(groups[inside].astype(np.int64))

    def end_pass(self) -> None:
        """Resolves every group whose threshold fell in its band; narrows the others for another pass."""
        if not np.array_equal(self._seen, self._sizes):
            raise ValueError(
                f"the batches of this pass hold {self._seen.tolist()} rows per group, not the sizes "
                f"{self._sizes.tolist()} given: every pass must feed every row once"
            )
        self.passes += 1
        keys = np.concatenate(self._kept_keys) if self._kept_keys else np.empty(0, dtype=np.uint64)
        groups = np.concatenate(self._kept_groups) if self._kept_groups else np.empty(0, dtype=np.int64)
        order = np.lexsort((keys, groups))
        keys, groups = keys[order], groups[order]
        starts = np.searchsorted(groups, np.arange(len(self._sizes) + 1))
        for g in np.flatnonzero(self._open):
            band = keys[starts[g] : starts[g + 1]]
            below, rank = int(self._below[g]), self._rank[g]
            if below < rank <= below + len(band):
                self._key[g] = band[rank - below - 1]
                self._open[g] = False
            elif rank <= below:  # the threshold is below the band
                self._hi[g], self._inside[g] = int(self._band_lo[g]) - 1, below
            else:  # above the band
                self._lo[g] = int(self._band_hi[g]) + 1
                self._inside[g] -= below + len(band)
                self._rank[g] = rank - below - len(band)
        if self._open.any():
            self._spread *= 2  # a miss means the band was too narrow for these data: widen it for the next pass
        self._start_pass()
