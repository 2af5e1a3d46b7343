"""What the training loop iterates: a recipe's splits as tensors on the device, or the batches
of a Python recipe's own data (tensors, or any iterable of (x, y) such as a DataLoader).

The recipe's data are small enough to live on the device whole: batching is then indexing, with
no loader processes, and shuffling draws from the run's own generator (one seed, one order).
A user's loader is used as it is, its own shuffling included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from netdoctor.errors import ConfigError, TrainingError
from netdoctor.recipes.spec import DataSpec, Recipe


@dataclass
class Batches:
    """One split the loop iterates: tensors on the device (batched and shuffled here), or the
    user's iterable of (x, y) batches (used as it is)."""

    name: str
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    loader: Iterable[Any] | None = None

    @property
    def samples(self) -> int | None:
        return int(self.x.shape[0]) if self.x is not None else None

    def n_batches(self, batch_size: int) -> int | None:
        if self.x is not None:
            n = int(self.x.shape[0])
            full, rest = divmod(n, batch_size)
            return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)
        try:
            return len(self.loader)  # type: ignore[arg-type]
        except TypeError:
            return None

    def batches(self, batch_size: int, device: torch.device, where: str,
                generator: torch.Generator | None = None) -> Iterator[tuple[Any, torch.Tensor]]:
        if self.x is not None and self.y is not None:
            n = int(self.x.shape[0])
            order = torch.randperm(n, generator=generator).to(self.x.device) \
                if generator is not None else None
            for start in range(0, n, batch_size):
                if generator is not None and n - start == 1 and n > 1:
                    break  # a lone last sample: batchnorm cannot train on a batch of one
                if order is None:
                    yield self.x[start:start + batch_size], self.y[start:start + batch_size]
                else:
                    index = order[start:start + batch_size]
                    yield self.x[index], self.y[index]
            return
        for batch in self.loader or ():
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise TrainingError(f"{where}: each batch of the {self.name} data must be "
                                    f"(x, y), got {type(batch).__name__}")
            x, y = batch
            yield _to_device(x, device), _to_device(y, device)


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, Mapping):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


@dataclass
class TrainingData:
    train: Batches
    val: Batches | None
    test: Batches | None
    classification: bool | None  # None: not known before the first batch (a loader)
    num_classes: int | None
    chance_loss: float | None
    augment: DataSpec | None  # the [data] section when augmentation is on


def recipe_data(recipe: Recipe, device: torch.device) -> tuple[Any, TrainingData]:
    """The recipe's Dataset (what the model builder reads) and its splits on the device."""
    from netdoctor.recipes.data import make_dataset

    assert recipe.data is not None
    dataset = make_dataset(recipe.data, recipe.train.seed, recipe.source)
    return dataset, from_dataset(dataset, device, recipe.data if recipe.data.augment else None)


def from_dataset(dataset: Any, device: torch.device, augment: DataSpec | None) -> TrainingData:
    def split(name: str) -> Batches | None:
        part = getattr(dataset, name)
        if len(part.x) == 0:
            return None
        return Batches(name, part.x.to(device), part.y.to(device))

    train = split("train")
    assert train is not None, "make_dataset never returns an empty training split"
    classification = dataset.num_classes is not None
    return TrainingData(train, split("val"), split("test"), classification, dataset.num_classes,
                 None if classification else _target_variance(dataset.train.y), augment)


def _target_variance(y: torch.Tensor) -> float | None:
    """The MSE of always predicting the mean: the chance level of a regression."""
    if y.shape[0] < 2:
        return None
    return float(y.double().reshape(y.shape[0], -1).var(dim=0, unbiased=False).mean())


def user_data(data: Any, device: torch.device, where: str) -> TrainingData:
    """A Python recipe's data (see netdoctor.recipes.loader for the forms it may take)."""
    from netdoctor.recipes.data import Dataset

    if isinstance(data, Dataset):
        return from_dataset(data, device, None)
    parts: dict[str, Any]
    if isinstance(data, Mapping):
        unknown = set(data) - {"train", "val", "test"}
        if unknown or "train" not in data:
            raise ConfigError(f"{where}: build() data as a dict needs 'train' and may have "
                              f"'val' and 'test'; got keys {sorted(map(str, data))}")
        parts = dict(data)
    elif _is_pair(data):
        parts = {"train": data}
    elif isinstance(data, (tuple, list)) and len(data) in (2, 3):
        parts = dict(zip(("train", "val", "test")[:len(data)], data, strict=True))
    else:
        raise ConfigError(f"{where}: build() returned data of type {type(data).__name__}; "
                          "expected a Dataset, {'train': ..., 'val': ..., 'test': ...}, "
                          "(train, val[, test]), or one (x, y) pair")
    splits = {name: _user_split(name, part, device, where)
              for name, part in parts.items() if part is not None}
    train = splits["train"]
    classification = num_classes = chance = None
    if train.y is not None:
        classification = not (train.y.is_floating_point() or train.y.is_complex())
        if classification:
            num_classes = int(train.y.max()) + 1 if train.y.numel() else None
        else:
            chance = _target_variance(train.y)
    return TrainingData(train, splits.get("val"), splits.get("test"), classification, num_classes,
                 chance, None)


def _is_pair(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, torch.Tensor) for v in value))


def _user_split(name: str, part: Any, device: torch.device, where: str) -> Batches:
    if _is_pair(part):
        x, y = part
        if x.shape[0] != y.shape[0]:
            raise ConfigError(f"{where}: the {name} split has {x.shape[0]} inputs and "
                              f"{y.shape[0]} targets")
        if x.shape[0] == 0:
            raise ConfigError(f"{where}: the {name} split is empty")
        return Batches(name, x.to(device), y.to(device))
    if isinstance(part, Iterable) and not isinstance(part, (str, bytes, torch.Tensor)):
        return Batches(name, loader=part)
    raise ConfigError(f"{where}: the {name} split must be an (x, y) pair of tensors or an "
                      f"iterable of (x, y) batches (a DataLoader); got {type(part).__name__}")
