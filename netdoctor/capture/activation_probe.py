"""Forward hooks that reduce each site's activations to a few numbers, on the device.

Two modes, switched by the monitor between steps (never inside a hook):

* **cheap** (every step): one ``sum`` per layer output and layer input into a device vector. NaN
  and Inf propagate into a sum, so this is the every-step non-finite check, and it names the
  first site that went bad. Activation modules are skipped (they cannot turn finite values into
  NaN/Inf); in eager mode their hooks are even detached between sampled steps.
* **full** (sampled steps): mean, std, min, max, zero / saturated / non-finite counts and the
  dead-unit fraction, accumulated over every call of the site in that step.

The hook bodies only do tensor math into preallocated tensors and read plain Python flags, so
``torch.compile`` can trace them without graph breaks, and nothing syncs with the host.

Eager mode on the CPU, where reading a value back costs nothing, takes shortcuts that give the
same numbers with a third of the tensor ops: a finite sum means no non-finite element (so no
count), zeros are counted from ``sign`` in float (comparisons to bool are slow on the CPU), and the
few numbers a call yields are added up in Python. Cheap-mode sums are kept in a list and added
to the vector once per step.
"""

from __future__ import annotations

import enum
import math
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from netdoctor.capture.sites import SATURATION_MARGIN, SiteSpec


class Acc(enum.IntEnum):
    """Columns of the per-site accumulator: all additive over calls within a step."""

    CALLS = 0
    NUMEL = 1
    SUM = 2
    SUMSQ = 3
    ZEROS = 4
    SATURATED = 5
    NONFINITE = 6
    DEAD = 7  # sum over calls of the dead-unit fraction


ACC_WIDTH = len(Acc)
#: Counts of 0/1 values summed in float32 are exact while the total stays below 2**24.
_EXACT_FLOAT_COUNT = 1 << 24


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The tensor a site measures: the output itself, or the first element of a tuple/list
    (``nn.LSTM`` returns ``(output, (h, c))``)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def _unit_max(t: torch.Tensor) -> torch.Tensor:
    """Per-unit maximum over the batch: features of (B, F), channels of (B, C, ...), last dim of
    (B, T, F) sequences."""
    if t.dim() == 2:  # (B, F)
        return t.amax(dim=0)
    if t.dim() == 3:  # (B, T, F)
        return t.amax(dim=(0, 1))
    return t.amax(dim=(0, *range(2, t.dim())))  # (B, C, ...) -> (C,), without a transposed copy


