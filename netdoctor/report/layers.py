"""Per-layer health as rows: activation statistics per site, gradient norms per module.

Sites come in forward order (the order data flows through the model). A module's gradient norms
sit on the row of its output (its input row, "fc2 (input)", shows what flowed into it); modules
that hold parameters but were never seen running (an unused branch) follow at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netdoctor.runlog import RunData
from netdoctor.runlog.schema import ActStat, ParamStat


@dataclass(frozen=True, slots=True)
class LayerRow:
    """One row of the layer table. Floats may be NaN (non-finite activations); None: not measured.

    ``sat_frac`` is None for unbounded activations (nothing to saturate). ``grad_first`` and
    ``grad_last`` are None on rows whose module has no trainable parameter, on a module's second
    site, and where no parameter of the module had a gradient at that sample.
    """

    name: str
    module: str
    module_type: str | None
    act_mean: float | None
    act_std: float | None
    zero_frac: float | None
    sat_frac: float | None
    grad_first: float | None
    grad_last: float | None


@dataclass(frozen=True, slots=True)
class LayerTable:
    rows: tuple[LayerRow, ...]
    first_sample: int | None  # optimizer step of the first / last per-layer sample
    last_sample: int | None


def layer_table(run: RunData) -> LayerTable:
    sampled = run.sample_steps.size > 0
    last_act = run.act[-1] if sampled else None  # (n_sites, len(ActStat))
    grads = _module_grads(run) if sampled else {}
    rows: list[LayerRow] = []
    shown: set[str] = set()
    has_output_row = {s.module for s in run.sites if s.role == "output"}
    for site in run.sites_in_forward_order():
        # A module's gradients go on its output row (or its only row), once.
        own = site.role == "output" or site.module not in has_output_row
        first, last = grads.get(site.module, (None, None)) if own and site.module not in shown \
            else (None, None)
        if own:
            shown.add(site.module)
        stats = last_act[site.idx] if last_act is not None else None
        rows.append(
            LayerRow(
                name=site.name,
                module=site.module,
                module_type=site.module_type,
                act_mean=_stat(stats, ActStat.MEAN),
                act_std=_stat(stats, ActStat.STD),
                zero_frac=_stat(stats, ActStat.ZERO_FRAC),
                sat_frac=None if stats is None or np.isnan(stats[ActStat.SAT_FRAC])
                else float(stats[ActStat.SAT_FRAC]),
                grad_first=first,
                grad_last=last,
            )
        )
    for module, (first, last) in grads.items():
        if module not in shown:
            rows.append(
                LayerRow(module or "(root)", module, None, None, None, None, None, first, last)
            )
    return LayerTable(
        rows=tuple(rows),
        first_sample=int(run.sample_steps[0]) if sampled else None,
        last_sample=int(run.sample_steps[-1]) if sampled else None,
    )


def _module_grads(run: RunData) -> dict[str, tuple[float | None, float | None]]:
    """Module -> combined gradient norm at the first and the last sample (None: no gradient)."""
    has = np.asarray(run.param_stat(ParamStat.HAS_GRAD) > 0.5)  # (m, n_params)
    result = {}
    for layer in run.layer_grads():
        had = np.any(has[:, list(layer.param_idx)], axis=1)  # (m,)
        result[layer.module] = (
            float(layer.norms[0]) if had[0] else None,
            float(layer.norms[-1]) if had[-1] else None,
        )
    return result


def _stat(stats: np.ndarray | None, which: ActStat) -> float | None:
    return None if stats is None else float(stats[which])
