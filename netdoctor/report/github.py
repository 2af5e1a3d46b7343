"""GitHub Actions annotations for a check: ``::error title=...::message`` workflow commands.

GitHub shows each annotation on the run's summary page and on the pull request, so a failing
health check is visible without opening the log. One annotation per error or warning (infos are
left to the report), at the diagnosis's own severity; a baseline loss regression is an error.
Escaping follows GitHub's toolkit (``@actions/core``): ``%``, CR and LF in the message;
additionally ``:`` and ``,`` in property values such as the title.
"""

from __future__ import annotations

from netdoctor.diagnosis import Severity
from netdoctor.gate import CheckResult
from netdoctor.report.plain import top_fix, where

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning"}


def render_annotations(result: CheckResult) -> str:
    """The workflow commands, one per line (empty when there is nothing to annotate)."""
    lines = []
    for d in result.diagnoses:
        level = _LEVEL.get(d.severity)
        if level is None:
            continue
        place = where(d)
        title = f"netdoctor {d.rule}" + (f" ({place})" if place else "")
        message = d.message
        fix = top_fix(d)
        if fix is not None:
            message += f"\nfix: {fix}"
        if not result.is_failing(d) and result.fail_on.catches(d):
            message += "\n(also in the baseline: not failing this check)"
        lines.append(command(level, message, title=title))
    comparison = result.baseline
    if comparison is not None and comparison.loss is not None and comparison.loss.regressed:
        lines.append(command("error", f"{comparison.loss.describe()}; baseline {comparison.path}",
                             title="netdoctor final loss regression"))
    return "".join(line + "\n" for line in lines)


def command(level: str, message: str, **properties: str) -> str:
    """One workflow command line, e.g. ``::warning title=x::message``."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{level}{' ' + props if props else ''}::{escape_data(message)}"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
