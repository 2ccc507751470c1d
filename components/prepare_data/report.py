"""The cleaning report of prepare_data: every cleaning step, its setting and what it changed, as Markdown."""

from __future__ import annotations

from components.prepare_data.logic import Preparation


def render_cleaning_report(prepared: Preparation) -> str:
    """A Markdown report for the KFP UI: every cleaning step, its setting and what it changed."""
    lines = [
        "# Data preparation",
        "",
        f"{prepared.train_rows} training rows, {prepared.test_rows} test rows.",
        "",
        "| policy | setting | column | rows dropped | values changed | detail |",
        "|---|---|---|---|---|---|",
    ]
    for step in prepared.cleaning:
        lines.append(
            f"| {step.policy} | {step.setting} | {step.column} | {step.rows} | {step.values} | {step.detail} |"
        )
    return "\n".join(lines) + "\n"
