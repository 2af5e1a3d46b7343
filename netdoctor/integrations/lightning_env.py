"""``NETDOCTOR_LOG=path``: a Lightning run gets a ``NetdoctorCallback`` with no code change.

Lightning calls the ``lightning.pytorch.callbacks_factory`` (and ``pytorch_lightning.
callbacks_factory``) entry points, declared in netdoctor's ``pyproject.toml``, each time a
Trainer is built. This module stays tiny on purpose: without the variable it imports nothing,
so having netdoctor installed costs other Lightning users nothing. A callback the user passed
in ``callbacks=`` takes precedence (the one made here then stays idle).
"""

from __future__ import annotations

import os
from typing import Any

ENV_VAR = "NETDOCTOR_LOG"


def callbacks_from_env() -> list[Any]:
    log = os.environ.get(ENV_VAR, "").strip()
    if not log:
        return []
    from netdoctor.integrations.lightning import NetdoctorCallback

    callback = NetdoctorCallback(log=log)
    callback.from_env = True
    return [callback]
