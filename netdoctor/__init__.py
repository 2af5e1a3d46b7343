"""netdoctor: a terminal doctor for PyTorch training.

The public names are loaded on first use, so that ``import netdoctor`` stays cheap and never
imports torch or textual: the analysis half (``netdoctor inspect``) must start fast and must work
where torch is not installed. ``netdoctor.watch`` is the one name that brings torch in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from netdoctor._version import __version__

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from netdoctor.capture import watch
    from netdoctor.diagnosis import Diagnosis, Fix, Severity

#: public name -> module that defines it
_LAZY = {
    "watch": "netdoctor.capture",
    "checkup": "netdoctor.capture",
    "Diagnosis": "netdoctor.diagnosis",
    "Fix": "netdoctor.diagnosis",
    "Severity": "netdoctor.diagnosis",
}

# "checkup" joins __all__ once netdoctor.capture exports it (a star import must not fail).
__all__ = ["Diagnosis", "Fix", "Severity", "__version__", "watch"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netdoctor' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except AttributeError:
        raise AttributeError(f"netdoctor.{name} is not available in this version") from None
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
