"""A diagnosis as plain lines of text, for the places that cannot show rich renderables.

JUnit failure bodies, GitHub annotations, the Markdown summary and ``assert_healthy``'s
AssertionError all describe a diagnosis the same way, so that a finding reads alike in a test
UI, a CI log and a pytest failure. Numbers are formatted as in the rich report.
"""

from __future__ import annotations

from netdoctor.diagnosis import Diagnosis
from netdoctor.report.text import format_value


def where(d: Diagnosis) -> str:
    """``step 3, layer 0`` (the parts that are known), or an empty string."""
    parts = []
    if d.step is not None:
        parts.append(f"step {d.step}")
    if d.layer is not None:
        parts.append(f"layer {d.layer}")
    return ", ".join(parts)


def headline(d: Diagnosis) -> str:
    """``error exploding_gradients at step 3, layer 0``."""
    place = where(d)
    return f"{d.severity.value} {d.rule}" + (f" at {place}" if place else "")


def top_fix(d: Diagnosis) -> str | None:
    """``grad_clipping: clip the total gradient norm ...``, the most promising fix."""
    return f"{d.fixes[0].id}: {d.fixes[0].text}" if d.fixes else None


def diagnosis_text(d: Diagnosis) -> str:
    """Headline, message, evidence (``key: value``) and ranked fixes, one item per line."""
    lines = [headline(d), d.message]
    if d.evidence:
        lines.append("evidence:")
        lines += [f"  {key}: {format_value(value)}" for key, value in d.evidence.items()]
    if d.fixes:
        lines.append("fixes:")
        lines += [f"  {rank}. {fix.id}: {fix.text}" for rank, fix in enumerate(d.fixes, 1)]
    return "\n".join(lines)
