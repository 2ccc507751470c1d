"""The promotion history: every move of a model's ``champion`` and ``challenger`` aliases that the suite makes,
appended to the registry (``move_alias``), read back oldest first (``read``) and shown as a plain-text table for a
terminal (``table``) or as Markdown for a KFP artifact (``markdown``, ``write_report``).

Stored as registered-model tags, one new tag per move (key ``kfp_mlops.history.<UTC time to the microsecond>.<8
random hex digits>``, value the move as JSON), because:
- MLflow keeps no history of alias moves: setting an alias replaces it, and nothing says what it pointed at before,
  when, or why (mlflow/mlflow issue #2169, open since 2019);
- two writers at once (two pipeline runs, a rollback during a training run) each add their own key: nothing is read,
  changed and written back, so no move is lost and no record is ever overwritten (one document rewritten on every
  move would lose one of two concurrent appends);
- it is kept with the registry, so it outlives the pipeline run, its pods and any local state;
- it is MlflowClient's ordinary tag API: it works with the local SQLite registry and an MLflow server alike, with no
  other storage or credentials.

What is not recorded: an alias moved by other means (the MLflow UI, a script of one's own). Given the aliases as the
registry has them now, ``table`` and ``markdown`` show such a move as "moved outside the suite (not recorded)". A
move whose tag could not be written after the alias was set (the process died in between) shows the same way, and
so can, for a moment, two writers moving one alias within milliseconds: both moves are recorded, each with the
version it moved from, but their records may land in the other order than their alias settings.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from components._common import registry

TAG_PREFIX = "kfp_mlops.history."
TRACKED_ALIASES = (registry.CHAMPION, registry.CHALLENGER)
OUTSIDE_THE_SUITE = "moved outside the suite (not recorded)"
# MLflow 3.17 accepts registered-model tag values of up to 100,000 characters (mlflow/utils/validation.py,
# MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH), but its database column is VARCHAR(5000) (registered_model_tags.value),
# which PostgreSQL and MySQL enforce behind an MLflow server: a record is kept under 4,000 characters, its free
# text cut (ending in "…") to the limits below, and the reason cut further if escaping still makes it too long.
RECORD_LIMIT = 4000
TEXT_LIMITS = {"moved_by": 300, "gate_reasons": 1000, "reason": 1000}
CUT_MARK = "…"
GATE_VERDICTS = {"true": "approved", "false": "rejected"}
# Pipeline names (in a KFP job name) and the cause each stands for, the first match winning: the monitoring pipeline
# runs the training pipeline inside it.
ROLLBACK = "rollback"  # the cause of a move made by the rollback pipeline
CAUSES_BY_PIPELINE = ((ROLLBACK, ROLLBACK), ("monitoring", "monitoring"), ("training", "training"))
DIGEST_SHOWN = 12
COLUMNS = ("time (UTC)", "alias", "from -> to", "digest", "cause", "moved by", "gate", "reason")


@dataclass(frozen=True)
class Move:
    """One move of an alias, as recorded."""

    time: str  # ISO 8601 UTC, e.g. 2026-11-30T16:40:01.123456+00:00
    model_name: str
    alias: str  # "champion" | "challenger"
    from_version: str  # "" when the alias did not exist
    to_version: str
    model_sha256: str  # the digest of the version moved to (the one served, for champion)
    moved_by: str  # what moved it, e.g. "training-pipeline-20261130... (KFP run <id>)", "run_local.py rollback"
    cause: str  # "training" | "monitoring" | "rollback" | "registration" | "deploy" (a short word)
    gate: str  # the version's gate verdict: "approved" | "rejected" | "" (not gated)
    gate_reasons: str  # the URI of the gate's reasons (an artifact of the version's MLflow run), "" if none
    reason: str  # free text
    forced: bool = False  # a refusal overridden with force=true (rollback)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, key: str) -> Move:
        """The move recorded as ``text`` under tag ``key``; ValueError naming the tag when it is no move."""
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"history tag {key!r} is not JSON: {error}") from error
        if not isinstance(record, dict):
            raise ValueError(f"history tag {key!r} holds {type(record).__name__}, not a recorded move")
        names = [field.name for field in fields(cls)]
        missing = [name for name in names if name != "forced" and name not in record]
        if missing:
            raise ValueError(f"history tag {key!r} lacks {missing}: not a recorded move")
        # Fields a later release may add are ignored; the ones known are read as their types.
        known = {name: record[name] for name in names if name in record}
        move = cls(**{name: bool(value) if name == "forced" else str(value) for name, value in known.items()})
        try:
            _instant(move.time)
        except ValueError as error:
            raise ValueError(f"history tag {key!r} has no ISO 8601 time: {move.time!r}") from error
        return move


def move_alias(
    client,
    model_name: str,
    alias: str,
    version: str,
    *,
    cause: str,
    moved_by: str,
    reason: str = "",
    gate: str = "",
    gate_reasons: str = "",
    model_sha256: str = "",
    forced: bool = False,
) -> Move:
    """Moves ``alias`` of ``model_name`` to ``version`` and records the move; returns it (as recorded: long text
    cut, see RECORD_LIMIT).

    ``from_version`` is the alias's version read just before it is set ("" when it did not exist). The alias is set
    first and the move recorded right after, so the history never claims a move that did not happen.
    """
    from mlflow.exceptions import MlflowException

    for name, value in (("model_name", model_name), ("alias", alias), ("version", str(version)), ("cause", cause)):
        if not value:
            raise ValueError(f"parameter {name} is empty")
    previous = registry.version_by_alias(client, model_name, alias)
    try:
        client.set_registered_model_alias(model_name, alias, str(version))
    except MlflowException as error:
        # MLflow's SQL store creates an alias by a read then an insert: of two writers creating it at once, one fails
        # on the table's unique key (BAD_REQUEST). The alias exists now, and setting it again updates it.
        if previous is not None or error.error_code != "BAD_REQUEST":
            raise
        previous = registry.version_by_alias(client, model_name, alias)
        if previous is None:
            raise
        client.set_registered_model_alias(model_name, alias, str(version))
    now = datetime.now(UTC)
    move = _bounded(
        Move(
            time=now.isoformat(timespec="microseconds"),
            model_name=model_name,
            alias=alias,
            from_version="" if previous is None else str(previous.version),
            to_version=str(version),
            model_sha256=model_sha256,
            moved_by=moved_by,
            cause=cause,
            gate=gate,
            gate_reasons=gate_reasons,
            reason=reason,
            forced=forced,
        )
    )
    # A new key per move: UTC time to the microsecond, and random digits for two writers in the same microsecond.
    key = f"{TAG_PREFIX}{now:%Y%m%dT%H%M%S%f}.{secrets.token_hex(4)}"
    client.set_registered_model_tag(model_name, key, move.to_json())
    return move


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - len(CUT_MARK), 0)] + CUT_MARK


def _bounded(move: Move) -> Move:
    """``move`` with its free text cut to TEXT_LIMITS, then the longest of it further until its JSON fits
    RECORD_LIMIT (JSON escapes make a character up to six)."""
    move = replace(move, **{name: _cut(getattr(move, name), limit) for name, limit in TEXT_LIMITS.items()})
    while (excess := len(move.to_json()) - RECORD_LIMIT) > 0:
        longest = max(TEXT_LIMITS, key=lambda name: len(getattr(move, name)))
        text = getattr(move, longest)
        if len(text) <= len(CUT_MARK):  # nothing left to cut: the other fields alone are too long
            raise ValueError(f"the move of {move.model_name} is {excess} characters over {RECORD_LIMIT} uncut")
        move = replace(move, **{longest: _cut(text, max(len(text) - excess, len(CUT_MARK)))})
    return move


def read(tracking_uri: str, model_name: str) -> list[Move]:
    """Every recorded move of ``model_name``'s aliases, oldest first (by time, then tag key).

    Raises ValueError naming the model and the registry's location when the registry has no such model (nor a
    local registry: none is created), or naming the tag when a history tag holds no move.
    """
    return _history(tracking_uri, model_name)[0]


def current_aliases(tracking_uri: str, model_name: str) -> dict[str, str]:
    """``{alias: version}`` of the tracked aliases (champion, challenger) as the registry has them now; ValueError
    as ``read``."""
    return _history(tracking_uri, model_name)[1]


def _history(tracking_uri: str, model_name: str) -> tuple[list[Move], dict[str, str]]:
    """The recorded moves of ``model_name`` (oldest first) and its tracked aliases now, from one registry read."""
    if not model_name:
        raise ValueError("parameter model_name is empty")
    location = registry.registry_location(tracking_uri)
    if not tracking_uri and not registry.local_store().exists():
        # Reading must not create a local registry (nor pay for importing MLflow).
        raise ValueError(f"the registry at {location} has no model {model_name!r}: no local registry exists yet")
    from mlflow.exceptions import MlflowException

    try:
        found = registry.connect(tracking_uri).get_registered_model(model_name)
    except MlflowException as error:
        if error.error_code in registry.NOT_FOUND_ERRORS:
            raise ValueError(f"the registry at {location} has no model {model_name!r}") from error
        raise
    recorded = [
        (Move.from_json(value, key), key) for key, value in (found.tags or {}).items() if key.startswith(TAG_PREFIX)
    ]
    moves = [move for move, _ in sorted(recorded, key=lambda pair: (_instant(pair[0].time), pair[1]))]
    aliases = {alias: str(version) for alias, version in (found.aliases or {}).items() if alias in TRACKED_ALIASES}
    return moves, aliases


def _instant(time: str) -> datetime:
    parsed = datetime.fromisoformat(time)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def previous_champion(moves: list[Move], current: str) -> str | None:
    """The champion ``current`` replaced when it was promoted: the from_version of the latest recorded champion move
    to ``current`` that was no rollback (skipping a move from no version or from ``current`` itself, a
    redeployment); None when there is none.

    Rollbacks are skipped so that a second rollback steps further back (v3 -> v2, then v2 -> v1) and never serves
    the version a rollback took out of service (v2 -> v3) unless it is named.
    """
    for move in reversed(moves):
        if (
            move.alias == registry.CHAMPION
            and move.to_version == str(current)
            and move.from_version not in ("", str(current))
            and move.cause != ROLLBACK
        ):
            return move.from_version
    return None


def version_facts(client, model_name: str, version: str) -> dict[str, str]:
    """What the registry recorded of ``version`` that a move records with it: ``gate`` (approved / rejected / ""),
    ``gate_reasons`` (the URI register_model recorded, "" if none) and ``model_sha256``; keyword arguments of
    move_alias."""
    tags = dict(client.get_model_version(model_name, str(version)).tags or {})
    return {
        "gate": GATE_VERDICTS.get(tags.get(registry.GATE_APPROVED_TAG, ""), ""),
        "gate_reasons": tags.get(registry.GATE_REASONS_TAG, ""),
        "model_sha256": tags.get(registry.MODEL_SHA256_TAG, ""),
    }


def cause_from_job(pipeline_job_name: str, default: str) -> str:
    """The cause of a move made by the KFP run named ``pipeline_job_name`` (KFP names a run after its pipeline):
    "rollback", "monitoring" or "training" by the pipeline that moved it, else ``default``."""
    name = pipeline_job_name.lower()
    return next((cause for word, cause in CAUSES_BY_PIPELINE if word in name), default)


def moved_by(pipeline_job_name: str, pipeline_job_id: str, step: str) -> str:
    """What moved an alias: "<job name> (KFP run <job id>)", or as much of it as is known; ``step`` outside a
    pipeline run."""
    if pipeline_job_name and pipeline_job_id:
        return f"{pipeline_job_name} (KFP run {pipeline_job_id})"
    if pipeline_job_id:
        return f"{step} (KFP run {pipeline_job_id})"
    return pipeline_job_name or step


# --- showing it ------------------------------------------------------------------------------------------------


def unreadable_at(tracking_uri: str, error: BaseException) -> str:
    """Where a registry that could not be read is, and why, on one line: "from the registry at <location>: <error>"."""
    return f"from the registry at {registry.registry_location(tracking_uri)}: {_one_line(str(error))}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _row(move: Move) -> list[str]:
    moved = _instant(move.time).astimezone(UTC)
    return [
        moved.strftime("%Y-%m-%d %H:%M:%S"),
        move.alias,
        f"{move.from_version or '(none)'} -> {move.to_version}",
        move.model_sha256[:DIGEST_SHOWN] or "-",
        f"{move.cause} (forced)" if move.forced else move.cause,
        _one_line(move.moved_by) or "-",
        move.gate or "-",
        _one_line(move.reason),
    ]


def _unrecorded(moves: list[Move], current: dict[str, str] | None) -> list[list[str]]:
    """A row per alias whose version now differs from the last recorded move's: moved outside the suite."""
    if current is None:
        return []
    recorded = {move.alias: move.to_version for move in moves}
    aliases = [alias for alias in TRACKED_ALIASES if alias in recorded or alias in current]
    aliases += sorted((set(recorded) | set(current)) - set(TRACKED_ALIASES))
    rows = []
    for alias in aliases:
        last, now = recorded.get(alias, ""), str(current.get(alias, ""))
        if last != now:
            rows.append(["?", alias, f"{last or '(none)'} -> {now or '(none)'}", "-", OUTSIDE_THE_SUITE, "-", "-", ""])
    return rows


