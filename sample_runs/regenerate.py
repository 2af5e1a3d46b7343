"""Re-record the sample run logs from the built-in demos: ``python sample_runs/regenerate.py``.

Each log is what ``netdoctor demo NAME`` writes; ``netdoctor inspect sample_runs/NAME.sqlite``
opens it without torch. Re-record after a change to what the capture side writes, and keep the
old ones readable (tests/test_sample_runs.py reads them).
"""

from __future__ import annotations

from pathlib import Path

from netdoctor.capture.demos import DEMOS, run_demo


def main() -> None:
    here = Path(__file__).resolve().parent
    for name in DEMOS:
        run_demo(name, here / f"{name}.sqlite")
        print(f"wrote {here / f'{name}.sqlite'}")


if __name__ == "__main__":
    main()
