"""The dtype statistics are accumulated in, per device.

Gradient norms and losses are kept in float64 where the device has it: the sum of squares of a
finite float32 gradient overflows once its norm passes ~1.8e19, and a diverging run would read as
non-finite steps before it really is. Apple's MPS has no float64, so there they stay float32.
(Activation statistics stay float32: they only overflow on layers that have already diverged.)
"""

from __future__ import annotations

import torch


def stat_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64
