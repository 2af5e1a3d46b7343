"""Capture tests train real tiny models; rules are not needed to check what was recorded."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
