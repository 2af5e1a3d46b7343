"""A recipe's sections as frozen dataclasses, and the one place that validates them.

Field names and defaults are the TOML keys (the recipe format is a contract: README, "Recipes").
Everything a recipe can say is checked here, before any data is generated or torch is loaded, so
that a typo costs a one-line error naming the file, the dotted key, the bad value and what is
allowed, never a traceback ten seconds into training. The data and model builders check again
what only they can know (an image model on vector data, a CSV without its target column).

No torch here: ``netdoctor recipes`` lists the built-in recipes by reading them with this module.
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from netdoctor.errors import ConfigError


@dataclass(frozen=True)
class AboutSpec:
    """The ``[recipe]`` section: what the recipe is for (shown by ``netdoctor recipes``)."""

    description: str = ""
    expect: tuple[str, ...] = ()  # rule ids this recipe must produce; () = healthy


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


@dataclass(frozen=True)
class OptimizerSpec:
    """The ``[optimizer]`` section."""

    kind: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass(frozen=True)
class ScheduleSpec:
    """The ``[schedule]`` section: the learning rate over epochs (stepped once per epoch)."""

    kind: str = "none"
    step_size: int = 10
    gamma: float = 0.9
    factor: float = 0.5
    patience: int = 2


@dataclass(frozen=True)
class LossSpec:
    """The ``[loss]`` section."""

    kind: str = "auto"


@dataclass(frozen=True)
class TrainSpec:
    """The ``[train]`` section: the loop itself."""

    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"
    clip_grad_norm: float = 0.0
    clip_grad_value: float = 0.0
    early_stopping: int = 0
    amp: bool = False


#: Section name -> its dataclass, in the order a recipe file lists them.
SECTIONS: dict[str, type] = {
    "recipe": AboutSpec,
    "data": DataSpec,
    "model": ModelSpec,
    "optimizer": OptimizerSpec,
    "schedule": ScheduleSpec,
    "loss": LossSpec,
    "train": TrainSpec,
}
#: Sections a Python recipe builds itself (its ``build()`` returns the model and the data).
BUILT_BY_PYTHON = ("data", "model")

#: The allowed values of every string key that is a choice. The data and model builders keep
#: their own lists; a test checks that both say the same.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.kind": ("spirals", "blobs", "shapes", "adding", "copy", "regression", "npz", "csv"),
    "model.kind": ("mlp", "cnn", "rnn", "lstm", "gru", "resmlp", "rescnn"),
    "model.activation": ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "elu", "identity"),
    "model.init": ("default", "zeros", "constant", "normal", "xavier", "he", "lecun"),
    "optimizer.kind": ("sgd", "adam", "adamw"),
    "schedule.kind": ("none", "step", "exponential", "cosine", "plateau"),
    "loss.kind": ("auto", "cross_entropy", "mse", "manual_log_softmax"),
}

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"

#: Range checks: dotted key -> (what the value must be, test).
_RANGES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "data.samples": ("at least 10", lambda v: v >= 10),
    "data.classes": ("at least 2", lambda v: v >= 2),
    "data.features": ("at least 1", lambda v: v >= 1),
    "data.noise": ("non-negative", lambda v: v >= 0),
    "data.seq_len": ("at least 2", lambda v: v >= 2),
    "data.image_size": ("at least 8", lambda v: v >= 8),
    "data.input_scale": ("non-zero", lambda v: v != 0),
    "data.split": ("three non-negative fractions (train, val, test) summing to 1, train > 0",
                   lambda v: all(f >= 0 for f in v) and v[0] > 0 and abs(sum(v) - 1) <= 1e-6),
    "model.depth": ("non-negative", lambda v: v >= 0),
    "model.width": ("at least 1", lambda v: v >= 1),
    "model.init_std": ("non-negative", lambda v: v >= 0),
    "model.dropout": ("in [0, 1)", lambda v: 0 <= v < 1),
    "optimizer.lr": ("positive", lambda v: v > 0),
    "optimizer.momentum": ("in [0, 1)", lambda v: 0 <= v < 1),
    "optimizer.weight_decay": ("non-negative", lambda v: v >= 0),
    "schedule.step_size": ("at least 1", lambda v: v >= 1),
    "schedule.gamma": ("in (0, 1]", lambda v: 0 < v <= 1),
    "schedule.factor": ("in (0, 1)", lambda v: 0 < v < 1),
    "schedule.patience": ("non-negative", lambda v: v >= 0),
    "train.epochs": ("at least 1", lambda v: v >= 1),
    "train.batch_size": ("at least 1", lambda v: v >= 1),
    "train.seed": ("non-negative", lambda v: v >= 0),
    "train.clip_grad_norm": ("non-negative (0 = off)", lambda v: v >= 0),
    "train.clip_grad_value": ("non-negative (0 = off)", lambda v: v >= 0),
    "train.early_stopping": ("non-negative (0 = off)", lambda v: v >= 0),
}

#: How the user gets a BuiltModel: ``build(seed)`` of a Python recipe, see netdoctor.recipes.loader.
Builder = Callable[[int], Any]


@dataclass(frozen=True)
class Recipe:
    """One validated recipe: where it came from and every section, defaults filled in.

    ``builder`` is set for a Python recipe: its ``build(seed)`` makes the model, the data and
    (optionally) the optimizer, and ``data``/``model`` are None.
    """

    name: str
    source: str  # the file, for error messages and reports
    about: AboutSpec
    data: DataSpec | None
    model: ModelSpec | None
    optimizer: OptimizerSpec
    schedule: ScheduleSpec
    loss: LossSpec
    train: TrainSpec
    builder: Builder | None = field(default=None, compare=False, repr=False)

    @property
    def description(self) -> str:
        return self.about.description

    @property
    def expect(self) -> tuple[str, ...]:
        return self.about.expect

    @property
    def is_python(self) -> bool:
        return self.builder is not None

    def section(self, name: str) -> Any:
        """The spec of section ``name`` (``recipe`` is the ``about`` field)."""
        return getattr(self, _attribute(name))

    def get(self, dotted: str) -> Any:
        """The value of ``section.key``."""
        section, key = _split_key(dotted, self.source)
        spec = self.section(section)
        if spec is None or key not in _field_types(SECTIONS[section]):
            raise ConfigError(f"{self.source}: no key {dotted}")
        return getattr(spec, key)

    def with_values(self, values: Mapping[str, Any], where: str | None = None) -> Recipe:
        """A copy with ``{"section.key": value}`` changed, validated like the file was.
        ``where`` starts the error messages (default: the recipe's file)."""
        where = where or self.source
        sections: dict[str, Any] = {}
        for dotted, value in values.items():
            section, key = _split_key(dotted, where)
            cls = SECTIONS[section]
            if section in BUILT_BY_PYTHON and self.is_python:
                raise ConfigError(f"{where}: {dotted} cannot be set on a Python recipe: its "
                                  "build() makes the data and the model")
            types = _field_types(cls)
            if key not in types:
                raise ConfigError(_unknown(where, f"{section}.{key}", key, list(types)))
            current = sections.get(_attribute(section), self.section(section))
            checked = _check_value(f"{section}.{key}", value, types[key], where)
            sections[_attribute(section)] = replace(current, **{key: checked})
        changed = replace(self, **sections)
        check_recipe(changed, where)
        return changed

    def to_tables(self) -> dict[str, dict[str, Any]]:
        """The sections as TOML tables, with only the keys that differ from the defaults (and
        the required ``kind`` keys), lists for tuples."""
        tables: dict[str, dict[str, Any]] = {}
        for section, cls in SECTIONS.items():
            spec = self.section(section)
            if spec is None:
                continue
            table: dict[str, Any] = {}
            for f in fields(cls):
                value = getattr(spec, f.name)
                if _is_default(f, value) and not (f.name == "kind" and section in ("data",
                                                                                    "model")):
                    continue
                table[f.name] = list(value) if isinstance(value, tuple) else value
            if table:
                tables[section] = table
        return tables

    def to_toml(self, header: str = "") -> str:
        """The recipe as a TOML file (``fix --write``); ``header`` becomes leading comments."""
        if self.is_python:
            raise ConfigError(f"{self.source}: a Python recipe cannot be written as TOML")
        lines = [f"# {line}".rstrip() for line in header.splitlines()]
        for section, table in self.to_tables().items():
            if lines:
                lines.append("")
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        return "\n".join(lines) + "\n"


def recipe_from_tables(
    tables: Mapping[str, Any], name: str, source: str, builder: Builder | None = None
) -> Recipe:
    """Validate parsed TOML tables (or a Python recipe's ``RECIPE`` dict) into a Recipe."""
    if not isinstance(tables, Mapping):
        raise ConfigError(f"{source}: a recipe is a table of sections, got "
                          f"{type(tables).__name__}")
    for section, table in tables.items():
        if section not in SECTIONS:
            raise ConfigError(_unknown(source, f"[{section}]", str(section), list(SECTIONS),
                                       what="section", brackets=True))
        if builder is not None and section in BUILT_BY_PYTHON:
            raise ConfigError(f"{source}: a Python recipe has no [{section}] section: its "
                              "build() makes the data and the model")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table of key = value, got "
                              f"{_show(table)}")
    specs: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        if builder is not None and section in BUILT_BY_PYTHON:
            specs[section] = None
            continue
        table = tables.get(section)
        if table is None and section in ("data", "model"):
            raise ConfigError(f"{source}: missing section [{section}] (it needs at least "
                              f"{section}.kind, one of {', '.join(CHOICES[section + '.kind'])})")
        specs[section] = _build_section(section, cls, table or {}, source)
    about = specs.pop("recipe")
    recipe = Recipe(name=name, source=source, about=about, builder=builder, **specs)
    check_recipe(recipe, source)
    return recipe


