"""The validation report of validate_data: the verdict, every check with its policy and result, each failure and
warning, the excluded columns, the leakage scores and the inferred schema, as Markdown for the KFP UI."""

from __future__ import annotations

from components.validate_data.leakage import ALONE, COLLAPSE, NEAR_PERFECT
from components.validate_data.logic import DATA_CHECKS, MIXED_TYPES, Validation
from components.validate_data.policy import EXCLUDE, FAIL, IDENTIFIERS, IGNORE, KEEP, LEAKAGE
from model_bundle.schema import CHECKS, Finding


def render_report(validation: Validation, target: str) -> str:
    """A Markdown report for the KFP UI: the verdict, every check with its result, each failure and warning with
    counts and examples, the excluded columns and why, every feature's leakage scores, and the inferred schema."""
    schema = validation.schema
    failures, warnings = validation.failures, validation.warnings
    verdict = "passed" if validation.passed else f"failed with {len(failures)} failure(s)"
    if warnings:
        verdict += f", {len(warnings)} warning(s)"
    reference = (
        f"Compared with {validation.reference_name}."
        if validation.reference_name
        else "No reference schema (no champion yet): the schema checks did not run; this schema becomes the "
        "reference when this model is champion."
    )
    lines = [
        f"# Data validation {verdict}",
        "",
        f"{schema['rows']} rows, {len(schema['columns'])} columns; target `{target}`, task `{validation.task}`. "
        + reference,
        "",
        "## Checks",
        "",
        "| check | policy | result |",
        "|---|---|---|",
    ]
    for check in DATA_CHECKS:
        coerced = check == MIXED_TYPES and validation.coerced_findings
        policy = "warn (cleaning_policy coerce_mixed_types)" if coerced else "fail"
        lines.append(f"| {check} | {policy} | {_result(check, failures, warnings)} |")
    for check in CHECKS:
        policy = validation.policy.action(check)
        result = _result(check, failures, warnings) if validation.reference_name and policy != IGNORE else "not run"
        lines.append(f"| {check} | {policy} | {result} |")
    identifiers = ", ".join(finding.column for finding in validation.identifier_findings)
    result = {
        EXCLUDE: f"excluded: {identifiers}",
        FAIL: f"**failed**: {identifiers}",
        KEEP: f"kept: {identifiers}",
    }[validation.policy.identifiers]
    lines.append(f"| {IDENTIFIERS} | {validation.policy.identifiers} | {result if identifiers else 'passed'} |")
    leakage = validation.leakage
    result = "not run" if leakage is None or leakage.not_run else _result(LEAKAGE, failures, warnings)
    lines.append(f"| {LEAKAGE} | {validation.policy.leakage} | {result} |")
    lines.append("")
    for title, group in (("Failures", failures), ("Warnings", warnings)):
        if group:
            lines += [f"## {title}", ""] + [f"- **{finding.check}**: {finding.message}" for finding in group] + [""]
    kept = [finding for finding in validation.identifier_findings if validation.policy.identifiers == KEEP]
    if kept:
        lines += ["## Identifiers kept", ""] + [f"- {finding.message}" for finding in kept] + [""]
    if validation.excluded:
        lines += ["## Excluded columns", "", "Not features: the model neither trains on them nor needs them.", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in validation.excluded.items()] + [""]
    lines += _leakage_section(validation)
    lines += [
        "## Schema",
        "",
        "| column | role | type | kind | dtype | missing | distinct | unique | range / categories |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for column in schema["columns"]:
        if "min" in column:
            domain = f"{column['min']:g} .. {column['max']:g}"
        else:
            shown = column.get("categories", [])[:8]
            domain = ", ".join(shown) + (" ..." if column["distinct"] > len(shown) else "")
        lines.append(
            f"| {column['name']} | {column['role']} | {column['type']} | {column['kind']} | {column['dtype']} | "
            f"{column['nulls']} ({column['null_fraction']:.1%}) | {column['distinct']} | "
            f"{'yes' if column['unique'] else ''} | {domain} |"
        )
    return "\n".join(lines) + "\n"


def _leakage_section(validation: Validation) -> list[str]:
    """Every checked feature's scores: how well it alone predicts the target, and the whole fit without it."""
    check = validation.leakage
    if check is None:
        why = "validation_policy leakage=ignore" if validation.policy.leakage == IGNORE else "the data failed"
        return ["## Leakage", "", f"Not run ({why}).", ""]
    if check.not_run:
        return ["## Leakage", "", f"Not run: {check.not_run}.", ""]
    task, metric = check.task, check.metric
    lines = [
        "## Leakage",
        "",
        f"On {check.rows} sampled rows, cross-validated {metric}. A feature is suspected when alone it scores at "
        f"least {ALONE[task]}, or when the whole table scores at least {NEAR_PERFECT[task]} and at least "
        f"{COLLAPSE} less without it. Whole table: {check.whole:.3f}.",
        "",
        f"| feature | alone ({metric}) | whole table without it | suspected |",
        "|---|---|---|---|",
    ]
    for feature in check.features:
        without = "" if feature.without is None else f"{feature.without:.3f}"
        suspected = f"**{', '.join(feature.suspected_by)}**" if feature.suspected_by else ""
        lines.append(f"| {feature.name} | {feature.alone:.3f} | {without} | {suspected} |")
    return [*lines, ""]


def _result(check: str, failures: list[Finding], warnings: list[Finding]) -> str:
    failed = [finding.column or "the dataset" for finding in failures if finding.check == check]
    warned = [finding.column for finding in warnings if finding.check == check]
    if failed:
        return f"**failed**: {', '.join(failed)}"
    if warned:
        return f"warning: {', '.join(warned)}"
    return "passed"
