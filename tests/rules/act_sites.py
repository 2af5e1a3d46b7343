"""Per-site activation statistics on top of ``factory.make_run``, for the activation rules.

``make_run`` gives every site an STD of 1 and zeros elsewhere; the activation rules need a dead
fraction on one ReLU, a saturated fraction on one tanh, a pre-activation profile, an input's
mean and spread, or an input site after a functional ReLU. These helpers set exactly that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from netdoctor.runlog.run_data import RunData, SiteInfo
from netdoctor.runlog.schema import ActStat


def site(run: RunData, name: str) -> SiteInfo:
    return next(s for s in run.sites if s.name == name)


def set_stat(run: RunData, name: str, stat: ActStat, values: float | Iterable[float]) -> RunData:
    """Set one statistic of site ``name`` on every sampled step (a scalar or one per sample)."""
    arr = values if isinstance(values, (int, float)) else np.asarray(list(values), dtype=float)
    run.act[:, site(run, name).idx, stat] = arr
    return run


def add_input_site(run: RunData, module: str, module_type: str = "Linear") -> RunData:
    """An input site of ``module``, called right before it, as the probe records one that is not
    the previous site's output (a functional activation in between). Its statistics start as
    make_run's (STD 1, the rest 0)."""
    spaced = [dataclasses.replace(s, forward_order=10 * (s.forward_order or 0)) for s in run.sites]
    owner = next(s for s in spaced if s.module == module and s.role == "output")
    new = SiteInfo(
        len(spaced),
        f"{module} (input)",
        module,
        module_type,
        "input",
        "input",
        (owner.forward_order or 0) - 5,
        owner.shape,
    )
    column = np.zeros((run.act.shape[0], 1, run.act.shape[2]), dtype=run.act.dtype)
    column[:, :, ActStat.CALLS] = 1
    column[:, :, ActStat.STD] = 1.0
    return dataclasses.replace(
        run, sites=(*spaced, new), act=np.concatenate([run.act, column], axis=1)
    )