def check_recipe(recipe: Recipe, where: str) -> None:
    """Checks that span keys (each key alone was checked already)."""
    opt = recipe.optimizer
    if opt.kind != "sgd" and opt.momentum != 0:
        raise ConfigError(f"{where}: optimizer.momentum = {opt.momentum!r} is for "
                          f"optimizer.kind = 'sgd' only ({opt.kind} has its own betas); "
                          "set it to 0")
    if recipe.model is not None and recipe.model.kind in ("rnn", "lstm", "gru") \
            and recipe.model.depth < 1:
        raise ConfigError(f"{where}: model.depth = {recipe.model.depth} must be at least 1 for "
                          f"model.kind = {recipe.model.kind!r}")
    data = recipe.data
    if data is not None and data.kind in ("npz", "csv") and not data.path:
        raise ConfigError(f"{where}: data.path is needed for data.kind = {data.kind!r} (a file, "
                          "relative to the recipe)")


def parse_override(text: str) -> tuple[str, Any]:
    """``"section.key=value"`` -> (dotted key, value typed by the schema). ConfigError names the
    override: ``--set model.depth=abc: model.depth must be an integer, got 'abc'``."""
    where = f"--set {text}"
    dotted, sep, raw = text.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted:
        raise ConfigError(f"{where}: expected section.key=value, e.g. --set optimizer.lr=0.01")
    section, key = _split_key(dotted, where)
    types = _field_types(SECTIONS[section])
    if key not in types:
        raise ConfigError(_unknown(where, dotted, key, list(types)))
    return dotted, _from_text(dotted, raw.strip(), types[key], where)


