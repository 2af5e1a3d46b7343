"""``netdoctor rules [ID]``: what each rule detects, its thresholds and its fixes."""

from __future__ import annotations

from typing import Annotated

import typer

from netdoctor.cli.console import print_report
from netdoctor.cli.errors import fail, user_errors


@user_errors
def rules_command(
    rule_id: Annotated[
        str | None,
        typer.Argument(metavar="ID", help="Explain this rule.", show_default=False),
    ] = None,
    explain: Annotated[
        str | None,
        typer.Option("--explain", metavar="ID", help="Explain this rule (same as ID).",
                     show_default=False),
    ] = None,
) -> None:
    """List the rules, or explain one.

    The list shows each rule's severity, title and thresholds. With an ID: what the rule
    detects, why it matters, how to fix it, an example, its thresholds and its fixes.
    """
    from netdoctor.report.rule_docs import rule_explanation, rules_list
    from netdoctor.rules import all_rules, checkup_rules, get_rule

    if rule_id is not None and explain is not None and rule_id != explain:
        fail(f"two rules asked for ({rule_id!r} and --explain {explain!r}): give one")
    wanted = rule_id or explain
    if wanted is None:
        print_report(rules_list((*all_rules(), *checkup_rules())))
        return

    from netdoctor.rules.fixes import FIXES

    checkup_only = {r.id: r for r in checkup_rules()}
    rule = checkup_only[wanted] if wanted in checkup_only else get_rule(wanted)
    print_report(rule_explanation(rule, FIXES))
