"""The Markdown summary of a check, for ``$GITHUB_STEP_SUMMARY`` (a job's summary page).

A verdict line, the run in one line, a table of the findings (one row each, the failing ones
marked), their evidence and fixes folded in ``<details>``, and the baseline comparison. Text
from the log or the rules is escaped for table cells, so a ``|`` or ``<`` in a layer name or a
message cannot break the layout or open an HTML tag.
"""

from __future__ import annotations

from netdoctor.gate import CheckResult
from netdoctor.report.plain import diagnosis_text
from netdoctor.report.summary import summarize
from netdoctor.report.text import format_number


def render_markdown(result: CheckResult) -> str:
    """The summary as Markdown; ends with a blank line so that appended summaries stay apart."""
    mark = "✅" if result.passed else "❌"
    s = summarize(result.run)
    lines = [
        f"### {mark} netdoctor check {result.summary()}",
        "",
        f"`{_code(s.path)}`: {s.outcome.label}, {s.steps} steps, {s.epochs} epochs, final loss "
        f"{format_number(s.final_loss)}; fails on {result.fail_on.value} and above.",
        "",
    ]
    if result.diagnoses:
        lines += ["| | severity | rule | step | layer | message |",
                  "|---|---|---|---|---|---|"]
        for d in result.diagnoses:
            lines.append(
                f"| {'❌' if result.is_failing(d) else ' '} | {d.severity.value} | `{d.rule}` | "
                f"{'' if d.step is None else d.step} | "
                f"{'' if d.layer is None else '`' + _code(d.layer) + '`'} | {_cell(d.message)} |"
            )
        lines += ["", "<details><summary>Evidence and fixes</summary>", ""]
        for d in result.diagnoses:
            lines += ["```text", diagnosis_text(d).replace("```", "'''"), "```", ""]
        lines += ["</details>", ""]
    else:
        lines += ["No rule fired on this run.", ""]
    if result.baseline is not None:
        b = result.baseline
        lines.append(f"**Baseline** `{_code(b.path)}`")
        lines.append("")
        lines.append(f"- new at or above {result.fail_on.value}: {_ids(b.new_rules)}")
        lines.append(f"- also in the baseline (accepted): {_ids(b.known_rules)}")
        lines.append(f"- gone since the baseline: {_ids(b.resolved_rules)}")
        loss = b.loss.describe() if b.loss is not None else (b.loss_note or "")
        regressed = b.loss is not None and b.loss.regressed
        lines.append(f"- {'❌ ' if regressed else ''}{_cell(loss)}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _ids(ids: tuple[str, ...]) -> str:
    return ", ".join(f"`{i}`" for i in ids) if ids else "none"


def _cell(text: str) -> str:
    """Text safe inside a table cell: one line, no pipes, no HTML."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    """Text safe inside `inline code` within a table cell."""
    return " ".join(text.split()).replace("`", "'").replace("|", "\\|")
