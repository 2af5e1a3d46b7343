"""Which modules get probes, and what kind of signal each one carries.

A *site* is one place where activations are measured: a module's output, or a module's input when
that input was not already measured as another module's output (this is how ``F.relu`` and other
functional activations inside ``forward`` are seen: as the input of the next layer).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from torch import nn

from netdoctor.capture.sharded import user_name


class Family(str, enum.Enum):
    """What a site's values mean; rules pick the statistics that make sense for each."""

    RELU = "relu"  # can die: dead-unit fraction is measured
    SMOOTH = "smooth"  # unbounded smooth activations (GELU, SiLU, ELU, LeakyReLU, ...)
    BOUNDED = "bounded"  # sigmoid/tanh-like: saturation is measured
    SOFTMAX = "softmax"
    LINEAR = "linear"
    CONV = "conv"
    NORM = "norm"
    RECURRENT = "recurrent"
    EMBEDDING = "embedding"
    OTHER = "other"  # any other module that owns parameters
    INPUT = "input"  # the input of a layer, not produced by a probed module


_RELU = (nn.ReLU, nn.ReLU6, nn.RReLU, nn.Threshold)
_SMOOTH = (
    nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Softplus, nn.LogSigmoid, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink,
)
_BOUNDED: tuple[tuple[type[nn.Module], tuple[float, float]], ...] = (
    (nn.Sigmoid, (0.0, 1.0)),
    (nn.Tanh, (-1.0, 1.0)),
    (nn.Hardsigmoid, (0.0, 1.0)),
    (nn.Softsign, (-1.0, 1.0)),
)
_SOFTMAX = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)
_LINEAR = (nn.Linear, nn.Bilinear)
_CONV = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)
_NORM = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_RECURRENT = (nn.RNN, nn.LSTM, nn.GRU, nn.RNNCell, nn.LSTMCell, nn.GRUCell)
#: Layers whose *input* is worth measuring: it is the activation the previous stage produced.
_INPUT_PROBED = (*_LINEAR, *_CONV, *_NORM, *_RECURRENT)

#: A bounded activation counts as saturated within this fraction of its half-range from a bound
#: (sigmoid below 0.0025 or above 0.9975, |tanh| above 0.995): there its derivative is < 1 % of
#: its maximum. SageMaker Debugger's tanh ±9.5 / sigmoid (−23, 17) input bounds are far stricter.
SATURATION_MARGIN = 0.005


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """A candidate site, decided from the module tree before the first forward pass."""

    idx: int
    name: str  # shown to people: 'fc1', 'fc2 (input)'
    module: str  # qualified module name; '' is the model itself
    module_type: str
    role: str  # 'output' | 'input'
    family: Family
    bounds: tuple[float, float] | None
    module_order: int  # position of the module in model.named_modules()

    @property
    def checked_every_step(self) -> bool:
        """Whether the every-step non-finite check needs this site. Standard activation modules
        never turn finite inputs into NaN/Inf (softmax subtracts the max, sigmoid and tanh are
        bounded), so the site before them already tells where a non-finite value came from."""
        return self.family not in (Family.RELU, Family.SMOOTH, Family.BOUNDED, Family.SOFTMAX)

    @property
    def measures_dead_units(self) -> bool:
        return self.family in (Family.RELU, Family.INPUT)


def family_of(module: nn.Module) -> tuple[Family, tuple[float, float] | None] | None:
    """The family of a module worth probing, or None (containers, dropout, pooling...)."""
    for cls, bounds in _BOUNDED:
        if isinstance(module, cls):
            return Family.BOUNDED, bounds
    if isinstance(module, nn.Hardtanh):  # ReLU6 is a Hardtanh subclass: checked after it
        if isinstance(module, nn.ReLU6):
            return Family.RELU, None
        return Family.BOUNDED, (float(module.min_val), float(module.max_val))
    table: tuple[tuple[tuple[type[nn.Module], ...], Family], ...] = (
        (_RELU, Family.RELU),
        (_SMOOTH, Family.SMOOTH),
        (_SOFTMAX, Family.SOFTMAX),
        (_LINEAR, Family.LINEAR),
        (_CONV, Family.CONV),
        (_NORM, Family.NORM),
        (_RECURRENT, Family.RECURRENT),
        ((nn.Embedding, nn.EmbeddingBag), Family.EMBEDDING),
    )
    for classes, family in table:
        if isinstance(module, classes):
            return family, None
    if any(True for _ in module.parameters(recurse=False)):
        return Family.OTHER, None
    return None


def root_name(model: nn.Module) -> str:
    """What to call the model itself where a qualified name would be '' (a bare nn.Linear)."""
    return type(model).__name__


def _user_defined_leaf(module: nn.Module) -> bool:
    """A module of the user's own with no children (a home-made norm or activation): where
    hand-written numerics, and so NaNs, tend to come from."""
    return (not type(module).__module__.startswith("torch.")
            and next(module.children(), None) is None)


def plan_sites(model: nn.Module) -> tuple[list[SiteSpec], dict[str, nn.Module]]:
    """All candidate sites of ``model`` (outputs, then inputs of layers that take activations).

    Input sites that turn out to duplicate another site's output are switched off after the first
    forward pass; the plan lists them so that indices never change during a run.
    """
    specs: list[SiteSpec] = []
    modules: dict[str, nn.Module] = {}
    inputs: list[tuple[str, nn.Module, int]] = []
    for position, (name, module) in enumerate(model.named_modules()):
        name = user_name(name)  # FSDP1/checkpoint wrappers: the user's layer names
        found = family_of(module)
        if found is None and _user_defined_leaf(module):
            found = Family.OTHER, None
        if found is None:
            continue
        family, bounds = found
        modules[name or root_name(model)] = module
        label = name or root_name(model)
        specs.append(SiteSpec(len(specs), label, name or root_name(model), type(module).__name__,
                              "output", family, bounds, position))
        if isinstance(module, _INPUT_PROBED):
            inputs.append((name, module, position))
    for name, module, position in inputs:
        label = f"{name or root_name(model)} (input)"
        specs.append(SiteSpec(len(specs), label, name or root_name(model), type(module).__name__,
                              "input", Family.INPUT, None, position))
    return specs, modules
