"""Steps are optimizer steps: accumulation, missing monitor.step() calls, no optimizer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.capture import SamplingSchedule, watch
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import ActStat, StepField, StepFlag


def _batch():
    return torch.randn(8, 4), torch.randn(8, 1)


def test_gradient_accumulation_counts_optimizer_steps_and_averages_losses(tmp_path):
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []
    with watch(model, opt, log=tmp_path / "r.sqlite") as monitor:
        for _ in range(4):
            micro = []
            for k in range(3):
                x, y = _batch()
                loss = F.mse_loss(model(x), y) / 3
                loss.backward()
                micro.append(loss.item() * 3)
                if k == 2:
                    opt.step()
                    opt.zero_grad()
                monitor.step(loss * 3)  # the un-divided loss, once per micro-batch
            losses.append(np.mean(micro))
    run = open_run(tmp_path / "r.sqlite")
    assert run.n_steps == 4
    np.testing.assert_allclose(run.loss, losses, rtol=1e-5)
    assert list(run.series(StepField.MICRO_BATCHES)) == [3, 3, 3, 3]
    # the forward of three micro-batches is accumulated into one step's statistics
    assert run.act_stat(ActStat.CALLS)[0, 0] == 3


def test_steps_without_monitor_step_are_still_counted(tmp_path):
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, opt, log=tmp_path / "r.sqlite") as monitor:
        for _ in range(5):
            x, y = _batch()
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
        assert monitor.steps == 4  # the last one closes at close()
    run = open_run(tmp_path / "r.sqlite")
    assert run.n_steps == 5
    assert (run.flags & StepFlag.NO_LOSS).all()
    assert np.isfinite(run.grad_norm).all()


def test_without_optimizer_each_monitor_step_is_a_step(tmp_path):
    model = nn.Linear(4, 1)
    with watch(model, None, log=tmp_path / "r.sqlite") as monitor:
        for _ in range(3):
            x, y = _batch()
            model.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.01 * p.grad
            monitor.step(loss)
    run = open_run(tmp_path / "r.sqlite")
    assert run.n_steps == 3
    assert np.isfinite(run.grad_norm).all()


def test_eval_forward_passes_are_not_counted(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, opt, log=tmp_path / "r.sqlite",
               schedule=SamplingSchedule.every(1)) as monitor:
        for _ in range(2):
            x, y = _batch()
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            monitor.step(loss)
            with torch.no_grad():
                model(torch.randn(100, 4))  # validation: must not count
            model.eval()
            model(torch.randn(100, 4))  # eval mode without no_grad: must not count either
            model.train()
    run = open_run(tmp_path / "r.sqlite")
    assert (run.act_stat(ActStat.CALLS) == 1).all()
    assert (run.act_stat(ActStat.NUMEL)[:, 0] == 8 * 4).all()


class Shared(nn.Module):
    """One Linear used twice per forward, and an LSTM whose output is a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 6, batch_first=True)
        self.block = nn.Linear(6, 6)
        self.out = nn.Linear(6, 1)

    def forward(self, x):
        h, _ = self.lstm(x)
        h = h[:, -1]
        h = torch.tanh(self.block(h))
        h = torch.tanh(self.block(h))
        return self.out(h)


def test_shared_modules_and_tuple_outputs(tmp_path):
    model = Shared()
    opt = torch.optim.Adam(model.parameters())
    with watch(model, opt, log=tmp_path / "r.sqlite") as monitor:
        x, y = torch.randn(4, 7, 3), torch.randn(4, 1)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        monitor.step(loss)
    run = open_run(tmp_path / "r.sqlite")
    names = {s.name: s for s in run.sites}
    assert run.act[0, names["block"].idx, ActStat.CALLS] == 2
    assert run.act[0, names["lstm"].idx, ActStat.NUMEL] == 4 * 7 * 6
    assert names["lstm"].shape == (4, 7, 6)
    assert names["lstm"].forward_order < names["block"].forward_order < names["out"].forward_order


def test_hooks_are_removed_on_close(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = (len(model[0]._forward_hooks), len(model[0]._forward_pre_hooks),
              len(opt._optimizer_step_pre_hooks), len(opt._optimizer_step_post_hooks))
    monitor = watch(model, opt, log=tmp_path / "r.sqlite")
    assert len(model[0]._forward_hooks) > before[0]
    monitor.close()
    after = (len(model[0]._forward_hooks), len(model[0]._forward_pre_hooks),
             len(opt._optimizer_step_pre_hooks), len(opt._optimizer_step_post_hooks))
    assert after == before
    assert monitor.close() == monitor.close()  # idempotent


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(TypeError, match=r"must be a torch\.nn\.Module"):
        watch([1, 2], None, log=tmp_path / "a.sqlite")
    with pytest.raises(TypeError, match="optimizer must be"):
        watch(nn.Linear(2, 2), "sgd", log=tmp_path / "b.sqlite")
    model = nn.Linear(2, 2)
    with watch(model, None, log=tmp_path / "c.sqlite") as monitor:
        with pytest.raises(ValueError, match="must be a scalar"):
            monitor.step(torch.ones(3))
        with pytest.raises(TypeError, match="scalar tensor or a number"):
            monitor.step("0.5")
        with pytest.raises(TypeError, match="expected a number"):
            monitor.epoch(val_loss="x")


def test_log_path_problems_fail_before_training(tmp_path):
    from netdoctor.errors import NetdoctorError

    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(NetdoctorError, match="is a directory"):
        watch(nn.Linear(2, 2), None, log=tmp_path / "dir.sqlite")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NetdoctorError, match="cannot create the log directory"):
        watch(nn.Linear(2, 2), None, log=blocker / "sub" / "r.sqlite")


