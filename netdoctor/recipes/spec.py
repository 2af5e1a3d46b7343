"""Recipe sections as frozen dataclasses: field names and defaults are the TOML keys
(/tmp contract: issue 4). Validation lives with the loader that reads them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataSpec:
    """The ``[data]`` section: what to train on and how the inputs are prepared."""

    kind: str
    samples: int = 2000
    classes: int = 3
    features: int = 2
    noise: float = 0.1
    seq_len: int = 30
    image_size: int = 16
    normalize: bool = True
    input_scale: float = 1.0
    input_offset: float = 0.0
    augment: bool = False
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    path: str = ""
    target: str = "y"


@dataclass(frozen=True)
class ModelSpec:
    """The ``[model]`` section: architecture, initialisation and frozen parts."""

    kind: str
    depth: int = 3
    width: int = 64
    activation: str = "relu"
    init: str = "default"
    init_std: float = 0.01
    init_value: float = 0.1
    bias_init: float = 0.0
    batchnorm: bool = False
    dropout: float = 0.0
    residual: bool = False
    freeze: tuple[str, ...] = field(default_factory=tuple)
    output_softmax: bool = False