class ActivationProbe:
    """Hooks on every planned site, and the device tensors they fill."""

    def __init__(self, specs: list[SiteSpec], modules: dict[str, nn.Module], device: torch.device):
        self.specs = specs
        n = len(specs)
        self.acc = torch.zeros(n, ACC_WIDTH, device=device)  # (sites, Acc)
        self.lo = torch.full((n,), float("inf"), device=device)
        self.hi = torch.full((n,), float("-inf"), device=device)
        self.sums = torch.zeros(n, device=device)  # cheap mode
        self._sum_at = list(self.sums.unbind())  # 0-d views, made once: no indexing per call
        # eager mode: cheap-mode sums (site, 0-d tensor) and, on the CPU, full statistics
        # (site -> Acc columns + lo + hi as floats), added to the tensors at the end of the step
        self._eager_sums: list[tuple[int, torch.Tensor]] = []
        self._host_acc: dict[int, list[float]] = {}
        self._host_reads = device.type == "cpu"
        self._toggled = [s.idx for s in specs if not s.checked_every_step]
        self._hooks_full: bool | None = None  # what the toggled hooks are set for
        self._full = True
        self.discovering = True
        self.compiled = False  # the first step ran under torch.compile: never touch the hooks
        self.enabled = [True] * n
        self.duplicate = [False] * n  # input already measured as another site's output
        self.not_activation = [False] * n  # integer input (token ids): not an activation
        self.order: dict[int, int] = {}
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.step = 0  # the open optimizer step, kept current by the monitor
        self.problems: list[tuple[int, int, str]] = []  # (step, site, message), for the monitor
        # weak references: an output must not stay alive (across micro-batches) for this check
        self._seen_outputs: list[weakref.ref[torch.Tensor]] = []
        self._modules = modules
        self._handles: dict[int, torch.utils.hooks.RemovableHandle] = {}
        for spec in specs:
            self._attach(spec)

    # ---- which hooks are on ------------------------------------------------------------------
    # PyTorch's hook dispatch costs a few microseconds per hooked module and call, whatever the
    # hook does; on small layers that is most of the cost of watching. So in eager mode only
    # the hooks that can still find something stay attached between sampled steps.
    def _attach(self, spec: SiteSpec) -> None:
        module = self._modules[spec.module]
        if spec.role == "output":
            self._handles[spec.idx] = module.register_forward_hook(self._output_hook(spec))
        else:
            self._handles[spec.idx] = module.register_forward_pre_hook(self._input_hook(spec))

    def _detach(self, i: int) -> None:
        handle = self._handles.pop(i, None)
        if handle is not None:
            handle.remove()

    @property
    def full(self) -> bool:
        """Whether the current step takes full statistics (set by the monitor between steps)."""
        return self._full

    @full.setter
    def full(self, value: bool) -> None:
        self._full = value
        if self.compiled or self.discovering or value is self._hooks_full:
            return  # a compiled graph has the hooks traced in: changing them would recompile
        self._hooks_full = value
        for i in self._toggled:
            if not self.enabled[i]:
                continue
            if value and i not in self._handles:
                self._attach(self.specs[i])
            elif not value:
                self._detach(i)

    # ---- hooks -------------------------------------------------------------------------------
    # The first lines of each hook are the whole cost of an unsampled step for most sites: keep
    # them to attribute reads.
    def _output_hook(self, spec: SiteSpec) -> Callable[..., None]:
        i, every_step = spec.idx, spec.checked_every_step

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if module.training and self.enabled[i] and (self._full or every_step):
                self._observe(spec, output, is_output=True)

        return hook

    def _input_hook(self, spec: SiteSpec) -> Callable[..., None]:
        i = spec.idx

        def hook(module: nn.Module, args: Any) -> None:
            if module.training and self.enabled[i]:
                self._observe(spec, args, is_output=False)

        return hook

    def _observe(self, spec: SiteSpec, value: Any, is_output: bool) -> None:
        """Forward passes in eval mode or under no_grad (validation) are not training steps."""
        i = spec.idx
        if not torch.is_grad_enabled():
            return
        compiling = torch.compiler.is_compiling()
        if not compiling and torch._C._current_graph_task_id() != -1:
            return  # inside backward: activation checkpointing re-runs forward there
        t = value if isinstance(value, torch.Tensor) else _first_tensor(value)
        if self.discovering and not compiling and not self._discover(spec, t, is_output):
            return
        if t is None or not t.is_floating_point() or t.numel() == 0:
            return
        try:
            if compiling:
                self._measure(spec, t.detach())
            elif not self._full:
                self._eager_sums.append((i, t.detach().sum(dtype=torch.float32)))
            elif not (self._host_reads and self._measure_on_host(spec, t.detach())):
                self._measure(spec, t.detach())
        except Exception as exc:  # a probe must never break the user's training step
            self._disable(i, f"activation statistics failed ({type(exc).__name__}: {exc})")

    def _discover(self, spec: SiteSpec, t: torch.Tensor | None, is_output: bool) -> bool:
        """First step only, eager only: forward order, shapes, and duplicate input sites."""
        i = spec.idx
        if i not in self.order:
            self.order[i] = len(self.order)
        if t is None:
            self._disable(i, "output is not a tensor (or a tuple starting with one)")
            return False
        if not t.is_floating_point():
            if is_output:
                self._disable(i, f"output has dtype {t.dtype}, not floating point")
            else:
                self.enabled[i] = False
                self.not_activation[i] = True
            return False
        self.shapes.setdefault(i, tuple(t.shape))
        if is_output:
            self._seen_outputs.append(weakref.ref(t))
        elif any(t is seen() for seen in self._seen_outputs):
            self.enabled[i] = False  # already measured as the previous layer's output
            self.duplicate[i] = True
            return False
        return True

    def _disable(self, i: int, message: str) -> None:
        self.enabled[i] = False
        self.problems.append((self.step, i, message))
        warnings.warn(f"netdoctor: layer {self.specs[i].name}: {message}; probe disabled",
                      RuntimeWarning, stacklevel=3)

    def _measure(self, spec: SiteSpec, t: torch.Tensor) -> None:
        i = spec.idx
        f32 = torch.float32
        if not self.full:
            self._sum_at[i].add_(t.sum(dtype=f32))
            return
        s = t.sum(dtype=f32)
        sq = torch.linalg.vector_norm(t, 2, dtype=f32).square()
        lo, hi = torch.aminmax(t)
        zeros = (t == 0).sum(dtype=f32)
        nonfinite = t.numel() - torch.isfinite(t).sum(dtype=f32)
        if spec.bounds is not None:
            low, high = spec.bounds
            mid, half = (low + high) / 2, (high - low) / 2 * (1 - SATURATION_MARGIN)
            saturated = ((t - mid).abs() >= half).sum(dtype=f32)
        else:
            saturated = torch.zeros_like(s)
        if spec.measures_dead_units and t.dim() >= 2:
            dead = (_unit_max(t) <= 0).float().mean()
        else:
            dead = torch.zeros_like(s)
        ones = torch.ones_like(s)
        row = torch.stack([ones, ones * t.numel(), s, sq, zeros, saturated, nonfinite, dead])
        self.acc[i].add_(row)
        self.lo[i].copy_(torch.minimum(self.lo[i], lo.to(f32)))
        self.hi[i].copy_(torch.maximum(self.hi[i], hi.to(f32)))

    def _measure_on_host(self, spec: SiteSpec, t: torch.Tensor) -> bool:
        """Full statistics of one call, eager on the CPU, as ``_measure`` takes them; False
        (nothing added) when the shortcuts do not hold: a non-finite sum, counts too large for
        float32, or a dtype whose sign would round."""
        f32 = torch.float32
        numel = t.numel()
        if numel >= _EXACT_FLOAT_COUNT or t.dtype not in (f32, torch.float16, torch.bfloat16):
            return False
        s = float(t.sum(dtype=f32))
        if not math.isfinite(s):  # every element finite (else the sum is not): nothing to count
            return False
        lo, hi = torch.aminmax(t)
        signs = torch.sign(t.reshape(-1)).to(f32)  # 0 or +-1: their squares count non-zeros
        parts = [torch.linalg.vector_norm(t, 2, dtype=f32), lo, hi, torch.dot(signs, signs)]
        if spec.bounds is not None:
            low, high = spec.bounds
            mid, half = (low + high) / 2, (high - low) / 2 * (1 - SATURATION_MARGIN)
            parts.append(torch.count_nonzero((t - mid).abs() >= half))
        units = 0
        if spec.measures_dead_units and t.dim() >= 2:
            unit_max = _unit_max(t)
            units = unit_max.numel()
            parts.append(torch.count_nonzero(unit_max <= 0))
        values = torch.stack(parts).tolist()
        norm, low_v, high_v, nonzero = values[:4]
        acc = self._host_acc.get(spec.idx)
        if acc is None:
            acc = self._host_acc[spec.idx] = [0.0] * ACC_WIDTH + [math.inf, -math.inf]
        acc[Acc.CALLS] += 1
        acc[Acc.NUMEL] += numel
        acc[Acc.SUM] += s
        acc[Acc.SUMSQ] += norm * norm
        acc[Acc.ZEROS] += numel - nonzero
        if spec.bounds is not None:
            acc[Acc.SATURATED] += values[4]
        if units:
            acc[Acc.DEAD] += values[-1] / units
        acc[ACC_WIDTH] = min(acc[ACC_WIDTH], low_v)
        acc[ACC_WIDTH + 1] = max(acc[ACC_WIDTH + 1], high_v)
        return True

    # ---- step boundaries (eager code, called by the monitor) ---------------------------------
    def _gather_eager(self) -> None:
        """Add what eager calls kept aside (cheap sums, host statistics) to the device tensors."""
        if self._eager_sums:
            sites, values = zip(*self._eager_sums, strict=True)
            index = torch.tensor(sites, device=self.sums.device)
            self.sums.index_add_(0, index, torch.stack(values))
            self._eager_sums.clear()
        if self._host_acc:
            index = torch.tensor(list(self._host_acc), device=self.acc.device)
            rows = torch.tensor(list(self._host_acc.values()), dtype=self.acc.dtype,
                                device=self.acc.device)
            self.acc.index_add_(0, index, rows[:, :ACC_WIDTH])  # sites are keys: no repeats
            self.lo[index] = torch.minimum(self.lo[index], rows[:, ACC_WIDTH])
            self.hi[index] = torch.maximum(self.hi[index], rows[:, ACC_WIDTH + 1])
            self._host_acc.clear()

    def end_step(self, sums_out: torch.Tensor) -> torch.Tensor | None:
        """Copy this step's per-site sums into ``sums_out`` and reset; return the full statistics
        (sites, ACC_WIDTH + 2) when the step was sampled."""
        if self.discovering:
            self.compiled = not self.order  # discovery runs in eager code only
            if self.compiled:
                self._order_by_registration()
            else:
                for i, on in enumerate(self.enabled):
                    if not on:
                        self._detach(i)  # duplicate inputs, integer inputs, broken outputs
        self.discovering = False
        self._seen_outputs.clear()
        self._gather_eager()
        if not self.full:
            sums_out.copy_(self.sums)
            self.sums.zero_()
            return None
        sums_out.copy_(self.acc[:, Acc.SUM])
        sample = torch.cat([self.acc, self.lo[:, None], self.hi[:, None]], dim=1)
        self.acc.zero_()
        self.lo.fill_(float("inf"))
        self.hi.fill_(float("-inf"))
        return sample

    def _order_by_registration(self) -> None:
        """When the first step ran compiled, discovery saw nothing: assume the modules run in the
        order they were registered (true of nn.Sequential and most hand-written models), each
        input site just before its module."""
        for spec in sorted(self.specs, key=lambda s: (s.module_order, s.role == "output")):
            self.order[spec.idx] = len(self.order)

    def remove(self) -> None:
        for i in list(self._handles):
            self._detach(i)
