"""The real ``netdoctor inspect LOG`` in a pseudo-terminal: it opens the app, draws the run,
and quits on ``q`` with exit code 0."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

#: CSI sequences, OSC/DCS strings, charset selections and other two-byte escapes.
_ESCAPES = re.compile(r"\x1b\[[0-9;?<>=!]*[ -/]*[@-~]|\x1b[P\]_^][^\x1b\x07]*(?:\x1b\\|\x07)"
                      r"|\x1b[()][A-Za-z0-9]|\x1b.")


def _read(fd: int, deadline: float, done) -> str:  # type: ignore[no-untyped-def]
    raw = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            raw += chunk
        text = _ESCAPES.sub("", raw.decode("utf-8", "replace"))
        if done(text):
            break
    return _ESCAPES.sub("", raw.decode("utf-8", "replace"))


def test_inspect_opens_the_app_in_a_terminal(saved_run, child_env) -> None:  # type: ignore[no-untyped-def]
    log: Path = saved_run("exploding")
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {**child_env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    child = subprocess.Popen(
        [sys.executable, "-m", "netdoctor", "inspect", str(log)],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True,
        start_new_session=True,
    )
    os.close(terminal)
    try:
        wanted = ("exploding", "finished", "Layers", "Gradients per layer", "Diagnoses")
        screen = _read(controller, time.monotonic() + 60, lambda t: all(w in t for w in wanted))
        assert all(w in screen for w in wanted), screen[-2000:]
        os.write(controller, b"q")
        _read(controller, time.monotonic() + 20, lambda t: child.poll() is not None)
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(controller)
