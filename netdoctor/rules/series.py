"""Numeric helpers shared by the rules: finite filtering, windowed medians, growth detection.

Why medians: per-step series (loss, gradient norm) are noisy and heavy-tailed; one odd batch can
spike them tenfold. Medians over windows follow the trend and ignore single spikes, so a rule
built on them does not fire on noise. Growth is measured on log scale, which makes every test
scale-free: a model whose gradients are 1e-3 and one whose gradients are 1e3 are judged alike.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
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
    """A stretch of a series whose windowed median rose at every check.

    ``start`` and ``end`` are indices into the series (the middle of the block before the rise,
    the last entry of the last block); ``total`` is the rise of the block median over the level
    before the stretch and ``per_check`` its geometric mean per block of ``block`` entries.
    ``held`` says whether the level after the stretch stayed at least halfway up; None when
    nothing follows it (the series ended, or went non-finite, right after the rise).
    """

    start: int
    end: int
    block: int
    checks: int
    total: float
    per_check: float
    held: bool | None


#: Fewest checks that make a trend: two rises can be one step up and one spike.
MIN_CHECKS = 3


def growth_spans(
    values: np.ndarray, factor: float, checks: int, min_total: float
) -> Iterator[GrowthSpan]:
    """Stretches where the windowed median rose at every check, ×``factor`` on average.

    TheDeepChecker checks the gradient magnitude every few iterations and flags ×2 growth over
    five checks. Here the median must rise at every check of the stretch, by ``factor`` per check
    on average over at least ``checks`` checks' worth (a faster explosion may do it in fewer, but
    never fewer than three), and by ``min_total`` over the level before the stretch, so that
    noise cannot fake it. The spacing of the checks that shows it depends on how fast a run
    explodes, so block sizes of 1, 2, 4, ... steps are tried, finest first (it dates the start
    best), each from the start of the series.
    """
    logs = positive_log10(values)
    per, floor = math.log10(factor), math.log10(min_total)
    size = 1
    while size * (MIN_CHECKS + 1) <= logs.size:
        medians, offset = block_medians(logs, size)
        for a, b in _rising_stretches(medians, checks, floor):
            n = b - a
            # the level before: the median of up to 2 × checks blocks, so a dip does not count
            before = finite(medians[max(0, a - 2 * checks + 1) : a + 1])
            base = max(float(medians[a]), float(np.median(before)))
            rise = float(medians[b]) - base
            if rise < max(floor, max(n, checks) * per):
                continue
            after = finite(medians[b + 1 : b + 1 + n])
            yield GrowthSpan(
                start=offset + a * size + size // 2,
                end=offset + (b + 1) * size - 1,
                block=size,
                checks=n,
                total=10**rise,
                per_check=10 ** (rise / n),
                held=None if not after.size else float(np.median(after)) >= base + rise / 2,
            )
        size *= 2


def _rising_stretches(medians: np.ndarray, checks: int, floor: float) -> Iterator[tuple[int, int]]:
    """(a, b) with medians[a..b] rising at every step: each whole rising run, then its windows.

    Runs shorter than MIN_CHECKS, or that rise less than ``floor`` in all, are skipped at once
    (vectorised: a long noisy series has many short rising runs).
    """
    rising = np.diff(medians) > 0  # NaN compares False: a gap breaks a stretch
    edges = np.diff(np.concatenate(([0], rising.astype(np.int8), [0])))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    keep = (ends - starts >= MIN_CHECKS) & (medians[ends] - medians[starts] >= floor)
    for k, j in zip(starts[keep].tolist(), ends[keep].tolist(), strict=True):
        yield k, j
        for a in range(k + 1, j - checks + 1):  # a fast part inside a long, slow rise
            yield a, a + checks


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
    """Typical size (a σ) of the point-to-point noise around the local trend.

    Measured as the median distance of each point from the running median of it and its two
    neighbours, so a steady trend (up or down) counts as no noise and only the wiggle around it
    counts. For Gaussian noise that median distance is 0.3145 σ, hence the scale.
    """
    kept = finite(values)
    if kept.size < 3:
        return 0.0
    return float(np.median(np.abs(kept - median3(kept)))) / 0.3145


def jump_noise(values: np.ndarray) -> float:
    """Typical size (a σ) of the noise of a short, jumpy curve, from its second differences.

    A straight or gently bending trend has second differences near zero, so it counts as no
    noise, while a curve that jumps up and down has large ones. Needed beside ``robust_noise``
    for a handful of evaluations: there a running median of three follows two wild points and
    reads them as trend. For Gaussian noise a second difference has σ·sqrt(6), and the median
    absolute value of a Gaussian is 0.6745 σ, hence the scale.
    """
    kept = finite(values)
    if kept.size < 4:
        return 0.0
    second = np.diff(kept, 2)
    return float(np.median(np.abs(second))) / (0.6745 * math.sqrt(6.0))


def share(mask: np.ndarray, valid: np.ndarray) -> tuple[float, int]:
    """Fraction of the ``valid`` entries where ``mask`` holds, and how many were valid."""
    n = int(np.count_nonzero(valid))
    if n == 0:
        return 0.0, 0
    return float(np.count_nonzero(mask & valid)) / n, n
