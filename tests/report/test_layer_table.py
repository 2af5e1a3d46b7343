"""Layer rows: forward order, a module's gradients once, modules never seen running last."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from netdoctor.report.layers import layer_table
from netdoctor.runlog import ParamInfo, RunData, SiteInfo, open_run
from netdoctor.runlog.schema import ActStat, ParamStat, StepField


def test_rows_from_a_log(small_log: Path) -> None:
    table = layer_table(open_run(small_log))
    assert (table.first_sample, table.last_sample) == (0, 30)
    assert [r.name for r in table.rows] == ["0", "1", "2"]
    linear, relu, _ = table.rows
    assert linear.module_type == "Linear" and linear.sat_frac is None
    assert math.isclose(linear.grad_first, math.hypot(0.3, 0.4), rel_tol=1e-6)
    assert math.isclose(linear.grad_last, math.hypot(0.3, 0.4) / 31, rel_tol=1e-6)
    assert relu.zero_frac == 0.5 and relu.grad_first is None and relu.grad_last is None


def _run(sites: tuple[SiteInfo, ...], params: tuple[ParamInfo, ...], samples: int) -> RunData:
    act = np.full((samples, len(sites), len(ActStat)), 0.5, dtype=np.float32)
    param = np.zeros((samples, len(params), len(ParamStat)), dtype=np.float32)
    param[:, :, ParamStat.HAS_GRAD] = 1
    param[:, :, ParamStat.GRAD_NORM] = 2.0
    if samples:
        param[0, :, ParamStat.HAS_GRAD] = 0  # no gradient yet at the first sample
    return RunData(
        path="x.sqlite", meta={}, sites=sites, params=params,
        steps=np.zeros((0, len(StepField))), lrs=np.zeros((0, 1)),
        sample_steps=np.arange(samples, dtype=np.int64) * 5, act=act, param=param,
        epochs=(), events=(),
    )


SITES = (
    SiteInfo(0, "enc (input)", "enc", "Linear", "input", "input", 0, None),
    SiteInfo(1, "enc", "enc", "Linear", "output", "linear", 1, None),
    SiteInfo(2, "act", "act", "Tanh", "output", "bounded", 2, None),
    SiteInfo(3, "unused", "unused", "Linear", "output", "linear", None, None),  # never ran
)
PARAMS = (
    ParamInfo(0, "enc.weight", "enc", (4, 4), 16, True, True),
    ParamInfo(1, "scale", "", (1,), 1, True, True),  # a parameter on the root module
    ParamInfo(2, "unused.weight", "unused", (4, 4), 16, True, True),
)


def test_gradients_on_the_output_row_and_extra_modules_last() -> None:
    table = layer_table(_run(SITES, PARAMS, samples=3))
    names = [r.name for r in table.rows]
    assert names[:3] == ["enc (input)", "enc", "act"]
    assert set(names[3:]) == {"(root)", "unused"}
    inputs, output, act = table.rows[:3]
    assert (output.grad_first, output.grad_last) == (None, 2.0)  # no gradient at the 1st sample
    assert (inputs.grad_first, inputs.grad_last) == (None, None)  # shown once, on the output row
    assert act.sat_frac == 0.5
    assert all(r.act_mean is None for r in table.rows[3:])


def test_no_samples_yet() -> None:
    table = layer_table(_run(SITES, PARAMS, samples=0))
    assert table.first_sample is None and table.last_sample is None
    assert [r.name for r in table.rows] == ["enc (input)", "enc", "act"]
    assert all(r.act_mean is None and r.grad_last is None for r in table.rows)
