"""The TUI's textual-free parts: braille charts, time bins, replay cuts, the view records, the
comparison, the log poller, and that the help lists every key the app binds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from rich.style import Style

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.runlog import open_run
from netdoctor.tui.compare import MetricRow, RunRecord, metric_rows, verdict
from netdoctor.tui.glyphs import sparkline, time_any, time_bins
from netdoctor.tui.health import HealthBands
from netdoctor.tui.log_poller import LogPoller
from netdoctor.tui.plot import LineChart, Marker, Series, tick
from netdoctor.tui.replay import cut_run, move_cursor, scrub_stops
from netdoctor.tui.run_view import build_view, named_modules
from tests.tui.runs import RunWriter, diagnoses_for, fixed_rules

PLAIN = Style()


def chart_text(chart: LineChart, width: int, height: int) -> list[str]:
    return ["".join(s.text for s in row) for row in chart.lines(width, height)]


# ---- braille charts ------------------------------------------------------------------------------
def test_a_rising_line_climbs_from_bottom_left_to_top_right() -> None:
    x = np.arange(50.0)
    rows = chart_text(LineChart([Series("loss", x, x, PLAIN, PLAIN)]), 30, 6)
    assert len(rows) == 6 and all(len(r) == 30 for r in rows)
    offset = len(rows[-1]) - len(rows[-1].lstrip())  # where the plot starts, after the labels
    plot = [r[offset:] for r in rows[:-1]]
    first_dot = [min((i for i, ch in enumerate(r) if ch != " "), default=99) for r in plot]
    assert first_dot[-1] < first_dot[0]  # bottom row starts left of the top row
    assert rows[0].lstrip().startswith("49") and rows[-2].lstrip().startswith("0")
    assert rows[-1].split() == ["0", "step", "49"]


def test_non_finite_values_are_marked_on_the_top_row() -> None:
    x = np.arange(40.0)
    y = np.where(x < 30, 1.0 + x / 10, np.nan)
    rows = chart_text(LineChart([Series("loss", x, y, PLAIN, PLAIN)]), 40, 6)
    assert "x" in rows[0] and "x" not in "".join(rows[1:-1])


def test_log_axis_and_markers() -> None:
    x = np.arange(100.0)
    chart = LineChart([Series("loss", x, 10.0 ** (x / 20), PLAIN, PLAIN)], log=True,
                      markers=[Marker(50, "3", PLAIN)])
    rows = chart_text(chart, 40, 8)
    assert rows[0].startswith("8.9e4") and rows[-2].lstrip().startswith("1")
    assert "3" in rows[0] and any("┊" in r for r in rows[1:-1])


def test_an_empty_chart_says_so() -> None:
    rows = chart_text(LineChart([], empty_text="no loss yet"), 30, 5)
    assert "no loss yet" in rows[2]


def test_ticks_are_short() -> None:
    assert [tick(v) for v in (0, 0.5, 1234.5, 123456.0, 1e-5, -2e7)] == \
        ["0", "0.5", "1.23e+03", "1.2e5", "1.0e-5", "-2.0e7"]


# ---- time bins and sparklines ----------------------------------------------------------------
def test_bins_keep_the_peak_and_fill_only_empty_bins() -> None:
    steps = np.array([0, 1, 2, 3, 8, 9])
    values = np.array([1.0, 5.0, 2.0, np.nan, np.nan, 7.0])
    binned = time_bins(steps, values, (0, 19), 10)
    # bin 0 holds steps 0-1 (peak 5), bin 1 steps 2-3, bins 2-3 hold nothing (repeat bin 1),
    # bin 4 holds steps 8-9, bins 5-9 come after the last sample
    assert binned[:5].tolist() == [5.0, 2.0, 2.0, 2.0, 7.0]
    assert np.isnan(binned[5:]).all()
    flags = time_any(steps, np.isnan(values), (0, 19), 10)
    assert flags[:5].tolist() == [False, True, True, True, True]


def test_a_bin_of_non_finite_samples_stays_empty() -> None:
    binned = time_bins(np.arange(4), np.array([1.0, 2.0, np.nan, np.nan]), (0, 3), 4)
    assert binned[:2].tolist() == [1.0, 2.0] and np.isnan(binned[2:]).all()


def test_sparkline_of_a_rise() -> None:
    line = sparkline(np.arange(8), 10.0 ** np.arange(8), None, 8)
    assert line == "▁▂▃▄▅▆▇█"


# ---- replay --------------------------------------------------------------------------------------
@pytest.fixture
def exploding(saved_run):  # type: ignore[no-untyped-def]
    return open_run(saved_run("exploding"))


def test_cut_run_is_the_run_at_that_step(exploding) -> None:  # type: ignore[no-untyped-def]
    cut = cut_run(exploding, 41)
    assert cut.step_numbers[-1] == 41 and cut.sample_steps[-1] == 40
    assert [e.step for e in cut.epochs] == [19, 39]
    assert not cut.finished and cut.writer_alive  # it was still running then
    assert cut_run(exploding, 119) is exploding


def test_cursor_moves_between_stops_and_past_the_end(exploding) -> None:  # type: ignore[no-untyped-def]
    stops = scrub_stops(exploding)
    assert stops[0] == 0 and stops[-1] == 119 and set(exploding.sample_steps) <= set(stops)
    back = move_cursor(exploding, None, -1)
    assert back == stops[-2]
    assert move_cursor(exploding, back, 1) is None  # past the end: the latest step
    assert move_cursor(exploding, None, -10_000) == 0
    between = int(stops[10]) + 1 if stops[11] - stops[10] > 1 else int(stops[10])
    assert move_cursor(exploding, between, -1) <= between


# ---- the view ------------------------------------------------------------------------------------
def test_view_of_a_vanishing_run(saved_run) -> None:  # type: ignore[no-untyped-def]
    run = open_run(saved_run("vanishing"))
    view = build_view(run, diagnoses_for("vanishing"), bands=HealthBands(saturated_fraction=0.5))
    assert view.header.name == "vanishing" and view.header.epoch == 6
    assert view.header.samples_per_s == pytest.approx(50 * 32)  # 1 step per 0.02 s, batch 32
    assert view.heat.modules == ("fc0", "fc1", "fc2", "fc3", "head")
    rms = np.nanmedian(view.heat.rms, axis=0)
    assert list(rms) == sorted(rms)  # the gradients grow towards the output
    fc0 = next(layer for layer in view.layers if layer.key == "fc0")
    assert fc0.grad is not None and fc0.grad < 1e-6
    weight_grad = fc0.grad / math.sqrt(1 + 0.3**2)  # the bias's gradient is 0.3 of the weight's
    # the update is 0.1 of the gradient, the weight norm 2: ratio of the matrix only
    assert fc0.update_ratio == pytest.approx(0.1 * weight_grad / 2, rel=1e-4)
    assert view.named[0] == frozenset({"fc0", "fc1"})


def test_named_modules_reads_params_and_lists_but_not_references(saved_run) -> None:  # type: ignore[no-untyped-def]
    run = open_run(saved_run("vanishing"))
    d = Diagnosis("x", Severity.WARNING, 0, None, "m",
                  {"params": ["fc2.weight"], "last_layer": "head", "dead_layers": ["act1"],
                   "layer_update_ratios": {"fc3.weight": 1.0}})
    assert named_modules(d, run) == frozenset({"fc2", "act1", "fc3"})


def test_health_bands_come_from_the_rules_settings() -> None:
    pytest.importorskip("netdoctor.rules")
    from netdoctor.rules import RuleConfig

    config = RuleConfig(thresholds={"dead_relu": {"dead_fraction": 0.25}})
    bands = HealthBands.from_rules(config)
    assert bands.dead_fraction == 0.25
    assert bands.judge(0.3, None, None) == ["dead 30% ≥ 25%"]
    assert bands.judge(0.2, None, None) == []


# ---- comparison --------------------------------------------------------------------------------
def test_verdict_and_metric_rows() -> None:
    errors = tuple(diagnoses_for("exploding"))
    before = RunRecord("r", Path("a"), "diverged", 60, {"val_loss": math.nan, "val_acc": 0.3},
                       errors)
    after = RunRecord("r + lower_lr", Path("b"), "finished", 120,
                      {"val_loss": 0.4, "val_acc": 0.9})
    assert verdict(before, after, "lower_lr") == \
        "lower_lr: errors 2 → 0 · no findings left · val_loss nan → 0.4 · val_acc 0.3 → 0.9"
    rows = {r.name: r for r in metric_rows(before, after)}
    assert rows["val_loss"].better and rows["val_acc"].better
    assert MetricRow("val_loss", 0.3, 0.5).better is False
    assert MetricRow("train_acc", 0.5, 0.5).better is None


# ---- polling -------------------------------------------------------------------------------------
def test_poller_rediagnoses_only_when_the_log_moved(tmp_path: Path) -> None:
    calls = []

    def diagnose(run):  # type: ignore[no-untyped-def]
        calls.append(run.n_steps)
        return fixed_rules(run)

    writer = RunWriter(tmp_path / "grow.sqlite", "exploding", live=True)
    writer.write(8)
    poller = LogPoller(tmp_path / "grow.sqlite", diagnose)
    assert poller.poll() is not None and poller.poll() is None
    writer.write(8)
    snapshot = poller.poll()
    assert snapshot is not None and snapshot.run.n_steps == 16 and calls == [8, 16]
    assert [d.rule for d in snapshot.diagnoses] == ["exploding_gradients"]  # step 12 reached
    assert not poller.done
    writer.close()
    assert poller.poll() is not None and poller.done


def test_help_lists_every_key_the_app_binds() -> None:
    from netdoctor.tui.app import NetdoctorApp
    from netdoctor.tui.screens.help_screen import KEYS
    from netdoctor.tui.screens.main_screen import MainScreen

    documented = " ".join(key for key, _ in KEYS)
    names = {"question_mark": "?", "slash": "/", "left_square_bracket": "[",
             "right_square_bracket": "]", "left_curly_bracket": "{", "right_curly_bracket": "}"}
    for binding in [*NetdoctorApp.BINDINGS, *MainScreen.BINDINGS]:
        key = binding.key  # type: ignore[union-attr]
        assert names.get(key, key) in documented, key


def test_refresh_budget_spaces_costly_refreshes() -> None:
    from netdoctor.tui.refresh_budget import RefreshBudget

    now, cpu = [0.0], [0.0]
    budget = RefreshBudget(share=0.1, min_interval=0.2, max_interval=5.0,
                           clock=lambda: now[0], cpu=lambda: cpu[0])
    assert budget.ready()
    budget.started()
    now[0], cpu[0] = 0.1, 0.001
    assert not budget.ready()  # the top rate: 5 Hz
    now[0] = 0.2
    assert budget.ready()  # a cheap refresh: at once
    budget.started()
    cpu[0] += 0.05  # drawing took 50 ms of the UI thread
    budget.add_worker_cpu(0.05)  # and 50 ms of workers: 100 ms in all
    now[0] = 0.9
    assert not budget.ready()  # 100 ms is 10 % of 1 s: not before 1.2 s
    now[0] = 1.21
    assert budget.ready()
    budget.started()
    cpu[0] += 10.0  # something enormous
    now[0] = 1.21 + 5.0
    assert budget.ready()  # the panels never freeze longer than max_interval
