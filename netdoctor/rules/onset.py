"""Where a run first went non-finite, and what the gradient norm did just before.

Shared by ``nan_loss`` and ``exploding_gradients`` so that both rules agree on the step and on
whether an explosion preceded it: the first reports the NaN, the second claims it as its
consequence, and the engine orders them cause first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netdoctor.rules.facts import index_of, step_of, valid_loss
from netdoctor.rules.series import falls_less_than, finite
from netdoctor.runlog.run_data import Event, RunData
from netdoctor.runlog.schema import StepFlag

#: Default for gradient-only non-finite steps in a row that count as a real NaN. A GradScaler
#: calibrating its loss scale (fp16) makes a few isolated inf-gradient steps on purpose.
PERSIST_STEPS = 10.0


@dataclass(frozen=True, slots=True)
class NonFiniteOnset:
    """The first step where a real non-finite value appeared."""

    index: int  # row of the step table
    step: int
    source: str  # "input" | "activation" | "loss" | "gradient"
    streak: int  # consecutive non-finite steps from the onset
    total: int  # steps with a non-finite flag from the onset to the end
    event: Event | None  # the capture side's 'nonfinite' event for this step, if any


def nonfinite_onset(run: RunData, persist_steps: float = PERSIST_STEPS) -> NonFiniteOnset | None:
    """First step of the first non-finite stretch that is not a GradScaler calibrating.

    A stretch of consecutive non-finite steps counts when the loss or an activation went
    non-finite in it, or when gradients alone stayed non-finite for ``persist_steps`` steps.
    Without flags, a 'nonfinite' event about the input, an activation or the loss counts too.
    """
    flags = run.flags
    loss = valid_loss(run)
    loss_bad = ((flags & StepFlag.LOSS_NONFINITE) != 0) | (run.has_loss & ~np.isfinite(loss))
    act_bad = (flags & StepFlag.ACT_NONFINITE) != 0
    hard = loss_bad | act_bad
    bad = hard | ((flags & StepFlag.GRAD_NONFINITE) != 0)
    events = run.events_of("nonfinite")
    i, n = 0, bad.size
    while i < n:
        if not bad[i]:
            i += 1
            continue
        j = i
        while j < n and bad[j]:
            j += 1
        if hard[i:j].any() or j - i >= persist_steps:
            steps = set(run.step_numbers[i:j].tolist())
            event = next((e for e in events if e.step in steps), None)
            source = _source(event, bool(act_bad[i]), bool(loss_bad[i]))
            return NonFiniteOnset(i, step_of(run, i), source, j - i, int(bad[i:].sum()), event)
        i = j
    for event in events:  # logs without flags: trust what the capture side saw
        source = str(event.data.get("source", ""))
        row = None if event.step is None else index_of(run, event.step)
        if source in ("input", "activation", "loss") and row is not None:
            return NonFiniteOnset(row, event.step or 0, source, 1, 1, event)
    return None


_SOURCES = ("input", "activation", "loss", "gradient")


def _source(event: Event | None, activation: bool, loss: bool) -> str:
    if event is not None and event.data.get("source") in _SOURCES:
        return str(event.data["source"])
    if activation:
        return "activation"
    return "loss" if loss else "gradient"


@dataclass(frozen=True, slots=True)
class TrendBefore:
    """What the total gradient norm did in the window of steps before a given step."""

    growth: float  # peak of the last finite norms / median of the window's first half
    baseline: float
    peak: float
    first_step: int  # first step of the window
    rise_step: int  # first step from which the norm stayed at least twice the baseline
    loss_not_falling: bool  # loss did not drop over the window (True when unknown)


def trend_before(run: RunData, index: int, window: int) -> TrendBefore | None:
    """Gradient-norm growth over the ``window`` steps up to row ``index`` (None: too few norms)."""
    lo = max(0, index - window)
    norms = run.grad_norm[lo : index + 1]
    ok = np.isfinite(norms) & (norms > 0)
    values = norms[ok]
    if values.size < 2:
        return None
    baseline = float(np.median(values[: max(1, values.size // 2)]))
    peak = float(np.max(values[-3:]))
    below = np.nonzero(ok & (norms < 2 * baseline))[0]  # the climb starts after the last one
    rise = min(index, lo + int(below[-1]) + 1) if below.size else lo
    loss = finite(valid_loss(run)[lo : index + 1])
    not_falling = falls_less_than(loss, 0.1)
    return TrendBefore(
        growth=peak / baseline if baseline > 0 else math.inf,
        baseline=baseline,
        peak=peak,
        first_step=step_of(run, lo),
        rise_step=step_of(run, rise),
        loss_not_falling=True if not_falling is None else not_falling,
    )
