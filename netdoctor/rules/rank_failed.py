"""``rank_failed``: a rank of a distributed run crashed, was stopped, or went silent.

When one rank dies the others block in the next collective until it times out or their launcher
kills them, and the error the user sees first is usually the survivors' ("Connection closed by
peer", a NCCL timeout), not the cause. Each rank sends rank 0 how it ended (the exit guard or the
``with`` block closes its monitor with the exception's first line), so the log can name the rank
that failed first and its own message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.rank_facts import event_rank, flush_every, rank_hosts, rank_names
from netdoctor.runlog.run_data import RunData
from netdoctor.runlog.schema import RankField, RunStatus

RULE_ID = "rank_failed"


@dataclass(frozen=True, slots=True)
class _Failure:
    rank: int
    kind: str  # "crashed" | "interrupted" | "silent"
    step: int | None
    message: str | None


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if run.world_size < 2:
        return []
    last0 = _last_step(run)
    failures: list[_Failure] = []
    silent: list[_Failure] = []
    for event in run.events:  # in the order rank 0 heard of them
        rank = event_rank(event)
        if event.kind != "rank" or rank is None:
            continue
        step = event.data.get("last_step")
        step = step if isinstance(step, int) and not isinstance(step, bool) else None
        kind = event.data.get("type")
        status = event.data.get("status")
        text = event.data.get("message")
        text = text if isinstance(text, str) else None
        if kind == "end" and status == RunStatus.CRASHED.value:
            failures.append(_Failure(rank, "crashed", step, text))
        elif (kind == "end" and status == RunStatus.INTERRUPTED.value
              and run.status is RunStatus.FINISHED):
            failures.append(_Failure(rank, "interrupted", step, text))
        elif kind == "silent":
            silent.append(_Failure(rank, "silent", step, None))
    if run.status is RunStatus.FINISHED:
        lag = th["lag_flushes"] * flush_every(run)
        failures += [f for f in silent if last0 is not None and (f.step or -1) < last0 - lag]
        silent = []
    elif run.status is RunStatus.CRASHED:
        failures.append(_Failure(0, "crashed", last0, _text(run.meta.get("end_message"))))
    if not failures:
        return []
    root = failures[0]
    hosts = rank_hosts(run)
    message = _describe(root, hosts)
    if root.kind == "crashed" and root.rank != 0:
        message += " (its traceback is in that rank's output)"
    later = [f for f in failures[1:] if f.rank != root.rank]
    if later:
        message += "; then " + "; ".join(_describe(f, hosts) for f in later[:3])
    if root.rank == 0 and silent:
        heard = ", ".join(f"rank {f.rank} up to step {f.step}" for f in silent[:4])
        message += (
            f". {rank_names(f.rank for f in silent)} sent no end ({heard}): if rank 0's error is "
            "a lost connection or a timeout, one of them died first without an exception "
            "(killed by the out-of-memory killer or a signal): check that host's kernel log"
        )
    evidence: dict[str, Any] = {
        "rank": root.rank,
        "status": root.kind,
        "step": root.step,
        "message": root.message,
        "host": hosts.get(root.rank),
        "rank0_status": run.status.value,
        "rank0_last_step": last0,
        "failures": [{"rank": f.rank, "status": f.kind, "step": f.step, "message": f.message}
                     for f in failures],
        "silent_ranks": [f.rank for f in silent],
    }
    return [Diagnosis(RULE_ID, Severity.ERROR, root.step, None, message, evidence)]


def _describe(failure: _Failure, hosts: dict[int, str]) -> str:
    who = f"rank {failure.rank}" + (f" ({hosts[failure.rank]})" if failure.rank in hosts else "")
    at = "" if failure.step is None else f" at step {failure.step}"
    if failure.kind == "crashed":
        return f"{who} crashed{at}" + (f" with {_short(failure.message)}" if failure.message
                                       else "")
    if failure.kind == "interrupted":
        return f"{who} was interrupted{at} while rank 0 finished"
    heard = "nothing" if failure.step is None else f"nothing after step {failure.step}"
    return (f"{who} stopped reporting (rank 0 heard {heard}) without an error message: it was "
            "killed (out-of-memory killer, a signal) or hung")


def _short(text: str, limit: int = 160) -> str:
    """One error line, cut where it stops helping (gloo's and NCCL's run to hundreds of chars);
    the evidence keeps the whole line."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _last_step(run: RunData) -> int | None:
    rows = run.ranks.get(0)
    if rows is not None and rows.shape[0]:
        return int(rows[-1, RankField.STEP])
    return int(run.step_numbers[-1]) if run.n_steps else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


RULE = Rule(
    id=RULE_ID,
    severity=Severity.ERROR,
    title="A rank of a distributed run crashed or stopped reporting",
    thresholds=(
        Threshold(
            "lag_flushes",
            2.0,
            "in a run that rank 0 finished, how many flushes (flush_every steps each) behind "
            "rank 0's last step a rank that sent no end may be before it counts as having "
            "stopped; closer, it was only slower to close than rank 0 waited",
            "netdoctor",
        ),
    ),
    fixes=(),
    doc=RuleDoc(
        what=(
            "A rank other than 0 that ended with an exception (its message is logged), was "
            "interrupted while rank 0 finished, or stopped sending its statistics long before "
            "rank 0's last step without saying why; or rank 0 itself crashing in a distributed "
            "run. Names the rank that failed first, its host, its step and its message."
        ),
        why=(
            "In a distributed job one rank's failure stops all of them: the others wait in the "
            "next collective until a timeout or their launcher kills them, and the errors they "
            "print (connection closed by peer, a NCCL watchdog timeout) hide the real one. The "
            "first rank to fail, and its own message, is where to look."
        ),
        how_to_fix=(
            "Fix the error of the rank named. A rank that stopped without a message was killed "
            "from outside: look for the out-of-memory killer in its host's kernel log (dmesg) "
            "and lower its memory use (batch size, DataLoader workers). Decorate your main with "
            "torch.distributed.elastic.multiprocessing.errors.record so that torchrun's error "
            "summary shows the failed rank's traceback."
        ),
        example=(
            "rank 1 crashed at step 7 with IndexError: index 10 is out of bounds; then rank 0 "
            "crashed at step 7 with RuntimeError: [gloo] Connection closed by peer"
        ),
    ),
    check=check,
)