def _gate_reasons(moves: list[Move]) -> dict[str, str]:
    """Version -> where its gate's reasons are, for the moves that know."""
    return {move.to_version: move.gate_reasons for move in moves if move.gate_reasons}


def table(moves: list[Move], current: dict[str, str] | None = None) -> str:
    """The history as a plain-text table for a terminal (columns: COLUMNS), oldest first, then where each gate's
    reasons are. ``current``: every tracked alias as the registry has it now (an alias absent does not exist); an
    alias whose version differs from its last recorded move gets a row "moved outside the suite (not recorded)"."""
    rows = [_row(move) for move in moves] + _unrecorded(moves, current)
    if not rows:
        return "No alias move recorded."
    widths = [max(len(row[index]) for row in [list(COLUMNS), *rows]) for index in range(len(COLUMNS))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    lines = [line(list(COLUMNS)), line(["-" * width for width in widths]), *(line(row) for row in rows)]
    reasons = _gate_reasons(moves)
    if reasons:
        lines += ["", "Gate reasons:", *(f"  version {version}: {uri}" for version, uri in reasons.items())]
    return "\n".join(lines)


def _markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def markdown(moves: list[Move], current: dict[str, str] | None = None) -> str:
    """The history as a Markdown table (a KFP Markdown artifact), as ``table`` shows it."""
    rows = [_row(move) for move in moves] + _unrecorded(moves, current)
    if not rows:
        return "No alias move recorded."
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows),
    ]
    reasons = _gate_reasons(moves)
    if reasons:
        lines += ["", "Gate reasons:", "", *(f"- version {version}: `{uri}`" for version, uri in reasons.items())]
    return "\n".join(lines)


def report(tracking_uri: str, model_name: str) -> str:
    """``model_name``'s history as a Markdown document: a heading, the table (with moves made outside the suite)
    and where it is kept; one line saying why when the registry has no such model or cannot be read."""
    from mlflow.exceptions import MlflowException

    location = registry.registry_location(tracking_uri)
    heading = f"# Promotion history of `{model_name}`\n\n"
    try:
        moves, current = _history(tracking_uri, model_name)
    except ValueError as error:
        return f"{heading}Nothing recorded: {error}.\n"
    except (MlflowException, OSError) as error:  # requests' connection errors are OSErrors
        return f"{heading}The history could not be read {unreadable_at(tracking_uri, error)}\n"
    return (
        f"{heading}{markdown(moves, current)}\n\n"
        f"Recorded as tags `{TAG_PREFIX}*` of the registered model, in the registry at {location}.\n"
    )


def write_report(path: str | Path, tracking_uri: str, model_name: str) -> None:
    """Writes ``report`` to ``path`` (a step's Markdown output)."""
    Path(path).write_text(report(tracking_uri, model_name))
