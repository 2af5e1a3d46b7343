"""The data a recipe trains on: generated toy problems (no download) or the user's .npz/.csv,
split into train/val/test and prepared the way the recipe says.

Every generated problem is chosen because it makes one family of models, and one family of
failures, visible in seconds on a CPU:

- ``spirals``: interleaved arms that no straight line separates (an MLP needs its hidden layers);
- ``blobs``: Gaussian clusters, as easy or as overlapping as ``noise`` makes them;
- ``shapes``: small one-channel images of squares, circles, triangles... (a CNN's problem);
- ``adding``: Hochreiter & Schmidhuber's adding problem (regression over a long sequence: the
  gradient has to cross ``seq_len`` steps, where a plain RNN's vanishes or explodes);
- ``copy``: remember a few symbols across a delay and recall one (memory, for LSTM/GRU);
- ``regression``: a linear plus a nonlinear function of the inputs, with noise.

``noise`` jitters spirals' angles, sets the blobs' spread, adds pixel noise to shapes and label
noise to regression; the sequence tasks are noise-free (their difficulty is ``seq_len``).

Everything is drawn from one ``torch.Generator`` seeded by the recipe, so a seed gives the same
data on every machine. Normalisation uses the training split's statistics only: using the whole
set would leak the validation and test sets into training.
"""

from __future__ import annotations

import csv
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from netdoctor.errors import ConfigError
from netdoctor.recipes.spec import DataSpec

GENERATED_KINDS = ("spirals", "blobs", "shapes", "adding", "copy", "regression")
USER_KINDS = ("npz", "csv")

#: The shapes drawn by ``kind = "shapes"``, in class order: ``classes = 4`` uses the first four.
SHAPE_NAMES = ("square", "circle", "triangle", "cross", "diamond", "ring", "x", "frame")

#: A .csv target whose values are all integers and take at most this many distinct values is a
#: class label; any other target is regressed. (An integer target with more values, such as an
#: age or a count, is far more often a quantity than a category.)
MAX_INFERRED_CLASSES = 20

#: Symbols the copy task asks the model to remember before the delay.
COPY_SYMBOLS = 3


@dataclass(frozen=True)
class Split:
    """One split, on the CPU. ``x`` is float32 (n, features) | (n, C, H, W) | (n, seq_len,
    features); ``y`` is int64 class indices (n,) or float32 targets (n, k)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Dataset:
    """The three splits and what a model builder needs to know about them."""

    train: Split
    val: Split
    test: Split
    input_shape: tuple[int, ...]  # one sample: (2,), (1, 16, 16), (30, 2)
    num_classes: int | None  # None for regression
    n_outputs: int  # classes, or the target's dimension
    sequence: bool  # inputs are (n, seq_len, features)


@dataclass(frozen=True)
class _Samples:
    """All samples, before the split."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int | None


def make_dataset(spec: DataSpec, seed: int, source: str) -> Dataset:
    """Build (or load), scale, split and normalise the recipe's data.

    ``source`` is the recipe's path, which starts every error message: the user must know which
    file to open. The same ``spec`` and ``seed`` always give the same tensors.
    """
    fractions = check_split(spec.split, source)
    generator = torch.Generator().manual_seed(seed)
    if spec.kind in GENERATED_KINDS:
        _check_generated(spec, source)
        samples = _GENERATORS[spec.kind](spec, generator)
    elif spec.kind in USER_KINDS:
        samples = _load_user_data(spec, source)
    else:
        raise ConfigError(f"{source}: data.kind = {spec.kind!r} is not one of "
                          f"{', '.join(GENERATED_KINDS + USER_KINDS)}")
    x = samples.x
    if spec.input_scale != 1.0 or spec.input_offset != 0.0:
        x = x * spec.input_scale + spec.input_offset
    train_idx, val_idx, test_idx = _split_indices(len(x), fractions, generator)
    if spec.normalize:
        x = _standardise(x, x[train_idx])
    y = samples.y
    sequence = x.dim() == 3
    return Dataset(
        train=Split(x[train_idx], y[train_idx]),
        val=Split(x[val_idx], y[val_idx]),
        test=Split(x[test_idx], y[test_idx]),
        input_shape=tuple(x.shape[1:]),
        num_classes=samples.num_classes,
        n_outputs=samples.num_classes if samples.num_classes is not None else int(y.shape[1]),
        sequence=sequence,
    )


