"""``symmetric_weights``: the units of a layer are copies of each other, and stay so.

The capture side measures each weight matrix's unit spread on sampled steps: the RMS deviation
of its rows (output units, conv channels) from their mean row, over the RMS of the weight. A
random initialisation gives about 1; zero or constant initialisation gives exactly 0, and since
identical units compute the same output and receive the same gradient, plain gradient descent
keeps them identical forever: the layer acts as one unit, however wide it is. Dropout's random
masks break the tie slowly, so the spread must stay below ``still_identical`` to the end.

This is a root cause: a network initialised to zero throughout passes no gradient back to its
hidden layers at all (each layer's gradient goes through the next layer's zero weights), so
``vanishing_gradients``, ``frozen_parameters``, ``loss_not_decreasing`` and ``underfitting``
fire on it too; the engine lists them after this rule, as its consequences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import RELU_TYPES, fmt, sites_of_type
from netdoctor.rules.fixes import fix
from netdoctor.rules.series import finite
from netdoctor.runlog.run_data import ParamInfo, RunData
from netdoctor.runlog.schema import ParamStat

RULE_ID = "symmetric_weights"


@dataclass(frozen=True, slots=True)
class SymmetricWeight:
    """A weight matrix whose units started identical and are still (nearly) so."""

    param: ParamInfo
    first: float  # unit spread at the first sample
    last: float  # median over the last samples
    zero: bool  # the weight was all zeros at the first sample
    units: int


def symmetric_weights(run: RunData, th: Mapping[str, float]) -> list[SymmetricWeight]:
    """Trainable matrices that stayed symmetric, in forward order (the first is where it starts).

    Needs ``min_samples`` sampled steps with a measured spread (logs of schema 1 have none).
    """
    spread = run.param_stat(ParamStat.UNIT_SPREAD).astype(np.float64)
    weight = run.param_stat(ParamStat.WEIGHT_NORM).astype(np.float64)
    found: list[SymmetricWeight] = []
    for p in run.params:
        if not p.trainable or len(p.shape) < 2 or p.shape[0] < 2:
            continue
        values = spread[:, p.idx]
        rows = np.nonzero(np.isfinite(values))[0]
        if rows.size < th["min_samples"]:
            continue
        first = float(values[rows[0]])
        last = float(np.median(values[rows[-3:]]))
        if first >= th["identical"] or last >= th["still_identical"]:
            continue
        norm = float(weight[rows[0], p.idx])
        found.append(SymmetricWeight(p, first, last, norm == 0.0, int(p.shape[0])))
    order = run.module_order()
    return sorted(found, key=lambda s: (order.get(s.param.module, 1 << 30), s.param.idx))


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    found = symmetric_weights(run, th)
    if not found:
        return []
    lead = found[0]
    p = lead.param
    step = int(run.sample_steps[0]) if run.sample_steps.size else 0
    last_step = int(run.sample_steps[-1]) if run.sample_steps.size else 0
    how = "all zeros" if lead.zero else "one constant (every unit alike)"
    grads = finite(run.param_stat(ParamStat.GRAD_NORM)[:, p.idx])
    no_grad = bool(grads.size) and float(np.max(grads)) == 0.0
    consequence = (
        "; it gets no gradient at all, and neither does anything before it" if no_grad else ""
    )
    others = [s.param.name for s in found[1:]]
    also = f" ({len(others)} more: {', '.join(others[:4])})" if others else ""
    message = (
        f"the {lead.units} units of {p.name} started identical (unit spread {fmt(lead.first)} "
        f"at step {step}, about 1 for a random init) and are still copies of each other at "
        f"step {last_step} (spread {fmt(lead.last)}){also}: it was initialised to {how}, so "
        f"every unit gets the same gradient and they all learn the same thing{consequence}; "
        "initialise the weights randomly"
    )
    evidence: dict[str, Any] = {
        "param": p.name,
        "units": lead.units,
        "first_spread": lead.first,
        "last_spread": lead.last,
        "zero_init": lead.zero,
        "zero_gradient": no_grad,
        "symmetric_params": [s.param.name for s in found][:20],
        "first_step": step,
        "last_step": last_step,
    }
    fixes = _fixes(run, p.module)
    return [Diagnosis(RULE_ID, Severity.WARNING, step, p.module, message, evidence, fixes)]


def _fixes(run: RunData, module: str) -> tuple[Fix, ...]:
    relu = bool(sites_of_type(run, RELU_TYPES, "relu"))
    init = (
        "nn.init.kaiming_normal_(m.weight, nonlinearity='relu')"
        if relu
        else ("nn.init.xavier_uniform_(m.weight)")
    )
    breaker = fix(
        "break_symmetry",
        "initialise the weights randomly instead of to zero or one constant: remove the "
        f"nn.init.zeros_/constant_ call on {module} (PyTorch's default init is random), or "
        f"for m in model.modules(): if isinstance(m, nn.Linear): {init}; biases may stay zero",
    )
    first, second = ("he_init", "xavier_init") if relu else ("xavier_init", "he_init")
    return (breaker, fix(first), fix(second))


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="The units of a layer are identical copies (zero or constant init)",
    thresholds=(
        Threshold(
            "identical",
            1e-3,
            "unit spread (RMS deviation of a weight's rows from their mean row over the "
            "weight's RMS; ~1 for a random init) at the first sample below which the units "
            "started identical",
            "Goodfellow, Bengio & Courville, Deep Learning §8.4 (initialisation must break "
            "symmetry); cs231n 'pitfall: all zero initialization'; netdoctor margin for "
            "float rounding",
        ),
        Threshold(
            "still_identical",
            0.1,
            "unit spread at the end (median of the last three samples) below which the units "
            "are still nearly copies (dropout breaks the tie slowly)",
            "netdoctor (a tenth of a random init's spread)",
        ),
        Threshold(
            "min_samples",
            3.0,
            "sampled steps with a measured unit spread needed before judging",
            "netdoctor",
        ),
    ),
    fixes=("break_symmetry", "he_init", "xavier_init"),
    doc=RuleDoc(
        what=(
            "A trainable weight matrix whose units (rows: output features, conv channels) are "
            "identical at the first sampled step (unit spread below 1e-3, where a random "
            "initialisation gives about 1) and still nearly identical at the end (below 0.1). "
            "That is what initialising a layer to zero or to one constant does. Reported for "
            "the first such layer in forward order, with the others in the evidence."
        ),
        why=(
            "Units that start equal compute the same output for every input, receive the same "
            "gradient and take the same step, so they stay equal: a layer of 128 copies is one "
            "unit, and the network cannot learn anything a one-unit layer cannot. Random "
            "initialisation exists to break that symmetry. Initialising everything to zero is "
            "worse still: each layer's gradient flows back through the next layer's zero "
            "weights, so the hidden layers get no gradient at all and only the last bias "
            "learns (the loss stays at the class frequencies)."
        ),
        how_to_fix=(
            "Initialise the weights randomly, scaled to the layer's fan-in: He (Kaiming) init "
            "for ReLU layers, N(0, 2/n_in), and Xavier (Glorot) init for tanh, sigmoid and "
            "linear layers, N(0, 2/(n_in + n_out)). PyTorch's layers already start random: "
            "remove the nn.init.zeros_ / nn.init.constant_ call. Biases may start at zero; "
            "the weights may not."
        ),
        example=(
            "nn.init.zeros_(layer.weight)  # every unit the same: they all learn the same\n"
            "nn.init.kaiming_normal_(layer.weight, nonlinearity='relu')  # random: breaks it"
        ),
    ),
    check=check,
)
