"""Has torch.compile already made a graph for this model? Then hooks added now never run.

Dynamo traces a module's forward hooks into the graph when it compiles, and a graph it made
earlier is reused without looking at hooks registered later (pytorch#117758): the probes of a
``watch()`` called after the first compiled call stay silent, and so do those of a new instance
of the same class (the guards check the class and structure, not the instance). We look in
dynamo's caches for a compiled entry whose guards name the model's class. Best effort: this
reads dynamo's debug API, and any surprise there means "no warning", never a failure.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

from torch import nn


def ran_compiled(model: nn.Module) -> bool:
    """True when dynamo holds compiled code guarded on ``type(model)`` (in this process)."""
    if "torch._dynamo" not in sys.modules:  # nothing was compiled: do not import dynamo here
        return False
    try:
        from torch._dynamo.eval_frame import _debug_get_cache_entry_list

        mark = f"type={type(model)!r}"
        for code in _candidate_codes(model):
            for entry in _debug_get_cache_entry_list(code):
                if mark in str(entry.guard_manager):
                    return True
    except Exception:  # a private API that may change: never let it break watch()
        return False
    return False


def _candidate_codes(model: nn.Module) -> Iterator[types.CodeType]:
    """The frames dynamo compiles for a module: its own ``forward`` (``torch.compile(model)``
    of a user class), the wrapper frame used for ``torch.nn`` classes, and ``Module.__call__``'s
    implementation (``model.compile()``)."""
    from torch._dynamo import external_utils

    forward = getattr(type(model), "forward", None)
    if isinstance(forward, types.FunctionType):
        yield forward.__code__
    wrapper = external_utils.wrap_inline.__code__
    yield from (c for c in wrapper.co_consts if isinstance(c, types.CodeType))
    yield nn.Module._call_impl.__code__
    yield nn.Module._wrapped_call_impl.__code__
