"""The Monitor: counts optimizer steps, keeps per-step values in device rings, flushes in batches.

Step bookkeeping lives here, in eager code driven by the optimizer's step hooks and by
``monitor.step(loss)``; the hooks in the probes only do tensor math. A step is *closed* (its loss,
gradient norms and activation sums moved into the rings) at the first ``monitor.step()`` after the
optimizer stepped, or at the next optimizer step if ``monitor.step()`` was never called. Losses
given before the optimizer steps (gradient accumulation) are averaged into that step.

Every ``flush_every`` steps (or ``flush_seconds``) the rings are copied to the host in one
transfer, the first non-finite value is located, and the rows go to the log writer's thread.

In a distributed run (see ``capture.ranks``) every rank also keeps rank rows: step and lead
times from a ``StepClock`` and, on steps that are multiples of ``flush_every`` (the same steps
on every rank), a checksum of the parameters. On rank 0 they go to the log; on the other ranks
the writer is a ``RankForwarder`` that sends them to rank 0.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from netdoctor.capture.activation_probe import ACC_WIDTH, Acc, ActivationProbe
from netdoctor.capture.exit_guard import ExitGuard
from netdoctor.capture.param_probe import ParamProbe, ParamSpec
from netdoctor.capture.precision import stat_dtype
from netdoctor.capture.ranks import RankForwarder, RankSetup, replica_checksum
from netdoctor.capture.schedule import SamplingSchedule
from netdoctor.capture.sites import SiteSpec
from netdoctor.diagnosis import Diagnosis
from netdoctor.runlog.run_data import ParamInfo, SiteInfo
from netdoctor.runlog.schema import (
    GRAD_ABSENT,
    ActStat,
    ParamStat,
    RankField,
    RunStatus,
    StepField,
    StepFlag,
)
from netdoctor.runlog.writer import RunLogWriter

if TYPE_CHECKING:  # the rules load when the run is diagnosed, not when capture is imported
    from netdoctor.rules.config import RuleConfig


@dataclass(slots=True)
class _StepRow:
    """Host-side facts of one closed step (the device-side ones are in the rings)."""

    step: int
    time: float
    lrs: list[Any]  # floats, or tensors (capturable/fused optimizers): read at flush, not here
    micro_batches: int
    sampled: bool
    has_grad: bool
    step_time: float = math.nan  # distributed runs only (rank rows)
    lead_time: float = math.nan


@dataclass(slots=True)
class _Pending:
    """What the open step has gathered so far."""

    loss_sum: torch.Tensor | None = None
    loss_count: int = 0
    grads: torch.Tensor | None = None
    has_grad: bool = False
    param_sample: torch.Tensor | None = None
    lrs: list[Any] = field(default_factory=list)
    stepped: bool = False
    grads_given: bool = False  # read_gradients() read them: the optimizer's pre-hook leaves them
    step_time: float = math.nan
    lead_time: float = math.nan
    checksum: torch.Tensor | None = None


class Monitor:
    """Created by :func:`netdoctor.watch`; see its docstring for the arguments."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        writer: RunLogWriter | RankForwarder,
        sites: list[SiteSpec],
        modules: dict[str, nn.Module],
        params: list[ParamSpec],
        device: torch.device,
        schedule: SamplingSchedule,
        flush_every: int,
        flush_seconds: float,
        ranks: RankSetup | None = None,
    ) -> None:
        self.log_path: Path = writer.path
        self._ranks = ranks
        self._optimizer = optimizer
        self._writer = writer
        self._schedule = schedule
        self._flush_every = flush_every
        self._flush_seconds = flush_seconds
        self._device = device
        self._sites = sites
        self._params = params
        self._act = ActivationProbe(sites, modules, device)
        self._param_probe = ParamProbe(params, device, model)

        self._dtype = stat_dtype(device)
        self._ring_sums = torch.zeros(flush_every, len(sites), device=device)
        self._ring_grads = torch.zeros(flush_every, len(params), device=device, dtype=self._dtype)
        self._ring_loss = torch.zeros(flush_every, device=device, dtype=self._dtype)
        self._ring_checksum = torch.full((flush_every if ranks else 0,), math.nan,
                                         device=device, dtype=self._dtype)
        self._rank_info_sent = False
        self._rows: list[_StepRow] = []
        self._samples: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self._pending = _Pending()
        self._step = 0
        self._sampled = schedule.is_sampled(0)
        self._act.full = self._sampled
        self._epoch = 0
        self._logged_sites: list[SiteSpec] | None = None
        self._nonfinite_seen = False
        self._start = time.perf_counter()
        self._last_flush = self._start
        self._closed = False
        self._diagnoses: list[Diagnosis] | None = None
        self._rules: RuleConfig | None = None
        self._model = model
        self._hook_handles: list[Any] = []
        if optimizer is not None:
            self._hook_handles.append(optimizer.register_step_pre_hook(self._before_opt_step))
            self._hook_handles.append(optimizer.register_step_post_hook(self._after_opt_step))
        self._exit_guard = ExitGuard(self._close_at_exit)

    # ---- public API ----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def steps(self) -> int:
        """Optimizer steps closed so far."""
        return self._step

    def step(self, loss: Any = None) -> None:
        """Give the loss of the micro-batch just trained; call once per ``optimizer.step()``
        (after it), or per micro-batch under gradient accumulation."""
        self._check_open()
        if loss is not None:
            self._add_loss(loss)
        if self._optimizer is None:
            self._read_grads()
            if self._sampled:
                self._pending.param_sample = self._param_probe.sample(self._pending.grads)
            self._pending.stepped = True
            self._rank_step_end()
        if self._pending.stepped:
            self._close_step()

    def epoch(
        self,
        train_loss: Any = None,
        val_loss: Any = None,
        train_acc: Any = None,
        val_acc: Any = None,
        **metrics: Any,
    ) -> None:
        """Record end-of-epoch metrics (any subset). Values may be floats or 1-element tensors."""
        self._check_open()
        given = {"train_loss": train_loss, "val_loss": val_loss, "train_acc": train_acc,
                 "val_acc": val_acc, **metrics}
        values = {name: _to_float(name, v) for name, v in given.items() if v is not None}
        if self._pending.stepped:
            self._close_step()
        self._flush()
        self._writer.put_epoch(self._epoch, max(self._step - 1, 0), values)
        self._writer.commit()
        self._epoch += 1

    def annotate(self, items: dict[str, Any]) -> None:
        """Add facts about the run to the log's meta table (JSON values), e.g. the recipe that
        trained it or why a training loop stopped early; written with the next flush."""
        self._check_open()
        self._writer.put_meta(items)

    def read_gradients(self, scale: float | torch.Tensor | None = None) -> None:
        """Read this optimizer step's gradients now instead of in the optimizer's pre-hook.

        For trainers where the pre-hook sees the wrong ones: Lightning runs the backward pass
        inside ``optimizer.step(closure)``, after the pre-hook, and a trainer that clips before
        stepping would show clipped norms, while the evidence for exploding gradients must be
        pre-clip. ``scale``: a loss scale the gradients still carry (divided out).
        """
        self._check_open()
        if self._pending.stepped:
            self._close_step()
        self._read_grads(scale)
        self._pending.grads_given = True

    def diagnose(self, rules: RuleConfig | None = None) -> list[Diagnosis]:
        """The diagnoses of the run so far, for stopping a run early: flushes first, then runs
        the rules on the log. Only the process that writes the log diagnoses ([] elsewhere)."""
        self._check_open()
        if self._pending.stepped:
            self._close_step()
        self._flush()
        if not isinstance(self._writer, RunLogWriter):
            return []
        self._writer.wait()
        return _diagnose(self.log_path, rules)

    def close(
        self, rules: RuleConfig | None = None, message: str | None = None
    ) -> list[Diagnosis]:
        """Flush, close the log, remove every hook, and return the diagnoses. Idempotent.

        ``rules`` (a ``netdoctor.rules.RuleConfig``) selects rules and thresholds; default:
        every rule with its default thresholds. ``message`` (one line) says how the run ended
        when that is worth telling, e.g. "stopped by the max_steps budget"; reports show it.
        """
        self._rules = rules
        return self._finish(RunStatus.FINISHED, message)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self._finish(RunStatus.FINISHED, None)
        elif issubclass(exc_type, KeyboardInterrupt):
            self._finish(RunStatus.INTERRUPTED, "interrupted (KeyboardInterrupt)")
        else:
            self._finish(RunStatus.CRASHED, _one_line(exc))

    # ---- optimizer hooks -----------------------------------------------------------------------
    def _before_opt_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._closed:
            return
        if self._pending.stepped:  # the previous step got no monitor.step(): close it now
            self._close_step()
        if not self._pending.grads_given:  # a fused optimizer under a GradScaler: still scaled
            self._read_grads(getattr(optimizer, "grad_scale", None))
        if self._sampled:
            self._param_probe.snapshot()

    def _after_opt_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._closed:
            return
        if self._sampled:
            self._pending.param_sample = self._param_probe.sample(self._pending.grads)
        self._pending.lrs = [group.get("lr", math.nan) for group in optimizer.param_groups]
        self._pending.stepped = True
        self._rank_step_end()

    def _rank_step_end(self) -> None:
        """Distributed runs: the step's host times and, on the shared schedule, the checksum."""
        ranks = self._ranks
        if ranks is None:
            return
        pending = self._pending
        pending.step_time, pending.lead_time = ranks.clock.step_end()
        if ranks.replicated and self._step % self._flush_every == 0:
            pending.checksum = replica_checksum([p.param for p in self._params], self._dtype,
                                                self._device)

    # ---- step bookkeeping ------------------------------------------------------------------------
    def _add_loss(self, loss: Any) -> None:
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise ValueError(
                    f"monitor.step(loss): loss must be a scalar, got a tensor of shape "
                    f"{tuple(loss.shape)}; reduce it first (loss.mean())")
            value = loss.detach().reshape(()).to(self._device, self._dtype)
        elif isinstance(loss, (int, float, np.floating, np.integer)) and not isinstance(loss, bool):
            value = torch.tensor(float(loss), device=self._device, dtype=self._dtype)
        else:
            raise TypeError(
                f"monitor.step(loss): loss must be a scalar tensor or a number, "
                f"got {type(loss).__name__}")
        pending = self._pending
        pending.loss_sum = value if pending.loss_sum is None else pending.loss_sum + value
        pending.loss_count += 1

    def _read_grads(self, scale: float | torch.Tensor | None = None) -> None:
        self._pending.grads, self._pending.has_grad = self._param_probe.grad_norms(scale)

    def _close_step(self) -> None:
        pending = self._pending
        slot = len(self._rows)
        act_sample = self._act.end_step(self._ring_sums[slot])
        if pending.grads is not None:
            self._ring_grads[slot].copy_(pending.grads)
        else:
            self._ring_grads[slot].fill_(GRAD_ABSENT)
        if pending.loss_sum is not None:
            self._ring_loss[slot].copy_(pending.loss_sum / pending.loss_count)
        else:
            self._ring_loss[slot].fill_(float("nan"))
        if self._ranks is not None:
            if pending.checksum is not None:
                self._ring_checksum[slot].copy_(pending.checksum)
            else:
                self._ring_checksum[slot].fill_(float("nan"))
        self._rows.append(_StepRow(
            step=self._step,
            time=time.perf_counter() - self._start,
            lrs=pending.lrs,
            micro_batches=pending.loss_count,
            sampled=act_sample is not None,
            has_grad=pending.has_grad,
            step_time=pending.step_time,
            lead_time=pending.lead_time,
        ))
        if act_sample is not None:
            param_sample = pending.param_sample
            if param_sample is None:
                param_sample = torch.full((len(self._params), len(ParamStat)), float("nan"),
                                          device=self._device, dtype=self._dtype)
            self._samples.append((self._step, act_sample, param_sample))
        self._pending = _Pending()
        self._step += 1
        self._act.step = self._step
        self._sampled = self._schedule.is_sampled(self._step)
        self._act.full = self._sampled
        if not self._sampled:  # the weights' snapshot buffer lives only across sampled steps
            self._param_probe.release()
        if (len(self._rows) == self._flush_every
                or time.perf_counter() - self._last_flush > self._flush_seconds):
            self._flush()

    # ---- flush: device -> host -> writer thread ------------------------------------------------
    def _flush(self) -> None:
        self._last_flush = time.perf_counter()
        n = len(self._rows)
        if n == 0 and not self._samples:
            return
        if self._logged_sites is None:
            self._write_structure()
        n_sites, n_params = len(self._sites), len(self._params)
        parts = [self._ring_sums[:n].flatten(), self._ring_grads[:n].flatten(), self._ring_loss[:n],
                 self._ring_checksum[:n]]
        parts += [a.flatten() for _, a, _ in self._samples]
        parts += [p.flatten() for _, _, p in self._samples]
        # one copy, one sync; cast on the host (MPS has no float64)
        flat = torch.cat([p.to(self._dtype) for p in parts]).cpu().numpy().astype(np.float64)
        sums, flat = flat[: n * n_sites].reshape(n, n_sites), flat[n * n_sites:]
        grads, flat = flat[: n * n_params].reshape(n, n_params), flat[n * n_params:]
        losses, flat = flat[:n], flat[n:]
        n_sums = n if self._ranks is not None else 0
        checksums, flat = flat[:n_sums], flat[n_sums:]
        k = len(self._samples)
        acts, flat = flat[: k * n_sites * (ACC_WIDTH + 2)], flat[k * n_sites * (ACC_WIDTH + 2):]
        acts = acts.reshape(k, n_sites, ACC_WIDTH + 2)
        params = flat.reshape(k, n_params, len(ParamStat))

        logged = [s.idx for s in self._logged_sites or []]
        steps, lrs = self._step_table(sums[:, logged], grads, losses)
        self._writer.put_steps(steps, lrs)
        if self._ranks is not None and n:
            self._put_rank_rows(steps, checksums)
        for (step, _, _), act, param in zip(self._samples, acts, params, strict=True):
            self._writer.put_sample(step, self._act_table(act)[logged], param)
        if not self._nonfinite_seen:
            self._find_first_nonfinite(steps, sums, grads, losses)
        for step, site, message in self._act.problems:
            self._writer.put_event(step, "warning", self._sites[site].name, message)
        self._act.problems.clear()
        self._writer.put_meta({"last_step": self._step - 1, "last_flush_at": time.time()})
        self._writer.commit()
        self._rows.clear()
        self._samples.clear()

    def _put_rank_rows(self, steps: np.ndarray, checksums: np.ndarray) -> None:
        assert self._ranks is not None
        rows = np.full((steps.shape[0], len(RankField)), math.nan)
        rows[:, RankField.STEP] = steps[:, StepField.STEP]
        rows[:, RankField.LOSS] = steps[:, StepField.LOSS]
        rows[:, RankField.STEP_TIME] = [r.step_time for r in self._rows]
        rows[:, RankField.LEAD_TIME] = [r.lead_time for r in self._rows]
        rows[:, RankField.FLAGS] = steps[:, StepField.FLAGS]
        rows[:, RankField.CHECKSUM] = checksums
        info = None
        if not self._rank_info_sent:  # step 0 is closed: its samples are counted
            self._rank_info_sent = True
            samples = self._ranks.clock.samples_per_step
            info = {"device": str(self._device), "samples_per_step": samples or None}
        self._writer.put_rank_rows(self._ranks.rank, rows, info)

    def _write_structure(self) -> None:
        act = self._act
        self._logged_sites = [
            s for s in self._sites if not act.duplicate[s.idx] and not act.not_activation[s.idx]
        ]
        rows = [
            SiteInfo(new, s.name, s.module, s.module_type, s.role, s.family.value,
                    act.order.get(s.idx), act.shapes.get(s.idx))
            for new, s in enumerate(self._logged_sites)
        ]
        params = [
            ParamInfo(p.idx, p.name, p.module, tuple(p.param.shape), p.param.numel(),
                     p.param.requires_grad, p.in_optimizer)
            for p in self._params
        ]
        self._writer.put_structure(rows, params)

    def _step_table(
        self, sums: np.ndarray, grads: np.ndarray, losses: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(self._rows)
        steps = np.zeros((n, len(StepField)))
        groups = max([len(r.lrs) for r in self._rows] + [1])
        lrs = np.full((n, groups), math.nan)
        present = grads != GRAD_ABSENT
        with np.errstate(invalid="ignore", over="ignore"):
            total = np.sqrt(np.where(present, grads, 0.0) ** 2 @ np.ones(grads.shape[1]))
            grad_bad = (~np.isfinite(grads) & present).any(axis=1)
            act_bad = ~np.isfinite(sums).all(axis=1)
        for i, row in enumerate(self._rows):
            row.lrs = [_lr(lr) for lr in row.lrs]
            flags = StepFlag(0)
            if row.sampled:
                flags |= StepFlag.SAMPLED
            if row.micro_batches == 0:
                flags |= StepFlag.NO_LOSS
            elif not math.isfinite(losses[i]):
                flags |= StepFlag.LOSS_NONFINITE
            if grad_bad[i]:
                flags |= StepFlag.GRAD_NONFINITE
            if act_bad[i]:
                flags |= StepFlag.ACT_NONFINITE
            if not row.has_grad:
                flags |= StepFlag.NO_GRAD
            steps[i] = (row.step, losses[i], total[i] if row.has_grad else math.nan,
                        row.lrs[0] if row.lrs else math.nan, row.time, row.micro_batches,
                        int(flags))
            lrs[i, : len(row.lrs)] = row.lrs
        return steps, lrs

    def _act_table(self, acc: np.ndarray) -> np.ndarray:
        """Accumulators (sites, ACC_WIDTH + 2) -> ActStat columns (sites, len(ActStat))."""
        out = np.full((acc.shape[0], len(ActStat)), math.nan)
        calls, numel = acc[:, Acc.CALLS], acc[:, Acc.NUMEL]
        lo, hi = acc[:, ACC_WIDTH], acc[:, ACC_WIDTH + 1]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            mean = acc[:, Acc.SUM] / numel
            var = np.maximum(acc[:, Acc.SUMSQ] / numel - mean**2, 0.0)
            out[:, ActStat.CALLS] = calls
            out[:, ActStat.NUMEL] = numel
            out[:, ActStat.MEAN] = mean
            out[:, ActStat.STD] = np.sqrt(var)
            out[:, ActStat.MIN] = lo
            out[:, ActStat.MAX] = hi
            out[:, ActStat.ABSMAX] = np.maximum(np.abs(lo), np.abs(hi))
            out[:, ActStat.ZERO_FRAC] = acc[:, Acc.ZEROS] / numel
            out[:, ActStat.NONFINITE] = acc[:, Acc.NONFINITE]
            for spec in self._sites:
                if spec.bounds is not None:
                    out[spec.idx, ActStat.SAT_FRAC] = acc[spec.idx, Acc.SATURATED] / numel[spec.idx]
                if spec.measures_dead_units:
                    out[spec.idx, ActStat.DEAD_FRAC] = acc[spec.idx, Acc.DEAD] / calls[spec.idx]
        never = calls == 0
        out[never] = math.nan
        out[never, ActStat.CALLS] = 0
        out[never, ActStat.NUMEL] = 0
        return out

    def _find_first_nonfinite(
        self, steps: np.ndarray, sums: np.ndarray, grads: np.ndarray, losses: np.ndarray
    ) -> None:
        """Write one 'nonfinite' event for the first bad step: where it entered, in run order
        (input data, then layers in forward order, then the loss, then the gradients)."""
        bad_flags = StepFlag.LOSS_NONFINITE | StepFlag.GRAD_NONFINITE | StepFlag.ACT_NONFINITE
        bad = np.nonzero(steps[:, StepField.FLAGS].astype(np.int64) & int(bad_flags))[0]
        if len(bad) == 0:
            return
        self._nonfinite_seen = True
        i = int(bad[0])
        step = int(steps[i, StepField.STEP])
        order = self._act.order
        logged = self._logged_sites or []
        bad_sites = sorted((s for s in logged if not math.isfinite(sums[i, s.idx])),
                           key=lambda s: order.get(s.idx, 1 << 30))
        bad_params = [p.name for p in self._params
                      if grads[i, p.idx] != GRAD_ABSENT and not math.isfinite(grads[i, p.idx])]
        loss = float(losses[i])
        data: dict[str, Any] = {
            "sites": [s.name for s in bad_sites], "params": bad_params,
            "loss": loss if math.isfinite(loss) else str(loss),
            "site": None, "module": None, "param": None,
        }
        if bad_sites:
            first = bad_sites[0]
            is_data = first.role == "input" and order.get(first.idx) == 0
            data.update(source="input" if is_data else "activation", site=first.name,
                        module=first.module)
            layer = first.name
            where = "the input batch" if is_data else f"the output of {first.name}"
        elif steps[i, StepField.FLAGS].astype(np.int64) & StepFlag.LOSS_NONFINITE:
            data.update(source="loss")
            layer = None
            where = "the loss (every layer's output was finite)"
        else:
            data.update(source="gradient", param=bad_params[0] if bad_params else None,
                        module=self._module_of(bad_params[0]) if bad_params else None)
            layer = data["module"]
            where = f"the gradient of {bad_params[0]}" if bad_params else "the gradients"
        self._writer.put_event(step, "nonfinite", layer,
                               f"first non-finite value at step {step}, in {where}", data)

    def _module_of(self, param_name: str) -> str:
        return param_name.rpartition(".")[0]

    # ---- closing -------------------------------------------------------------------------------
    def _finish(self, status: RunStatus, message: str | None) -> list[Diagnosis]:
        if self._closed:
            return self._diagnoses or []
        self._closed = True
        self._exit_guard.disarm()
        try:
            if self._pending.stepped:
                self._close_step()
            self._flush()
        finally:
            for handle in self._hook_handles:
                handle.remove()
            if self._ranks is not None:
                self._ranks.clock.remove()
            if self._model.__dict__.get("_netdoctor_monitor") is self:
                del self._model.__dict__["_netdoctor_monitor"]
            self._act.remove()
            self._writer.close(status, message)
        if not isinstance(self._writer, RunLogWriter):  # another rank: rank 0 diagnoses the run
            self._diagnoses = []
        elif status is RunStatus.FINISHED:
            self._diagnoses = _diagnose(self.log_path, self._rules)
        else:  # closing because of the user's exception: nothing here may replace it
            try:
                self._diagnoses = _diagnose(self.log_path, self._rules)
            except Exception as exc:
                warnings.warn(f"netdoctor: could not diagnose {self.log_path}: {exc}",
                              RuntimeWarning, stacklevel=2)
                self._diagnoses = []
        return self._diagnoses

    def _close_at_exit(self, exc: BaseException | None) -> None:
        if exc is None:
            self._finish(RunStatus.FINISHED, None)
        elif isinstance(exc, KeyboardInterrupt):
            self._finish(RunStatus.INTERRUPTED, "interrupted (KeyboardInterrupt)")
        else:
            self._finish(RunStatus.CRASHED, _one_line(exc))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("netdoctor: this monitor is closed; call watch() again")


def _diagnose(path: Path, rules: RuleConfig | None) -> list[Diagnosis]:
    from netdoctor.rules import run_rules
    from netdoctor.runlog import open_run

    return run_rules(open_run(path), rules)


def _lr(lr: Any) -> float:
    return float(lr.item()) if isinstance(lr, torch.Tensor) else float(lr)


def _to_float(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"monitor.epoch({name}=...): expected a number, got a tensor of "
                             f"shape {tuple(value.shape)}")
        return float(value.detach().float().item())
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"monitor.epoch({name}=...): expected a number, got {type(value).__name__}")
    return float(value)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


__all__ = ["Monitor"]