def test_a_read_only_log_directory_fails_before_training(tmp_path):
    """chmod stops an ordinary user; root writes anywhere, so as root /proc stands in for a
    read-only mount."""
    from netdoctor.errors import NetdoctorError

    if os.name != "posix":
        pytest.skip("POSIX permissions")
    if os.geteuid() == 0:
        if not os.path.isdir("/proc/self"):
            pytest.skip("no /proc to stand in for a read-only directory as root")
        locked = Path("/proc")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
    try:
        with pytest.raises(NetdoctorError, match=r"r\.sqlite: cannot create the run log"):
            watch(nn.Linear(2, 2), None, log=locked / "r.sqlite")
    finally:
        if locked != Path("/proc"):
            locked.chmod(0o700)
    assert not (locked / "r.sqlite").exists()


def test_two_monitors_on_one_path_are_refused(tmp_path):
    from netdoctor.errors import NetdoctorError

    first = watch(nn.Linear(2, 2), None, log=tmp_path / "r.sqlite")
    with pytest.raises(NetdoctorError, match="another process is writing"):
        watch(nn.Linear(2, 2), None, log=tmp_path / "r.sqlite")
    first.close()
    watch(nn.Linear(2, 2), None, log=tmp_path / "r.sqlite").close()  # free again after close


def test_hooks_that_cannot_find_anything_are_detached_between_samples(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Sigmoid(),
                          nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    schedule = SamplingSchedule(dense=1, max_interval=3)  # sampled: 0, 3, 6, ...

    def hooked() -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())

    counts = []
    with watch(model, opt, log=tmp_path / "r.sqlite", schedule=schedule) as monitor:
        for _ in range(7):
            x, y = _batch()
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            monitor.step(loss)
            counts.append(hooked())
    # after step 0: 3 Linear outputs + the data input stay; ReLU/Sigmoid come back when sampled
    assert counts[:4] == [4, 4, 6, 4]
    assert hooked() == 0
    run = open_run(tmp_path / "r.sqlite")
    assert list(run.sample_steps) == [0, 3, 6]
    relu = next(s.idx for s in run.sites if s.name == "1")
    assert (run.act_stat(ActStat.CALLS)[:, relu] == 1).all()  # measured on every sampled step


def test_watching_again_closes_the_previous_monitor(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    first = watch(model, None, log=tmp_path / "a.sqlite")
    hooks = len(model[0]._forward_hooks)
    with pytest.warns(RuntimeWarning, match="still watched"):
        second = watch(model, None, log=tmp_path / "b.sqlite")
    assert first.closed and not second.closed
    assert len(model[0]._forward_hooks) == hooks  # not stacked
    second.close()
    assert len(model[0]._forward_hooks) == 0
    assert "_netdoctor_monitor" not in model.__dict__


def test_discovery_keeps_no_activation_alive(tmp_path):
    """The first step checks which inputs duplicate an output without holding the outputs."""
    import gc
    import weakref

    model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    seen: list[weakref.ref] = []
    model[0].register_forward_hook(lambda m, a, o: seen.append(weakref.ref(o)))
    with watch(model, opt, log=tmp_path / "r.sqlite") as monitor:
        for _ in range(4):  # four micro-batches before the first optimizer step
            x, y = _batch()
            F.mse_loss(model(x), y).backward()
        gc.collect()
        assert all(ref() is None for ref in seen)
        opt.step()
        monitor.step(0.5)


class DictOut(nn.Module):
    """A layer of the user's own whose output is a dict: its probe cannot measure it."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 1) * 0.1)

    def forward(self, x):
        return {"out": x @ self.w}


def test_a_disabled_probe_is_reported_at_the_step_it_happened(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), DictOut())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.warns(RuntimeWarning, match="not a tensor"), \
            watch(model, opt, log=tmp_path / "r.sqlite", flush_every=4) as monitor:
        for _ in range(6):
            x, y = _batch()
            opt.zero_grad()
            loss = F.mse_loss(model(x)["out"], y)
            loss.backward()
            opt.step()
            monitor.step(np.float32(loss.item()))  # numpy scalars are fine too
    run = open_run(tmp_path / "r.sqlite")
    (event,) = run.events_of("warning")
    assert event.step == 0 and event.layer == "1"
    assert run.n_steps == 6 and np.isfinite(run.loss).all()
