"""The JSON report (design.md): ``{"run": {...}, "diagnoses": [...]}``, strict JSON.

``netdoctor check --baseline`` adds a top-level ``"baseline"`` key (``BaselineComparison``'s
``to_json``); ``run`` and ``diagnoses`` are the same with or without it.

Strict means no ``NaN``/``Infinity`` tokens, which many parsers reject: a non-finite number in the
run facts becomes null (a diverged final loss shows up as null here and as a ``nan_loss``
diagnosis below). Diagnosis evidence follows ``Diagnosis.to_json`` ("nan", "inf" as strings).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from netdoctor.diagnosis import Diagnosis
from netdoctor.gate import BaselineComparison
from netdoctor.report.summary import RunSummary, summarize
from netdoctor.runlog import RunData


def report_dict(
    run: RunData, diagnoses: Sequence[Diagnosis], baseline: BaselineComparison | None = None
) -> dict[str, Any]:
    report = {
        "run": run_dict(summarize(run)),
        "diagnoses": [d.to_json() for d in diagnoses],
    }
    if baseline is not None:
        report["baseline"] = baseline.to_json()
    return report


def render_json(
    run: RunData, diagnoses: Sequence[Diagnosis], baseline: BaselineComparison | None = None
) -> str:
    """The report as a JSON document (indented, one trailing newline is the caller's)."""
    return json.dumps(report_dict(run, diagnoses, baseline), indent=2, allow_nan=False)


def run_dict(s: RunSummary) -> dict[str, Any]:
    return {
        "path": s.path,
        "status": s.outcome.value,
        "end_message": s.end_message,
        "steps": s.steps,
        "last_step": s.last_step,
        "epochs": s.epochs,
        "started": None if s.started_at is None else s.started_at.isoformat(timespec="seconds"),
        "ended": None if s.ended_at is None else s.ended_at.isoformat(timespec="seconds"),
        "duration_s": _finite(s.duration_s),
        "device": s.device,
        "model": s.model,
        "n_parameters": s.n_parameters,
        "optimizer": _optimizer(s),
        "final_loss": _finite(s.final_loss),
        "best_val_loss": _finite(s.best_val_loss),
        "best_val_epoch": s.best_val_epoch,
        "netdoctor_version": s.netdoctor_version,
        "torch_version": s.torch_version,
        "python_version": s.python_version,
    }


def _optimizer(s: RunSummary) -> dict[str, Any] | None:
    """Null when nothing is known (``watch(model, None)``: no optimizer, no learning rate)."""
    if s.optimizer is None and s.lr is None and s.final_lr is None:
        return None
    return {"class": s.optimizer, "lr": _finite(s.lr), "final_lr": _finite(s.final_lr)}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None

