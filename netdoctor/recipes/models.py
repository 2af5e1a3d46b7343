"""The models a recipe can build, their initialisation and their frozen parts.

Module names are part of the interface: reports name layers by them and a recipe's ``freeze``
list selects them. They stay the same for a given kind and size:

- mlp / resmlp: ``flatten`` (only for image or sequence inputs), then ``hidden.{i}.linear``,
  ``hidden.{i}.norm`` (batchnorm), ``hidden.{i}.act``, ``hidden.{i}.dropout`` for each of
  ``depth`` hidden layers, then ``head`` (and ``softmax`` with ``output_softmax``).
- cnn: ``blocks.{i}.conv``, ``blocks.{i}.norm``, ``blocks.{i}.act``, ``blocks.{i}.pool`` per conv
  block; rescnn (or cnn with ``residual``): ``blocks.{i}.conv1``, ``.norm1``, ``.act1``,
  ``.conv2``, ``.norm2``, ``.skip`` (1x1 projection when the channels change), ``.act2``,
  ``.pool``; then ``flatten``, ``fc.linear``, ``fc.norm``, ``fc.act``, ``fc.dropout``, ``head``.
- rnn / lstm / gru: the recurrent layers as one module named after the kind (``rnn``, ``lstm``,
  ``gru``), then ``norm`` (batchnorm of the last step), ``dropout``, ``head``.

Activations are real modules (nn.ReLU, nn.Sigmoid, ...) so that netdoctor's probes see and
classify them. The builders draw from torch's global generator: seed it first for the same
weights on every run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from netdoctor.errors import ConfigError
from netdoctor.recipes.data import Dataset
from netdoctor.recipes.spec import ModelSpec

MODEL_KINDS = ("mlp", "cnn", "rnn", "lstm", "gru", "resmlp", "rescnn")
RECURRENT_KINDS = ("rnn", "lstm", "gru")
INITS = ("default", "zeros", "constant", "normal", "xavier", "he", "lecun")

#: Negative slope of ``activation = "leaky_relu"`` (PyTorch's default), used by He/Xavier gains.
LEAKY_SLOPE = 0.01

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "identity": nn.Identity,
}

#: torch.nn.init.calculate_gain's name for each activation (GELU and ELU have no entry there;
#: their slope near 0 is about 1, so they get the linear gain).
_GAIN_NAMES = {"relu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh",
               "sigmoid": "sigmoid", "gelu": "linear", "elu": "linear", "identity": "linear"}

_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def build_model(spec: ModelSpec, data: Dataset, *, source: str = "") -> nn.Module:
    """The recipe's model for ``data``, initialised as ``spec.init`` says and with the modules
    under ``spec.freeze`` frozen. ``source`` (the recipe's path) starts error messages."""
    where = f"{source}: " if source else ""
    _check(spec, data, where)
    if spec.kind in ("mlp", "resmlp"):
        model: nn.Module = MLP(spec, data, residual=spec.residual or spec.kind == "resmlp")
    elif spec.kind in ("cnn", "rescnn"):
        if len(data.input_shape) != 3:
            raise ConfigError(f"{where}model.kind = {spec.kind!r} needs images (n, C, H, W): "
                              f"data.kind = 'shapes' or an npz with 4-D 'x'; these inputs are "
                              f"{_shape_text(data.input_shape)}")
        model = CNN(spec, data, residual=spec.residual or spec.kind == "rescnn")
    else:
        if not data.sequence:
            raise ConfigError(f"{where}model.kind = {spec.kind!r} needs sequences (n, seq_len, "
                              f"features): data.kind = 'adding', 'copy' or an npz with 3-D 'x'; "
                              f"these inputs are {_shape_text(data.input_shape)}")
        model = RecurrentNet(spec, data)
    if spec.init != "default":
        initialise(model, spec)
    freeze(model, spec.freeze, where)
    return model


def _shape_text(shape: Sequence[int]) -> str:
    return "(n, " + ", ".join(str(s) for s in shape) + ")"


def _check(spec: ModelSpec, data: Dataset, where: str) -> None:
    def bad(key: str, value: object, what: str) -> ConfigError:
        return ConfigError(f"{where}model.{key} = {value!r} {what}")

    if spec.kind not in MODEL_KINDS:
        raise bad("kind", spec.kind, f"is not one of {', '.join(MODEL_KINDS)}")
    if spec.activation not in _ACTIVATIONS:
        raise bad("activation", spec.activation, f"is not one of {', '.join(_ACTIVATIONS)}")
    if spec.init not in INITS:
        raise bad("init", spec.init, f"is not one of {', '.join(INITS)}")
    least = 1 if spec.kind in RECURRENT_KINDS else 0
    if spec.depth < least:
        raise bad("depth", spec.depth, f"must be at least {least} for model.kind = "
                                       f"{spec.kind!r}")
    if spec.width < 1:
        raise bad("width", spec.width, "must be at least 1")
    if not 0.0 <= spec.dropout < 1.0:
        raise bad("dropout", spec.dropout, "must be in [0, 1)")
    if spec.init == "normal" and not spec.init_std >= 0:
        raise bad("init_std", spec.init_std, "must be non-negative")
    if spec.output_softmax and data.num_classes is None:
        raise bad("output_softmax", True, "needs a classification task (this data is a "
                                          "regression)")


def _activation(spec: ModelSpec) -> nn.Module:
    return _ACTIVATIONS[spec.activation]()


class DenseBlock(nn.Module):
    """Linear, optional batchnorm, activation, optional dropout; with ``residual`` and equal
    widths the block's input is added to its output (x + f(x)), which gives the gradient a path
    around the layer."""

    def __init__(self, n_in: int, n_out: int, spec: ModelSpec, residual: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        if spec.batchnorm:
            self.norm = nn.BatchNorm1d(n_out)
        self.act = _activation(spec)
        if spec.dropout > 0:
            self.dropout = nn.Dropout(spec.dropout)
        self.residual = residual and n_in == n_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        if hasattr(self, "norm"):
            out = self.norm(out)
        out = self.act(out)
        if hasattr(self, "dropout"):
            out = self.dropout(out)
        return x + out if self.residual else out


def _classifier_end(model: nn.Module, spec: ModelSpec) -> None:
    if spec.output_softmax:
        model.softmax = nn.Softmax(dim=-1)


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units, then a linear ``head`` (depth 0 is a linear
    model). Image and sequence inputs are flattened first."""

    def __init__(self, spec: ModelSpec, data: Dataset, residual: bool) -> None:
        super().__init__()
        if len(data.input_shape) > 1:
            self.flatten = nn.Flatten()
        n_in = math.prod(data.input_shape)
        blocks = []
        for _ in range(spec.depth):
            blocks.append(DenseBlock(n_in, spec.width, spec, residual))
            n_in = spec.width
        self.hidden = nn.Sequential(*blocks)
        self.head = nn.Linear(n_in, data.n_outputs)
        _classifier_end(self, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "flatten"):
            x = self.flatten(x)
        out = self.head(self.hidden(x))
        return self.softmax(out) if hasattr(self, "softmax") else out


class ConvBlock(nn.Module):
    """3x3 convolution, optional batchnorm, activation, then 2x2 max-pooling while the image is
    at least 2 pixels wide (a deep stack on a small image stops shrinking instead of failing)."""

    def __init__(self, c_in: int, c_out: int, spec: ModelSpec, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        if spec.batchnorm:
            self.norm = nn.BatchNorm2d(c_out)
        self.act = _activation(spec)
        if pool:
            self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if hasattr(self, "norm"):
            out = self.norm(out)
        out = self.act(out)
        return self.pool(out) if hasattr(self, "pool") else out


class ResConvBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions whose output is added to the block's input
    (through a 1x1 convolution, ``skip``, when the channel count changes), then the activation
    and the pooling of :class:`ConvBlock`."""

    def __init__(self, c_in: int, c_out: int, spec: ModelSpec, pool: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        if spec.batchnorm:
            self.norm1 = nn.BatchNorm2d(c_out)
        self.act1 = _activation(spec)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        if spec.batchnorm:
            self.norm2 = nn.BatchNorm2d(c_out)
        if c_in != c_out:
            self.skip = nn.Conv2d(c_in, c_out, 1)
        self.act2 = _activation(spec)
        if pool:
            self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if hasattr(self, "norm1"):
            out = self.norm1(out)
        out = self.conv2(self.act1(out))
        if hasattr(self, "norm2"):
            out = self.norm2(out)
        shortcut = self.skip(x) if hasattr(self, "skip") else x
        out = self.act2(out + shortcut)
        return self.pool(out) if hasattr(self, "pool") else out


class CNN(nn.Module):
    """``depth`` conv blocks (``width`` channels, doubled per block), then a fully connected
    layer as wide as the last block's channels and a linear ``head``."""

    def __init__(self, spec: ModelSpec, data: Dataset, residual: bool) -> None:
        super().__init__()
        channels, height, width = data.input_shape
        block = ResConvBlock if residual else ConvBlock
        blocks = []
        for i in range(spec.depth):
            pool = min(height, width) >= 2
            blocks.append(block(channels, spec.width * 2**i, spec, pool))
            channels = spec.width * 2**i
            if pool:
                height, width = height // 2, width // 2
        self.blocks = nn.Sequential(*blocks)
        self.flatten = nn.Flatten()
        fc_width = spec.width * 2 ** max(spec.depth - 1, 0)
        self.fc = DenseBlock(channels * height * width, fc_width, spec, residual=False)
        self.head = nn.Linear(fc_width, data.n_outputs)
        _classifier_end(self, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.fc(self.flatten(self.blocks(x))))
        return self.softmax(out) if hasattr(self, "softmax") else out


class RecurrentNet(nn.Module):
    """A ``depth``-layer nn.RNN/LSTM/GRU of ``width`` hidden units read by a linear ``head`` at
    the last time step. The plain RNN uses ReLU when ``activation = "relu"`` and tanh otherwise
    (the only two nn.RNN has); LSTM and GRU have their own fixed gate activations. ``dropout``
    acts between stacked layers and before the head; ``batchnorm`` normalises the last step."""

    def __init__(self, spec: ModelSpec, data: Dataset) -> None:
        super().__init__()
        self.kind = spec.kind
        _, features = data.input_shape
        options: dict[str, object] = {}
        if spec.kind == "rnn":
            options["nonlinearity"] = "relu" if spec.activation == "relu" else "tanh"
        layer = _RNN_CLASSES[spec.kind](
            features, spec.width, num_layers=spec.depth, batch_first=True,
            dropout=spec.dropout if spec.depth > 1 else 0.0, **options,
        )
        self.add_module(spec.kind, layer)
        if spec.batchnorm:
            self.norm = nn.BatchNorm1d(spec.width)
        if spec.dropout > 0:
            self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(spec.width, data.n_outputs)
        _classifier_end(self, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = getattr(self, self.kind)(x)
        out = out[:, -1]
        if hasattr(self, "norm"):
            out = self.norm(out)
        if hasattr(self, "dropout"):
            out = self.dropout(out)
        out = self.head(out)
        return self.softmax(out) if hasattr(self, "softmax") else out


# ---- initialisation -----------------------------------------------------------------------------
def initialise(model: nn.Module, spec: ModelSpec) -> None:
    """Apply ``spec.init`` to every Linear/Conv weight and every recurrent weight matrix, and set
    their biases to ``spec.bias_init``. Batchnorm keeps its own (scale 1, shift 0).

    Recurrent weights are initialised gate by gate (an LSTM's weight stacks 4 gate matrices), so
    Xavier's fan-out is a gate's, not four times it. Of a recurrent layer's two biases (input and
    hidden), the input one gets ``bias_init`` and the hidden one 0: their sum is what acts.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                _init_weight(module.weight, spec)
                if module.bias is not None:
                    module.bias.fill_(spec.bias_init)
            elif isinstance(module, nn.RNNBase):
                gates = module.weight_ih_l0.shape[0] // module.hidden_size
                for name, param in module.named_parameters():
                    if name.startswith("weight_"):
                        for chunk in param.chunk(gates, dim=0):
                            _init_weight(chunk, spec)
                    elif name.startswith("bias_ih"):
                        param.fill_(spec.bias_init)
                    elif name.startswith("bias_hh"):
                        param.zero_()


def _init_weight(weight: torch.Tensor, spec: ModelSpec) -> None:
    """One weight matrix (or a view of one gate's rows). fan_in counts a conv's kernel too."""
    fan_in = weight[0].numel()
    fan_out = weight.shape[0] * (weight[0, 0].numel() if weight.dim() > 2 else 1)
    if spec.init == "zeros":
        weight.zero_()
    elif spec.init == "constant":
        weight.fill_(spec.init_value)
    elif spec.init == "normal":
        weight.normal_(0.0, spec.init_std)
    elif spec.init == "xavier":
        gain = nn.init.calculate_gain(_GAIN_NAMES[spec.activation], LEAKY_SLOPE)
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        weight.uniform_(-bound, bound)
    elif spec.init == "he":
        slope = LEAKY_SLOPE if spec.activation == "leaky_relu" else 0.0
        weight.normal_(0.0, math.sqrt(2.0 / ((1 + slope**2) * fan_in)))
    elif spec.init == "lecun":
        weight.normal_(0.0, 1.0 / math.sqrt(fan_in))


# ---- freezing -----------------------------------------------------------------------------------
def freeze(model: nn.Module, prefixes: Sequence[str], where: str = "") -> None:
    """Stop training every parameter under the named modules (``"hidden.0"`` freezes
    ``hidden.0.linear`` and ``hidden.0.norm``). A name that matches no module is a ConfigError
    listing the names there are: a typo must not silently train everything."""
    names = [name for name, module in model.named_modules()
             if name and any(True for _ in module.parameters())]
    for prefix in prefixes:
        hits = [name for name in names if name == prefix or name.startswith(prefix + ".")]
        if not hits:
            raise ConfigError(f"{where}model.freeze: {prefix!r} is not a module with parameters "
                              f"(modules: {', '.join(names)})")
        for name, param in model.named_parameters():
            if name.startswith(prefix + "."):
                param.requires_grad_(False)