def check_split(split: Sequence[float], source: str) -> tuple[float, float, float]:
    """``split`` as (train, val, test) fractions, or a ConfigError: three non-negative numbers
    that sum to 1, with something to train on."""
    problem = (f"{source}: data.split = {list(split) if isinstance(split, Sequence) else split!r} "
               "must be three non-negative fractions (train, val, test) summing to 1, train > 0")
    if isinstance(split, str | bytes) or not isinstance(split, Sequence) or len(split) != 3:
        raise ConfigError(problem)
    if not all(isinstance(f, int | float) and not isinstance(f, bool) for f in split):
        raise ConfigError(problem)
    train, val, test = (float(f) for f in split)
    if not all(math.isfinite(f) and f >= 0 for f in (train, val, test)):
        raise ConfigError(problem)
    if train <= 0 or abs(train + val + test - 1.0) > 1e-6:
        raise ConfigError(problem)
    return train, val, test


def augment_batch(x: torch.Tensor, spec: DataSpec, generator: torch.Generator) -> torch.Tensor:
    """A randomly perturbed copy of a training batch (never applied to val/test).

    Images get a random horizontal flip and a shift of up to 1/8 of their size (zero padded:
    wrapping around would move a shape's half to the other edge); vectors and sequences get
    Gaussian noise of 5 % of each feature's spread in the batch, so the perturbation is small
    whatever the input scale. The random draws come from ``generator`` (a CPU generator, so one
    seed gives the same augmentations on any device).
    """
    if not spec.augment or x.shape[0] == 0:
        return x
    if x.dim() == 4:
        return _augment_images(x, generator)
    reduce = tuple(range(x.dim() - 1))
    spread = x.detach().float().std(dim=reduce, keepdim=True) if x.shape[0] > 1 else None
    if spread is None:
        return x
    noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
    return x + 0.05 * spread.to(x.dtype) * noise


def _augment_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, height, width = x.shape
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    out = torch.where(flip[:, None, None, None], x.flip(-1), x)
    max_shift = max(1, min(height, width) // 8)
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).tolist()
    padded = torch.nn.functional.pad(out, (max_shift,) * 4)
    rows = [padded[i, :, max_shift + dy: max_shift + dy + height,
                   max_shift + dx: max_shift + dx + width] for i, (dy, dx) in enumerate(shifts)]
    return torch.stack(rows)


