"""Series squeezed into a few terminal cells: time bins, sparklines and heat levels.

Samples are irregular in time (dense at the start of a run, sparse later), so columns are bins of
equal *step* width, never one column per sample: a column is a stretch of training. A bin keeps
its largest value (a spike in a gradient norm is the news) and an empty bin repeats the one
before it, up to the last sample: a replayed run ends where the cursor is.
"""

from __future__ import annotations

import math

import numpy as np

BARS = "▁▂▃▄▅▆▇█"


def _columns(
    steps: np.ndarray, x_range: tuple[float, float] | None, width: int
) -> np.ndarray:
    lo, hi = x_range if x_range is not None else (float(steps[0]), float(steps[-1]))
    span = max(hi - lo, 1e-9)
    return np.clip(((steps - lo) / span * width).astype(np.int64), 0, width - 1)


def _fill_empty(out: np.ndarray, col: np.ndarray) -> None:
    """Bins no sample fell in repeat the bin before them, up to the last sample's bin."""
    has = np.bincount(col, minlength=out.shape[0]) > 0
    for j in range(1, int(col[-1]) + 1):
        if not has[j]:
            out[j] = out[j - 1]


def time_bins(
    steps: np.ndarray, values: np.ndarray, x_range: tuple[float, float] | None, width: int
) -> np.ndarray:
    """(width, ...) the largest value per step bin; NaN before the first and after the last sample.

    ``values`` is (m,) or (m, k) aligned with ``steps``. NaN values are ignored within a bin; a
    bin whose samples are all NaN stays NaN (a blow-up must not look like the value before it).
    """
    out = np.full((width, *values.shape[1:]), np.nan)
    if width <= 0 or not steps.size:
        return out
    col = _columns(steps, x_range, width)
    best = np.full(out.shape, -np.inf)
    np.fmax.at(best, col, np.where(np.isnan(values), -np.inf, values))
    filled = best > -np.inf
    out[filled] = best[filled]
    _fill_empty(out, col)
    return out


def time_any(
    steps: np.ndarray, flags: np.ndarray, x_range: tuple[float, float] | None, width: int
) -> np.ndarray:
    """(width, ...) whether any flagged sample falls in each step bin (empty bins repeat)."""
    out = np.zeros((width, *flags.shape[1:]), dtype=bool)
    if width <= 0 or not steps.size:
        return out
    col = _columns(steps, x_range, width)
    np.logical_or.at(out, col, flags)
    _fill_empty(out, col)
    return out


def levels(values: np.ndarray, low: float, high: float, n: int = len(BARS)) -> np.ndarray:
    """Each value's level 0..n-1 between ``low`` and ``high``; -1 for NaN."""
    span = high - low if high > low else 1.0
    scaled = np.floor((values - low) / span * n)
    scaled = np.clip(scaled, 0, n - 1)
    return np.where(np.isnan(values), -1, scaled).astype(np.int64)


def log10_or_nan(values: np.ndarray) -> np.ndarray:
    """log10 of the positive finite values; NaN for the rest (zero, negative, NaN, Inf)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.where(values > 0, values, np.nan))
    out[~np.isfinite(out)] = np.nan
    return out


def sparkline(
    steps: np.ndarray,
    values: np.ndarray,
    x_range: tuple[float, float] | None,
    width: int,
    log: bool = True,
) -> str:
    """The history as ``width`` bar characters, scaled to its own range (blank: no sample)."""
    shown = log10_or_nan(values) if log else np.where(np.isfinite(values), values, np.nan)
    binned = time_bins(steps, shown, x_range, width)
    finite = binned[~np.isnan(binned)]
    if not finite.size:
        return " " * width
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12:
        return "".join(" " if math.isnan(v) else BARS[len(BARS) // 2] for v in binned)
    marks = levels(binned, low, high)
    return "".join(" " if m < 0 else BARS[m] for m in marks)
