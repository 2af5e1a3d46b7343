"""Facts about a run that several rules need: clean loss, step numbers, layer kinds, formatting.

The rules state their logic; this module answers the bookkeeping questions ("which step is row
i", "is there a recurrent layer", "the RMS gradient of each layer in forward order") once, in the
same way for every rule, from what the capture side wrote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netdoctor.runlog.run_data import RunData, SiteInfo
from netdoctor.runlog.schema import StepField

RECURRENT_TYPES = frozenset({"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"})
BOUNDED_TYPES = frozenset(
    {"Sigmoid", "Tanh", "Hardtanh", "Hardsigmoid", "Softsign", "LogSigmoid", "Tanhshrink"}
)
RELU_TYPES = frozenset({"ReLU", "ReLU6", "RReLU"})
#: Gradients of embedding tables are sparse by design (only the rows in the batch get one), so
#: their RMS says nothing about gradient flow: the layer comparisons leave them out.
EMBEDDING_TYPES = frozenset({"Embedding", "EmbeddingBag"})
LINEAR_TYPES = frozenset({"Linear", "LazyLinear", "Bilinear", "NonDynamicallyQuantizableLinear"})
#: Fewer optimizer steps than this are judged on facts only (a NaN happened), never on trends:
#: a handful of points cannot tell a trend from noise.
MIN_STEPS = 10


def fmt(value: float) -> str:
    """A number for a message: 3 significant digits in a readable range, else 1.2e-05."""
    if value is None or not math.isfinite(value):
        return str(value).lower() if value is not None else "n/a"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.1e}"


def step_of(run: RunData, index: int) -> int:
    """Optimizer step number of row ``index`` of the step table."""
    return int(run.steps[index, StepField.STEP])


def index_of(run: RunData, step: int) -> int | None:
    """Row of the step table that holds optimizer step ``step``, or None."""
    rows = np.nonzero(run.step_numbers == step)[0]
    return int(rows[0]) if rows.size else None


def lr_at(run: RunData, index: int) -> float:
    """Learning rate (param group 0) at row ``index``; NaN when not recorded."""
    if not 0 <= index < run.n_steps:
        return math.nan
    return float(run.steps[index, StepField.LR])


def uses_adam(run: RunData) -> bool:
    """Whether the run's optimizer is already an Adam variant (then "try Adam" is no advice)."""
    optimizer = run.meta.get("optimizer")
    name = optimizer.get("class") if isinstance(optimizer, dict) else None
    return isinstance(name, str) and "adam" in name.lower()


def valid_loss(run: RunData) -> np.ndarray:
    """Loss per step with NaN wherever no loss was given; non-finite losses are kept as they are."""
    return np.where(run.has_loss, run.loss, math.nan)


def sites_by_module(run: RunData) -> dict[str, SiteInfo]:
    """First site (in forward order) of each module: where its type and family are known."""
    found: dict[str, SiteInfo] = {}
    for site in run.sites_in_forward_order():
        found.setdefault(site.module, site)
    for site in run.sites:
        found.setdefault(site.module, site)
    return found


def sites_of_type(run: RunData, types: frozenset[str], family: str | None = None) -> list[SiteInfo]:
    """Sites whose module type is in ``types`` or whose family is ``family``, forward order."""
    return [
        s
        for s in run.sites_in_forward_order()
        if s.module_type in types or (family is not None and s.family == family)
    ]


def has_recurrent(run: RunData) -> bool:
    return bool(sites_of_type(run, RECURRENT_TYPES, "recurrent"))


def param_module(run: RunData, param_name: str | None) -> str | None:
    """Module that owns the parameter called ``param_name`` (None when unknown)."""
    for p in run.params:
        if p.name == param_name:
            return p.module
    return None


@dataclass(frozen=True, slots=True)
class LayerRMS:
    """RMS gradient entry of each layer on each sampled step, layers in forward order.

    RMS (norm / sqrt(numel)) makes layers of different sizes comparable: the norm of a
    784x512 weight is larger than that of a 512x10 one for the same per-weight gradient.
    """

    modules: tuple[str, ...]
    steps: np.ndarray  # (m,) sampled optimizer steps
    rms: np.ndarray  # (m, L) NaN where the layer had no gradient


def layer_rms(run: RunData) -> LayerRMS:
    """Per-layer RMS gradients of the trainable layers that ran forward, minus embeddings.

    Modules that never ran forward (a parameter on the root module, an unused head) have no
    place in the forward order, so they are left out when any layer has one.
    Embedding tables are left out too (see ``EMBEDDING_TYPES``).
    """
    grads = run.layer_grads()
    order = run.module_order()
    kinds = sites_by_module(run)
    ran = [g for g in grads if g.module in order] or grads  # names that do not match: keep all
    kept = [
        g
        for g in ran
        if g.module not in kinds or kinds[g.module].module_type not in EMBEDDING_TYPES
    ]
    if not kept:
        return LayerRMS((), run.sample_steps, np.zeros((run.sample_steps.size, 0)))
    rms = np.stack([g.rms for g in kept], axis=1).astype(np.float64)
    return LayerRMS(tuple(g.module for g in kept), run.sample_steps, rms)


def output_size(run: RunData) -> int | None:
    """Number of outputs of the model's last linear layer (its logits), or None if unknown."""
    for site in reversed(run.sites_in_forward_order("output")):
        if site.module_type in LINEAR_TYPES or site.family == "linear":
            if site.shape:
                return int(site.shape[-1])
            return None
    return None
