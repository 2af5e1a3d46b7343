"""netdoctor: a terminal doctor for PyTorch training.

The public names are loaded on first use, so that ``import netdoctor`` stays cheap and never
imports torch or textual: the analysis half (``netdoctor inspect``) must start fast and must work
where torch is not installed. ``netdoctor.watch`` and ``netdoctor.checkup`` are the names that
bring torch in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from netdoctor._version import __version__

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from netdoctor.capture import Monitor, SamplingSchedule, watch
    from netdoctor.capture.checkup import checkup
    from netdoctor.diagnosis import Diagnosis, Fix, Severity

#: public name -> module that defines it
_LAZY = {
    "watch": "netdoctor.capture",
    "checkup": "netdoctor.capture.checkup",
    "Monitor": "netdoctor.capture",
    "SamplingSchedule": "netdoctor.capture",
    "Diagnosis": "netdoctor.diagnosis",
    "Fix": "netdoctor.diagnosis",
    "Severity": "netdoctor.diagnosis",
}

__all__ = [
    "Diagnosis", "Fix", "Monitor", "SamplingSchedule", "Severity", "__version__", "checkup",
    "watch",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netdoctor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