def dotted_keys() -> list[str]:
    """Every ``section.key`` a recipe may set."""
    return [f"{s}.{k}" for s, cls in SECTIONS.items() for k in _field_types(cls)]


# ---- internals ---------------------------------------------------------------------------------
def _attribute(section: str) -> str:
    return "about" if section == "recipe" else section


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _is_default(f: Any, value: Any) -> bool:
    if f.default is not MISSING:
        return bool(value == f.default)
    if f.default_factory is not MISSING:
        return bool(value == f.default_factory())
    return False


def _split_key(dotted: str, where: str) -> tuple[str, str]:
    section, sep, key = dotted.partition(".")
    if not sep or not key:
        raise ConfigError(f"{where}: {dotted!r} is not section.key (e.g. model.width); sections: "
                          f"{', '.join(SECTIONS)}")
    if section not in SECTIONS:
        raise ConfigError(_unknown(where, dotted, section, list(SECTIONS), what="section"))
    return section, key


def _unknown(where: str, shown: str, name: str, known: list[str], what: str = "key",
             brackets: bool = False) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = ""
    if close:
        suggestion = f"[{close[0]}]" if brackets else shown.replace(name, close[0], 1)
        hint = f" (did you mean {suggestion}?)"
    return f"{where}: unknown {what} {shown}{hint}; known {what}s: {', '.join(known)}"


