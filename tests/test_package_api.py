"""`import netdoctor`: the version and the lazily loaded public names."""

from __future__ import annotations

import pytest

import netdoctor
from netdoctor._version import __version__


def test_version() -> None:
    assert netdoctor.__version__ == __version__


def test_records_are_public() -> None:
    from netdoctor.diagnosis import Diagnosis, Fix, Severity

    assert netdoctor.Diagnosis is Diagnosis
    assert netdoctor.Fix is Fix
    assert netdoctor.Severity is Severity


def test_watch_comes_from_capture() -> None:
    pytest.importorskip("torch")
    from netdoctor.capture import watch

    assert netdoctor.watch is watch


def test_unknown_name() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        netdoctor.nope  # noqa: B018


def test_dir_lists_the_public_names() -> None:
    assert {"watch", "Diagnosis", "Fix", "Severity", "__version__"} <= set(dir(netdoctor))