# ---- the split and the normalisation ------------------------------------------------------------
def _split_indices(
    n: int, fractions: tuple[float, float, float], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shuffled indices of the three splits. Val and test sizes are rounded down and train
    takes the rest, so a positive train fraction always gets at least one sample and a zero
    fraction gives an empty split."""
    n_val = math.floor(n * fractions[1] + 1e-9)
    n_test = math.floor(n * fractions[2] + 1e-9)
    n_train = n - n_val - n_test
    order = torch.randperm(n, generator=generator)
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


def _standardise(x: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit spread per feature (per channel for images) with the train split's
    statistics. A constant feature keeps its spread of 1 rather than being divided by 0."""
    if x.dim() == 4:
        dims: tuple[int, ...] = (0, 2, 3)
    else:
        dims = tuple(range(x.dim() - 1))
    mean = train.double().mean(dim=dims, keepdim=True)
    std = train.double().std(dim=dims, keepdim=True, correction=0)
    std = torch.where(std > 1e-12 * (1 + mean.abs()), std, torch.ones_like(std))
    return ((x.double() - mean) / std).float()


# ---- generated problems -------------------------------------------------------------------------
def _check_generated(spec: DataSpec, source: str) -> None:
    def need(ok: bool, key: str, value: object, what: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: data.{key} = {value!r} {what} for data.kind = "
                              f"{spec.kind!r}")

    need(spec.samples >= 3, "samples", spec.samples, "must be at least 3")
    need(math.isfinite(spec.noise) and spec.noise >= 0, "noise", spec.noise,
         "must be a non-negative number")
    if spec.kind in ("spirals", "blobs", "shapes", "copy"):
        need(spec.classes >= 2, "classes", spec.classes, "must be at least 2")
    if spec.kind == "shapes":
        need(spec.classes <= len(SHAPE_NAMES), "classes", spec.classes,
             f"must be at most {len(SHAPE_NAMES)} ({', '.join(SHAPE_NAMES)})")
        need(spec.image_size >= 8, "image_size", spec.image_size, "must be at least 8")
    if spec.kind in ("blobs", "regression"):
        need(spec.features >= 1, "features", spec.features, "must be at least 1")
    if spec.kind == "adding":
        need(spec.seq_len >= 2, "seq_len", spec.seq_len, "must be at least 2")
    if spec.kind == "copy":
        need(spec.seq_len >= COPY_SYMBOLS + 1, "seq_len", spec.seq_len,
             f"must be at least {COPY_SYMBOLS + 1} ({COPY_SYMBOLS} symbols and a query)")


def spiral_arms(
    counts: Sequence[int], noise: float, generator: torch.Generator, turns: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved 2-D spirals (cs231n's classic), ``counts[c]`` points on arm c, each arm rotated
    by 2π/C: no straight line separates them, so a linear model stays at chance while a small MLP
    gets nearly all right. ``noise`` jitters the angle. Points come out grouped by class."""
    classes = len(counts)
    xs, ys = [], []
    for c, per in enumerate(counts):
        r = torch.linspace(0.05, 1.0, per)
        t = (torch.linspace(0.0, turns * 2 * math.pi, per) + c * 2 * math.pi / classes
             + torch.randn(per, generator=generator) * noise)
        xs.append(torch.stack([r * torch.sin(t), r * torch.cos(t)], dim=1))
        ys.append(torch.full((per,), c, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys)


def spirals(
    n: int, classes: int = 3, noise: float = 0.2, seed: int = 0, turns: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n // classes`` points per arm of :func:`spiral_arms`, shuffled (the demos' data)."""
    g = torch.Generator().manual_seed(seed)
    x, y = spiral_arms([n // classes] * classes, noise, g, turns)
    order = torch.randperm(len(x), generator=g)
    return x[order], y[order]


def _balanced_counts(n: int, classes: int) -> list[int]:
    return [n // classes + (c < n % classes) for c in range(classes)]


def _make_spirals(spec: DataSpec, g: torch.Generator) -> _Samples:
    x, y = spiral_arms(_balanced_counts(spec.samples, spec.classes), spec.noise, g)
    return _Samples(x, y, spec.classes)


def _make_blobs(spec: DataSpec, g: torch.Generator) -> _Samples:
    """Centres uniform in [-1, 1]^features; ``noise`` is each cluster's standard deviation, so
    0.1 gives separate clusters and 0.5 overlapping ones."""
    centres = torch.rand(spec.classes, spec.features, generator=g) * 2 - 1
    y = torch.arange(spec.samples) % spec.classes
    x = centres[y] + spec.noise * torch.randn(spec.samples, spec.features, generator=g)
    return _Samples(x, y, spec.classes)


def _make_regression(spec: DataSpec, g: torch.Generator) -> _Samples:
    """y = x·w + sin(2 x·v) + noise·ε with x ~ N(0, I): a linear model explains about two thirds
    of the variance, a network can explain all but the noise."""
    f = spec.features
    x = torch.randn(spec.samples, f, generator=g)
    w = torch.randn(f, generator=g) / math.sqrt(f)
    v = torch.randn(f, generator=g) / math.sqrt(f)
    y = x @ w + torch.sin(2 * (x @ v)) + spec.noise * torch.randn(spec.samples, generator=g)
    return _Samples(x, y[:, None], None)


def _make_adding(spec: DataSpec, g: torch.Generator) -> _Samples:
    """The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015): channel 0 holds
    uniform values in [0, 1], channel 1 marks two positions, one in each half of the sequence;
    the target is the sum of the two marked values. Predicting the mean (1.0) gives an MSE of
    1/6, the bar a model must clearly beat; the first mark is up to ``seq_len`` steps back."""
    n, steps = spec.samples, spec.seq_len
    values = torch.rand(n, steps, generator=g)
    half = steps // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, steps, (n,), generator=g)
    marks = torch.zeros(n, steps)
    rows = torch.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return _Samples(torch.stack([values, marks], dim=2), y[:, None], None)


def _make_copy(spec: DataSpec, g: torch.Generator) -> _Samples:
    """Remember ``COPY_SYMBOLS`` symbols, wait, then recall the one asked for.

    The classic copy task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016) replays the whole
    sequence after the delay, which needs a sequence output. Here the model sees the symbols
    (one-hot over ``classes``) at the first steps, blanks during the delay, and at the last step
    a query (one-hot over the positions) saying which symbol to reproduce; the target is that
    symbol's class. So the final state must hold every symbol across ``seq_len`` steps, a plain
    cross-entropy trains it, and chance is 1/classes. Inputs have ``classes + COPY_SYMBOLS``
    features: symbol channels, then query channels.
    """
    n, steps, k, m = spec.samples, spec.seq_len, spec.classes, COPY_SYMBOLS
    symbols = torch.randint(0, k, (n, m), generator=g)
    query = torch.randint(0, m, (n,), generator=g)
    x = torch.zeros(n, steps, k + m)
    rows = torch.arange(n)
    for position in range(m):
        x[rows, position, symbols[:, position]] = 1.0
    x[rows, steps - 1, k + query] = 1.0
    return _Samples(x, symbols[rows, query], k)


def _shape_masks(dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> list[torch.Tensor]:
    """Boolean masks of every shape in :data:`SHAPE_NAMES` (same order), for pixel offsets
    ``dx``/``dy`` from each image's centre and radius ``r`` (y grows downwards)."""
    ax, ay = dx.abs(), dy.abs()
    bar = torch.clamp(r / 3, min=0.75)
    inside = torch.maximum(ax, ay) <= r
    dist = torch.sqrt(dx * dx + dy * dy)
    return [
        inside,                                                       # square
        dist <= r,                                                    # circle
        (dy <= r) & (ax <= (dy + r) / 2),                             # triangle, apex up
        ((ax <= bar) & (ay <= r)) | ((ay <= bar) & (ax <= r)),        # cross
        ax + ay <= r,                                                 # diamond
        (dist <= r) & (dist >= 0.55 * r),                             # ring
        inside & (((dx - dy).abs() <= bar) | ((dx + dy).abs() <= bar)),  # x
        inside & (torch.maximum(ax, ay) >= 0.55 * r),                 # frame
    ]


def _make_shapes(spec: DataSpec, g: torch.Generator) -> _Samples:
    """One-channel ``image_size``² images, one shape each at a random position, size (radius 18
    to 35 % of the image) and brightness (0.6 to 1), plus Gaussian pixel noise of ``noise``."""
    n, size = spec.samples, spec.image_size
    y = torch.arange(n) % spec.classes
    r = (0.18 + 0.17 * torch.rand(n, generator=g)) * size
    room = (size - 1) - 2 * r
    cx = r + room * torch.rand(n, generator=g)
    cy = r + room * torch.rand(n, generator=g)
    coords = torch.arange(size, dtype=torch.float32)
    dx = coords[None, None, :] - cx[:, None, None]
    dy = coords[None, :, None] - cy[:, None, None]
    radius = r[:, None, None]
    images = torch.zeros(n, size, size)
    for c in range(spec.classes):
        mine = y == c
        mask = _shape_masks(dx[mine], dy[mine], radius[mine])[c]
        images[mine] = mask.float()
    brightness = 0.6 + 0.4 * torch.rand(n, 1, 1, generator=g)
    images = images * brightness + spec.noise * torch.randn(n, size, size, generator=g)
    return _Samples(images[:, None], y, spec.classes)


_GENERATORS: dict[str, Callable[[DataSpec, torch.Generator], _Samples]] = {
    "spirals": _make_spirals,
    "blobs": _make_blobs,
    "shapes": _make_shapes,
    "adding": _make_adding,
    "copy": _make_copy,
    "regression": _make_regression,
}


# ---- the user's data ----------------------------------------------------------------------------
def _resolve(spec: DataSpec, source: str) -> Path:
    """``data.path``: absolute, or relative to the recipe's folder (where a recipe's author
    keeps its data), else to the current folder (where ``--set data.path=...`` was typed)."""
    if not spec.path:
        raise ConfigError(f"{source}: data.path is required for data.kind = {spec.kind!r}")
    path = Path(spec.path).expanduser()
    candidates = [path] if path.is_absolute() else [Path(source).parent / path, path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{source}: data.path = {spec.path!r}: no such file")


def _load_user_data(spec: DataSpec, source: str) -> _Samples:
    path = _resolve(spec, source)
    where = f"{source}: data.path = {spec.path!r}"
    samples = _load_npz(path, where) if spec.kind == "npz" else _load_csv(path, spec, where)
    if len(samples.x) < 3:
        raise ConfigError(f"{where}: {len(samples.x)} samples; at least 3 are needed to split")
    return samples


def _load_npz(path: Path, where: str) -> _Samples:
    """Arrays ``x`` (n, features) | (n, seq_len, features) | (n, C, H, W) and ``y``: an integer
    or boolean ``y`` of shape (n,) holds class labels, a float one regression targets."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in ("x", "y") if name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(f"{where}: not a readable .npz file ({exc})") from None
    for name in ("x", "y"):
        if name not in arrays:
            raise ConfigError(f"{where}: array {name!r} missing")
    x, y = arrays["x"], arrays["y"]
    for name, array in (("x", x), ("y", y)):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise ConfigError(f"{where}: array {name!r} has dtype {array.dtype}, not numbers")
    if x.ndim not in (2, 3, 4):
        raise ConfigError(f"{where}: array 'x' has shape {x.shape}; expected (n, features), "
                          "(n, seq_len, features) or (n, channels, height, width)")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise ConfigError(f"{where}: array 'y' has shape {y.shape}; expected ({len(x)},) or "
                          f"({len(x)}, k) to match 'x' {x.shape}")
    _check_finite(x, "x", where)
    classes = y.ndim == 1 and (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_)
    if classes:
        labels, num_classes = _class_indices(y, where)
        return _Samples(torch.from_numpy(x.astype(np.float32)), labels, num_classes)
    _check_finite(y, "y", where)
    target = y.astype(np.float32).reshape(len(y), -1)
    return _Samples(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(target), None)


def _check_finite(array: np.ndarray, name: str, where: str) -> None:
    bad = ~np.isfinite(array.astype(np.float64, copy=False))
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = array[index]
        raise ConfigError(f"{where}: {name}[{', '.join(map(str, index))}] is {value} (row "
                          f"{index[0]}): remove or fill non-finite values")


def _class_indices(values: np.ndarray, where: str) -> tuple[torch.Tensor, int]:
    """Labels as 0..K-1, in the sorted order of the distinct values (labels 1..3 become 0..2)."""
    distinct, labels = np.unique(values, return_inverse=True)
    if len(distinct) < 2:
        raise ConfigError(f"{where}: the target has a single value ({distinct[0]}): nothing to "
                          "learn")
    return torch.from_numpy(labels.reshape(-1).astype(np.int64)), len(distinct)


def _load_csv(path: Path, spec: DataSpec, where: str) -> _Samples:
    """A header row, then numeric rows; ``data.target`` names the target column and every other
    column is a feature. An integer target with few values is a class label (see
    :data:`MAX_INFERRED_CLASSES`), any other is regressed."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{where}: not a readable .csv file ({exc})") from None
    rows_with_lines = [(line, row) for line, row in enumerate(rows, start=1)
                       if any(cell.strip() for cell in row)]
    if not rows_with_lines:
        raise ConfigError(f"{where}: the file is empty")
    header = [name.strip() for name in rows_with_lines[0][1]]
    if spec.target not in header:
        raise ConfigError(f"{where}: data.target = {spec.target!r} is not a column (columns: "
                          f"{', '.join(header)})")
    if len(header) < 2:
        raise ConfigError(f"{where}: no feature column besides the target {spec.target!r}")
    values = np.empty((len(rows_with_lines) - 1, len(header)), dtype=np.float64)
    for i, (line, row) in enumerate(rows_with_lines[1:]):
        if len(row) != len(header):
            raise ConfigError(f"{where}: line {line} has {len(row)} values, the header has "
                              f"{len(header)}")
        for j, cell in enumerate(row):
            values[i, j] = _number(cell, line, header[j], where)
    column = header.index(spec.target)
    target = values[:, column]
    x = torch.from_numpy(np.delete(values, column, axis=1).astype(np.float32))
    distinct = np.unique(target)
    if np.all(target == np.round(target)) and len(distinct) <= MAX_INFERRED_CLASSES:
        labels, num_classes = _class_indices(target, where)
        return _Samples(x, labels, num_classes)
    return _Samples(x, torch.from_numpy(target.astype(np.float32)[:, None]), None)


def _number(cell: str, line: int, column: str, where: str) -> float:
    text = cell.strip()
    if not text:
        raise ConfigError(f"{where}: line {line}, column {column!r} is empty")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: line {line}, column {column!r}: {text!r} is not a "
                          "number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: line {line}, column {column!r} is {text}: remove or fill "
                          "non-finite values")
    return value