def _build_section(section: str, cls: type, table: Mapping[str, Any], source: str) -> Any:
    types = _field_types(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in types:
            raise ConfigError(_unknown(source, f"{section}.{key}", str(key), list(types)))
        values[key] = _check_value(f"{section}.{key}", value, types[key], source)
    for f in fields(cls):
        if f.name not in values and _required(f):
            raise ConfigError(f"{source}: missing key {section}.{f.name}"
                              + _choices_hint(f"{section}.{f.name}"))
    return cls(**values)


def _required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _choices_hint(dotted: str) -> str:
    return f" (one of {', '.join(CHOICES[dotted])})" if dotted in CHOICES else ""


def _show(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


_NOUNS = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        inner = _NOUNS.get(args[0], str(args[0]))
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {inner}"
        return f"a list of {len(args)} {inner}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, str(tp))


def _check_value(dotted: str, value: Any, tp: Any, where: str) -> Any:
    """``value`` converted to ``tp`` (int -> float, list -> tuple) and checked against the
    choices and ranges of ``dotted``; ConfigError otherwise."""
    converted = _convert(value, tp)
    if converted is None:
        raise ConfigError(f"{where}: {dotted} = {_show(value)} must be {_type_name(tp)}")
    if dotted in CHOICES and converted not in CHOICES[dotted]:
        close = difflib.get_close_matches(converted, CHOICES[dotted], n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: {dotted} = {converted!r} is not one of "
                          f"{', '.join(CHOICES[dotted])}{hint}")
    if dotted == "train.device" and not DEVICE_PATTERN.fullmatch(converted):
        raise ConfigError(f"{where}: train.device = {converted!r} is not one of {DEVICE_CHOICES}")
    if dotted == "recipe.expect":
        bad = [v for v in converted if not re.fullmatch(r"[a-z][a-z0-9_]*", v)]
        if bad:
            raise ConfigError(f"{where}: recipe.expect = {_show(converted)}: {bad[0]!r} is not a "
                              "rule id (see `netdoctor rules`)")
    if dotted in _RANGES:
        what, ok = _RANGES[dotted]
        if not ok(converted):
            raise ConfigError(f"{where}: {dotted} = {_show(converted)} must be {what}")
    return converted


def _convert(value: Any, tp: Any) -> Any:
    """``value`` as ``tp``, or None when it is not one."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return None
        args = typing.get_args(tp)
        elem_types = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(elem_types) != len(value):
            return None
        items = [_convert(v, t) for v, t in zip(value, elem_types, strict=True)]
        return None if any(i is None for i in items) else tuple(items)
    if tp is bool:
        return value if isinstance(value, bool) else None
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if math.isfinite(value) else None
    if tp is str:
        return value if isinstance(value, str) else None
    raise TypeError(f"no conversion to {tp}")  # pragma: no cover - a schema field of a new type


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _from_text(dotted: str, raw: str, tp: Any, where: str) -> Any:
    """A ``--set`` value (text) typed by the schema, then checked like a TOML value."""
    value: Any = raw
    origin = typing.get_origin(tp)
    try:
        if origin is tuple:
            value = _list_from_text(raw, where)
            elem = typing.get_args(tp)[0]
            if elem is float:
                value = [float(v) if isinstance(v, str) else v for v in value]
        elif tp is bool:
            lowered = raw.lower()
            if lowered not in _TRUE + _FALSE:
                raise ValueError
            value = lowered in _TRUE
        elif tp is int:
            value = int(raw)
        elif tp is float:
            value = float(raw)
        elif tp is str:
            value = _unquote(raw)
    except ValueError:
        raise ConfigError(f"{where}: {dotted} must be {_type_name(tp)}, got {raw!r}") from None
    return _check_value(dotted, value, tp, where)


def _list_from_text(raw: str, where: str) -> list[Any]:
    """``[a, b]`` (TOML) or ``a,b`` (comma-separated; empty text is the empty list)."""
    if raw.startswith("["):
        from netdoctor.recipes.loader import toml_loads

        try:
            parsed = toml_loads(f"v = {raw}")["v"]
        except ConfigError as exc:
            raise ConfigError(f"{where}: not a TOML list ({exc})") from None
        return list(parsed)
    return [_unquote(part.strip()) for part in raw.split(",") if part.strip()]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")  # pragma: no cover


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'
