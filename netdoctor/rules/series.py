"""Numeric helpers shared by the rules: finite filtering, windowed medians, growth detection.

Why medians: per-step series (loss, gradient norm) are noisy and heavy-tailed; one odd batch can
spike them tenfold. Medians over windows follow the trend and ignore single spikes, so a rule
built on them does not fire on noise. Growth is measured on log scale, which makes every test
scale-free: a model whose gradients are 1e-3 and one whose gradients are 1e3 are judged alike.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


def finite(values: np.ndarray) -> np.ndarray:
    """The finite entries of ``values`` as float64, in order."""
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def positive_log10(values: np.ndarray) -> np.ndarray:
    """log10 of each entry; NaN where the entry is not finite or not positive."""
    arr = np.asarray(values, dtype=np.float64)
    out = np.full(arr.shape, math.nan)
    ok = np.isfinite(arr) & (arr > 0)
    out[ok] = np.log10(arr[ok])
    return out


def nanmedian(values: np.ndarray) -> float:
    """Median of the finite entries; NaN (and no warning) when there are none."""
    kept = finite(values)
    return float(np.median(kept)) if kept.size else math.nan


def median3(values: np.ndarray) -> np.ndarray:
    """Centred running median of width 3 (NaN-aware): removes one-step spikes, keeps trends."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 3:
        return arr.copy()
    padded = np.concatenate(([arr[0]], arr, [arr[-1]]))
    stacked = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected
        return np.nanmedian(stacked, axis=0)


def block_medians(values: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Medians of consecutive blocks of ``size`` entries, aligned to the end of the series.

    Blocks end at the last entry so that the most recent data always forms a full block (a run
    still in progress is judged on what it did last). A block with fewer than half of its
    entries finite is NaN. Returns the medians and the index where the first block starts.
    """
    arr = np.asarray(values, dtype=np.float64)
    count = arr.size // size
    if count == 0:
        return np.zeros(0), arr.size
    offset = arr.size - count * size
    blocks = arr[offset:].reshape(count, size)
    enough = np.isfinite(blocks).sum(axis=1) >= max(1, size // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(blocks, axis=1)
    medians[~enough] = math.nan
    return medians, offset


@dataclass(frozen=True, slots=True)
class GrowthSpan:
    """A stretch of a series that grew geometrically: ``checks`` block-to-block rises in a row.

    ``start`` and ``end`` are indices into the series (first entry of the first block, last entry
    of the last block); ``total`` is the growth of the block median over the stretch and
    ``per_check`` its geometric mean per block of ``block`` entries.
    """

    start: int
    end: int
    block: int
    checks: int
    total: float
    per_check: float


#: Fewest checks that make a trend: two rises can be one step up and one spike.
MIN_CHECKS = 3


def geometric_growth(
    values: np.ndarray, factor: float, checks: int, min_total: float
) -> GrowthSpan | None:
    """Earliest stretch where the windowed median rose at every check, ×``factor`` on average.

    TheDeepChecker checks the gradient magnitude every few iterations and flags ×2 growth over
    five checks. Here the median must rise at every check of the stretch, by ``factor`` per check
    on average over at least ``checks`` checks' worth (a faster explosion may do it in fewer, but
    never fewer than three), and by ``min_total`` overall, which noise cannot fake. The spacing
    of the checks that shows it depends on how fast a run explodes, so block sizes of 1, 2, 4, ...
    steps are all tried.
    """
    logs = positive_log10(values)
    per, floor = math.log10(factor), math.log10(min_total)
    best: GrowthSpan | None = None
    size = 1
    while size * (MIN_CHECKS + 1) <= logs.size:
        medians, offset = block_medians(logs, size)
        found = _rising_stretch(medians, per, floor, checks)
        if found is not None:
            k, j = found
            total = float(medians[j] - medians[k])
            span = GrowthSpan(
                start=offset + k * size,
                end=offset + (j + 1) * size - 1,
                block=size,
                checks=j - k,
                total=10**total,
                per_check=10 ** (total / (j - k)),
            )
            if best is None or span.start < best.start:
                best = span
        size *= 2
    return best


def _rising_stretch(
    medians: np.ndarray, per: float, floor: float, checks: int
) -> tuple[int, int] | None:
    """First (k, j): medians[k..j] rise at every check and by enough in total (log10 units)."""
    rising = np.diff(medians) > 0  # NaN compares False: a gap breaks a stretch
    k = 0
    while k < rising.size:
        if not rising[k]:
            k += 1
            continue
        j = k
        while j < rising.size and rising[j]:
            j += 1
        # the whole rising run, else its first window of `checks` checks that grew fast enough
        windows = [(k, j)] + [(a, a + checks) for a in range(k, j - checks + 1)]
        for a, b in windows:
            n = b - a
            if n >= MIN_CHECKS and medians[b] - medians[a] >= max(floor, max(n, checks) * per):
                return a, b
        k = j
    return None


def falls_less_than(values: np.ndarray, fraction: float, edge: int = 3) -> bool | None:
    """Whether a series ended less than ``fraction`` below where it began (None: unknown).

    Compares the median of the first ``edge`` finite entries with that of the last ``edge``; the
    drop is relative to the size of the first, so it works for any loss scale (and sign).
    """
    kept = finite(values)
    if kept.size < 2:
        return None
    edge = max(1, min(edge, kept.size // 2))
    first, last = float(np.median(kept[:edge])), float(np.median(kept[-edge:]))
    return last > first - fraction * abs(first)


def robust_noise(values: np.ndarray) -> float:
    """Typical size of the point-to-point noise around the local trend (MAD scaled to a σ).

    Measured as the median distance of each point from the running median of its neighbours, so a
    steady trend (up or down) counts as no noise and only the wiggle around it counts.
    """
    kept = finite(values)
    if kept.size < 3:
        return 0.0
    return 1.4826 * float(np.median(np.abs(kept - median3(kept))))


def share(mask: np.ndarray, valid: np.ndarray) -> tuple[float, int]:
    """Fraction of the ``valid`` entries where ``mask`` holds, and how many were valid."""
    n = int(np.count_nonzero(valid))
    if n == 0:
        return 0.0, 0
    return float(np.count_nonzero(mask & valid)) / n, n
