"""Damage real run logs thousands of times; count tracebacks and hangs (issue: 0 and 0).

    python benchmarks/fuzz_logs.py --cases 1000 --seed 0

Each case copies one of ``sample_runs/*.sqlite`` (real ``watch()`` logs), applies one random
damage from ``tests/runlog/damage.py`` (truncation, flipped bits, zeroed page, appended garbage,
dropped table, a rewritten cell of any type, deleted or duplicated rows) and then does what a user
does: read it, run the rules, render the text and JSON reports. A case passes with a report or
with one line of RunLogError; any other exception is a bug, and a case over ``--timeout`` seconds
is a hang.
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.runlog import damage  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    sources = sorted((REPO / "sample_runs").glob("*.sqlite"))
    originals = [p.read_bytes() for p in sources]
    rng = random.Random(args.seed)
    outcomes: collections.Counter[str] = collections.Counter()
    bugs: dict[tuple[str, str], str] = {}
    signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for case in range(args.cases):
            path = Path(tmp) / f"case{case}.sqlite"
            what = damage.random_damage(rng.choice(originals), path, rng)
            signal.setitimer(signal.ITIMER_REAL, args.timeout)
            try:
                outcomes[damage.read_everything(path)] += 1
            except Hang:
                outcomes["hang"] += 1
                bugs.setdefault((what, "hang"), f"case {case}")
            except Exception as exc:
                outcomes["traceback"] += 1
                where = traceback.extract_tb(exc.__traceback__)[-1]
                bugs.setdefault((what, type(exc).__name__),
                                f"case {case}: {where.filename}:{where.lineno}: {exc}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                for extra in ("", "-journal", "-wal", "-shm"):
                    Path(f"{path}{extra}").unlink(missing_ok=True)
    elapsed = time.perf_counter() - start
    print(f"{args.cases} damaged logs in {elapsed:.0f} s: {outcomes['ok']} read, "
          f"{outcomes['error']} refused with one line, {outcomes['traceback']} tracebacks, "
          f"{outcomes['hang']} hangs")
    for (what, kind), detail in sorted(bugs.items()):
        print(f"  {what} -> {kind}: {detail}")
    return 1 if outcomes["traceback"] or outcomes["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
