"""The promotion history (components/_common/history.py): every alias move the suite makes is appended to the registry
as a tag of its own, never rewritten, read back in order, shown as a table and as Markdown with the moves made
outside the suite flagged; two writers at once both land; an unknown model is named."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

import pytest

from components._common import history, registry
from components._common.history import Move
from components.register_model.logic import register
from serving import processes

SCORES = {"r2": 0.9, "rmse": 1.0, "mae": 1.0}
SHA1, SHA2 = "a1" * 32, "b2" * 32
# This module's port range (19100-19199): an MLflow server, and a port nothing listens on.
MLFLOW_SERVER_PORT, CLOSED_PORT = 19100, 19199


@pytest.fixture
def registered(mlflow_state, regression_bundle):
    """A client of the registry where model `houses` has versions 1, 2 and 3 (each registration moved
    `challenger`)."""
    bundle, _ = regression_bundle
    for job in ("run-1", "run-2", "run-3"):
        register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id=job)
    return registry.connect("")


def _history_tags(client) -> dict[str, str]:
    tags = client.get_registered_model("houses").tags
    return {key: value for key, value in tags.items() if key.startswith(history.TAG_PREFIX)}


def _move(alias="champion", from_version="1", to_version="2", **fields) -> Move:
    values = {
        "time": "2026-11-30T16:40:01.123456+00:00",
        "model_name": "houses",
        "alias": alias,
        "from_version": from_version,
        "to_version": to_version,
        "model_sha256": SHA2,
        "moved_by": "training-pipeline-x (KFP run 7)",
        "cause": "training",
        "gate": "approved",
        "gate_reasons": "",
        "reason": "passed the gate",
    }
    return Move(**{**values, **fields})


# --- recording ----------------------------------------------------------------------------------------------------


def test_a_second_move_adds_a_record_and_rewrites_none(registered):
    before = _history_tags(registered)
    history.move_alias(registered, "houses", "champion", "1", cause="training", moved_by="run-1", model_sha256=SHA1)
    after_first = _history_tags(registered)

    history.move_alias(registered, "houses", "champion", "2", cause="training", moved_by="run-2", model_sha256=SHA2)

    after_second = _history_tags(registered)
    assert len(after_first) == len(before) + 1 and len(after_second) == len(before) + 2
    # Every record written before is still there, unchanged: the store only grows.
    assert after_second.items() >= after_first.items() >= before.items()
    [key] = set(after_second) - set(after_first)
    assert key.startswith(history.TAG_PREFIX) and json.loads(after_second[key])["to_version"] == "2"


def test_from_version_is_the_aliases_version_before_the_move(registered):
    # The registrations moved challenger from nothing to 1, then 1 to 2, then 2 to 3.
    history.move_alias(registered, "houses", "champion", "1", cause="training", moved_by="run-1")
    history.move_alias(registered, "houses", "champion", "3", cause="training", moved_by="run-3")
    returned = history.move_alias(registered, "houses", "champion", "2", cause="rollback", moved_by="make rollback")

    moves = history.read("", "houses")
    assert [(move.alias, move.from_version, move.to_version) for move in moves] == [
        ("challenger", "", "1"),
        ("challenger", "1", "2"),
        ("challenger", "2", "3"),
        ("champion", "", "1"),
        ("champion", "1", "3"),
        ("champion", "3", "2"),
    ]
    assert moves[-1] == returned
    assert str(registry.version_by_alias(registered, "houses", "champion").version) == "2"


def test_every_field_is_recorded_and_read_back(registered):
    moved = history.move_alias(
        registered,
        "houses",
        "champion",
        "2",
        cause="rollback",
        moved_by="rollback-pipeline-1 (KFP run 9)",
        reason="v3 answers slowly",
        gate="rejected",
        gate_reasons="file:///state/mlartifacts/houses/abc/artifacts/reports/gate.md",
        model_sha256=SHA2,
        forced=True,
    )

    assert history.read("", "houses")[-1] == moved
    assert (moved.model_name, moved.alias, moved.to_version, moved.forced) == ("houses", "champion", "2", True)
    assert (moved.gate, moved.reason, moved.model_sha256) == ("rejected", "v3 answers slowly", SHA2)
    assert moved.time.endswith("+00:00")


def test_a_reason_too_long_for_a_registry_database_is_cut_not_refused(registered):
    reason = "the latency alert fired; " * 400  # 10,000 characters
    escaped = "\x01" * 900  # six characters each once escaped in JSON

    long = history.move_alias(registered, "houses", "champion", "1", cause="rollback", moved_by="me", reason=reason)
    dense = history.move_alias(registered, "houses", "champion", "2", cause="rollback", moved_by="me", reason=escaped)

    assert long.reason == reason[: history.TEXT_LIMITS["reason"] - 1] + "…"
    assert dense.reason.endswith("…") and dense.reason[:-1] == escaped[: len(dense.reason) - 1]
    for value in _history_tags(registered).values():
        assert len(value) <= history.RECORD_LIMIT  # VARCHAR(5000) behind an MLflow server on PostgreSQL or MySQL
    assert history.read("", "houses")[-2:] == [long, dense]


def test_a_writer_that_loses_the_race_to_create_the_alias_sets_it_after_the_winner(registered):
    """MLflow's SQL store creates an alias by a read then an insert: of two writers creating it at once, one fails
    on the unique key. That writer sets it again (an update now) and records the move from the winner's version."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST

    class LosesTheRace:
        def __init__(self, client):
            self.client, self.lost = client, False

        def __getattr__(self, name):
            return getattr(self.client, name)

        def set_registered_model_alias(self, name, alias, version):
            if not self.lost:
                self.lost = True
                history.move_alias(self.client, name, alias, "1", cause="training", moved_by="the winner")
                raise MlflowException("UNIQUE constraint failed: registered_model_aliases", error_code=BAD_REQUEST)
            self.client.set_registered_model_alias(name, alias, version)

    loser = history.move_alias(LosesTheRace(registered), "houses", "champion", "2", cause="training", moved_by="me")

    assert (loser.from_version, loser.to_version) == ("1", "2")
    champion_moves = [move for move in history.read("", "houses") if move.alias == "champion"]
    assert [(move.from_version, move.to_version) for move in champion_moves] == [("", "1"), ("1", "2")]
    assert str(registry.version_by_alias(registered, "houses", "champion").version) == "2"


def test_an_empty_alias_or_version_is_refused_naming_the_parameter(registered):
    with pytest.raises(ValueError, match=r"parameter alias is empty"):
        history.move_alias(registered, "houses", "", "1", cause="training", moved_by="me")
    with pytest.raises(ValueError, match=r"parameter version is empty"):
        history.move_alias(registered, "houses", "champion", "", cause="training", moved_by="me")


# --- reading ------------------------------------------------------------------------------------------------------


def test_records_are_read_by_time_then_key_whatever_their_order_in_the_registry(registered):
    later = _move(time="2026-11-30T17:00:00.000000+00:00", to_version="3")
    same_time_b = _move(time="2026-11-30T16:00:00.000000+00:00", to_version="2")
    same_time_a = _move(time="2026-11-30T16:00:00.000000+00:00", to_version="1")
    # Another offset for the same instant order as UTC does.
    earliest = _move(time="2026-11-30T16:30:00.000000+02:00", to_version="9")
    for key, move in (("z", later), ("b", same_time_b), ("a", same_time_a), ("m", earliest)):
        registered.set_registered_model_tag("houses", f"{history.TAG_PREFIX}{key}", move.to_json())

    read = [move for move in history.read("", "houses") if move.alias == "champion"]

    assert read == [earliest, same_time_a, same_time_b, later]


def test_a_tag_under_the_history_prefix_that_is_no_move_is_named(registered):
    registered.set_registered_model_tag("houses", f"{history.TAG_PREFIX}broken", '{"alias": "champion"}')

    with pytest.raises(ValueError, match=r"history tag 'kfp_mlops\.history\.broken' lacks \['time', 'model_name'"):
        history.read("", "houses")


def test_an_unknown_model_is_named_with_the_registrys_location(registered, mlflow_state):
    with pytest.raises(
        ValueError, match=rf"^the registry at {registry.local_tracking_uri(mlflow_state)} has no model 'flats'$"
    ):
        history.read("", "flats")


def test_reading_without_a_local_registry_creates_none(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.STATE_DIR_ENV, str(tmp_path / "state"))

    with pytest.raises(ValueError, match=r"has no model 'houses': no local registry exists yet"):
        history.read("", "houses")

    assert not (tmp_path / "state").exists()
    assert "Nothing recorded: the registry at" in history.report("", "houses")
    assert not (tmp_path / "state").exists()


def test_current_aliases_are_the_tracked_ones(registered):
    history.move_alias(registered, "houses", "champion", "2", cause="training", moved_by="me")
    registered.set_registered_model_alias("houses", "staging", "1")  # a team's own alias: not the suite's

    assert history.current_aliases("", "houses") == {"champion": "2", "challenger": "3"}


# --- previous_champion --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moves", "current", "previous"),
    [
        ([("", "1"), ("1", "2")], "2", "1"),
        ([("", "1"), ("1", "2"), ("2", "3")], "3", "2"),
        # After a rollback v3 -> v2: the one v2 replaced, never the one rolled back from, nor the rollback's.
        ([("", "1"), ("1", "2"), ("2", "3"), ("3", "2", history.ROLLBACK)], "2", "1"),
        ([("", "1"), ("1", "2"), ("2", "1", history.ROLLBACK)], "1", None),
        ([("", "1"), ("1", "2"), ("2", "1", history.ROLLBACK), ("1", "3")], "3", "1"),
        ([("", "1"), ("1", "2"), ("2", "2")], "2", "1"),  # a redeployment of the same version is no "before"
        ([("", "1")], "1", None),  # the first champion
        ([("", "1"), ("1", "2")], "5", None),  # a champion set outside the suite: nothing recorded about it
        ([], "1", None),
    ],
)
def test_previous_champion_is_the_one_the_current_one_replaced_when_promoted(moves, current, previous):
    recorded = [
        _move(from_version=from_version, to_version=to, cause=cause[0] if cause else "training")
        for from_version, to, *cause in moves
    ]
    recorded.insert(0, _move(alias="challenger", from_version="7", to_version=current))  # challengers do not count

    assert history.previous_champion(recorded, current) == previous


# --- showing it ---------------------------------------------------------------------------------------------------


def test_the_table_shows_every_column_of_each_move():
    moves = [
        _move(from_version="", to_version="1", model_sha256=SHA1, time="2026-11-30T16:40:01.500000+00:00"),
        _move(
            from_version="1",
            to_version="2",
            time="2026-12-01T08:00:00.000000+00:00",
            cause="rollback",
            forced=True,
            moved_by="run_local.py rollback",
            gate="",
            reason="v2's latency\nis better",
            gate_reasons="file:///state/reports/gate.md",
        ),
    ]

    lines = history.table(moves).splitlines()

    assert re.split(r"\s{2,}", lines[0]) == [
        "time (UTC)",
        "alias",
        "from -> to",
        "digest",
        "cause",
        "moved by",
        "gate",
        "reason",
    ]
    assert set(lines[1]) <= {"-", " "}
    assert (
        lines[2].split()
        == (
            f"2026-11-30 16:40:01 champion (none) -> 1 {SHA1[:12]} training training-pipeline-x (KFP run 7) approved "
            "passed the gate"
        ).split()
    )
    assert (
        lines[3].split()
        == (
            f"2026-12-01 08:00:00 champion 1 -> 2 {SHA2[:12]} rollback (forced) run_local.py rollback - "
            "v2's latency is better"
        ).split()
    )
    # Columns line up: each starts at the same offset on every line.
    assert lines[2].index("champion") == lines[3].index("champion") == lines[0].index("alias")
    assert lines[-2:] == ["Gate reasons:", "  version 2: file:///state/reports/gate.md"]


def test_the_markdown_table_has_the_same_cells_escaped():
    moves = [_move(reason="a | b", gate_reasons="s3://mlpipeline/mlflow/1/abc/artifacts/reports/gate.md")]

    text = history.markdown(moves)

    lines = text.splitlines()
    assert lines[0] == "| time (UTC) | alias | from -> to | digest | cause | moved by | gate | reason |"
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    assert lines[2] == (
        f"| 2026-11-30 16:40:01 | champion | 1 -> 2 | {SHA2[:12]} | training | training-pipeline-x (KFP run 7) | "
        "approved | a \\| b |"
    )
    assert lines[-1] == "- version 2: `s3://mlpipeline/mlflow/1/abc/artifacts/reports/gate.md`"


def test_no_move_recorded_says_so():
    assert history.table([]) == history.markdown([]) == "No alias move recorded."
    assert history.table([], {}) == "No alias move recorded."


def test_a_move_made_outside_the_suite_is_flagged(registered):
    history.move_alias(registered, "houses", "champion", "2", cause="training", moved_by="run-2")
    registered.set_registered_model_alias("houses", "champion", "1")  # by hand, e.g. in the MLflow UI
    moves, current = history.read("", "houses"), history.current_aliases("", "houses")

    table = history.table(moves, current)

    [flagged] = [line for line in table.splitlines() if history.OUTSIDE_THE_SUITE in line]
    assert flagged.split()[:4] == ["?", "champion", "2", "->"] and flagged.split()[4] == "1"
    assert "| ? | champion | 2 -> 1 | - | moved outside the suite (not recorded) |" in history.markdown(moves, current)
    # Without the registry's aliases nothing can be told; with aliases as recorded, nothing is flagged.
    assert history.OUTSIDE_THE_SUITE not in history.table(moves)
    assert history.OUTSIDE_THE_SUITE not in history.table(moves, {"champion": "2", "challenger": "3"})


def test_an_alias_deleted_or_set_before_any_record_is_flagged_too():
    moves = [_move(from_version="", to_version="1")]

    text = history.markdown(moves, {"challenger": "4"})

    assert "| ? | champion | 1 -> (none) | - | moved outside the suite (not recorded) |" in text
    assert "| ? | challenger | (none) -> 4 | - | moved outside the suite (not recorded) |" in text


def test_the_report_names_the_model_and_the_registry(registered, mlflow_state):
    history.move_alias(registered, "houses", "champion", "3", cause="training", moved_by="run-3", model_sha256=SHA1)

    report = history.report("", "houses")

    assert report.startswith("# Promotion history of `houses`\n\n| time (UTC) |")
    assert f"| champion | (none) -> 3 | {SHA1[:12]} | training | run-3 |" in report
    assert report.endswith(
        f"Recorded as tags `kfp_mlops.history.*` of the registered model, in the registry at "
        f"{registry.local_tracking_uri(mlflow_state)}.\n"
    )


def test_a_registry_that_cannot_be_reached_gives_a_one_line_note(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    location = f"http://127.0.0.1:{CLOSED_PORT}"

    report = history.report(location, "houses")

    heading, note = report.rstrip("\n").split("\n\n")
    assert heading == "# Promotion history of `houses`"
    assert note.startswith(f"The history could not be read from the registry at {location}: ")
    assert "\n" not in note


# --- what moved it ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_name", "cause"),
    [
        ("training-pipeline-2026-11-30-16-40-01-123456", "training"),
        ("monitoring-pipeline-2026-12-01-08-00-00-000001", "monitoring"),  # it runs the training pipeline inside
        ("rollback-pipeline-xk2p9", "rollback"),
        ("Training Pipeline nightly", "training"),
        ("my-own-run", "deploy"),
        ("", "deploy"),
    ],
)
def test_the_cause_is_the_pipeline_named_by_the_job(job_name, cause):
    assert history.cause_from_job(job_name, "deploy") == cause


def test_moved_by_says_as_much_as_is_known():
    assert history.moved_by("training-pipeline-1", "7c1e", "deploy_model") == "training-pipeline-1 (KFP run 7c1e)"
    assert history.moved_by("", "7c1e", "deploy_model") == "deploy_model (KFP run 7c1e)"
    assert history.moved_by("training-pipeline-1", "", "deploy_model") == "training-pipeline-1"
    assert history.moved_by("", "", "deploy_model") == "deploy_model"


# --- two writers at once ------------------------------------------------------------------------------------------

BARRIER_TIMEOUT = 300  # seconds for both processes to start and import MLflow, however slow the machine


def _move_when_both_are_ready(state, version, barrier, lock, inside, overlapped, results) -> None:
    """One alias move in its own process (as two pipeline steps run). Both wait at ``barrier`` with MLflow imported
    and connected, so they start together; ``inside`` counts the moves under way, and ``overlapped`` records that one
    started before the other had finished."""
    import traceback

    os.environ[registry.STATE_DIR_ENV] = state
    try:
        client = registry.connect("")
        client.get_registered_model("houses")  # connected: both start moving, not connecting
        barrier.wait(timeout=BARRIER_TIMEOUT)
        with lock:
            inside.value += 1
            if inside.value == 2:
                overlapped.value = 1
        try:
            move = history.move_alias(client, "houses", "champion", version, cause="training", moved_by=version)
        finally:
            with lock:
                inside.value -= 1
        results.put(("move", move.to_json()))
    except BaseException:  # reported to the test, which names it
        results.put(("error", traceback.format_exc()))


def test_two_writers_at_the_same_time_both_appear_in_the_history(registered, mlflow_state):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, lock = context.Barrier(2), context.Lock()
    inside, overlapped = context.Value("i", 0, lock=False), context.Value("i", 0, lock=False)
    results = context.Queue()
    processes_ = [
        context.Process(
            target=_move_when_both_are_ready,
            args=(str(mlflow_state), version, barrier, lock, inside, overlapped, results),
        )
        for version in ("1", "2")
    ]
    for process in processes_:
        process.start()
    outcomes = [results.get(timeout=BARRIER_TIMEOUT + 300) for _ in processes_]
    for process in processes_:
        process.join(timeout=60)

    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert not errors, errors[0]
    # The claim is about writers at the same time: had they run one after the other, this would fail.
    assert overlapped.value == 1, "the two moves did not overlap"
    written = sorted((Move(**json.loads(detail)) for _, detail in outcomes), key=lambda move: move.to_version)
    champion_moves = [move for move in history.read("", "houses") if move.alias == "champion"]
    assert sorted(champion_moves, key=lambda move: move.to_version) == written
    assert sorted(move.to_version for move in champion_moves) == ["1", "2"]
    # The alias ends on one of them, whichever set it last.
    assert str(registry.version_by_alias(registered, "houses", "champion").version) in ("1", "2")


# --- an MLflow server --------------------------------------------------------------------------------------------


@pytest.fixture
def mlflow_server(tmp_path, _empty_mlflow_db):
    """``mlflow server`` on 127.0.0.1:19100 with its own SQLite store and artifact root, stopped after."""
    log = tmp_path / "mlflow-server.log"
    shutil.copy(_empty_mlflow_db, tmp_path / "server.db")  # its schema made once per session (seconds)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--default-artifact-root",
        (tmp_path / "server-artifacts").as_uri(),
        "--host",
        processes.HOST,
        "--port",
        str(MLFLOW_SERVER_PORT),
        "--workers",
        "1",
    ]
    environment = {name: value for name, value in os.environ.items() if name.lower() not in {"http_proxy", "all_proxy"}}
    process = processes.spawn(command, log, environment)
    try:
        url = f"http://{processes.HOST}:{MLFLOW_SERVER_PORT}"
        processes.wait_healthy(f"{url}/health", process, log, 180, "mlflow server")
        yield url
    finally:
        processes.stop_group(process.pid)
        process.wait(timeout=30)


def test_moves_through_an_mlflow_server_are_recorded_and_read_alike(mlflow_server, monkeypatch):
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    client = registry.connect(mlflow_server)
    client.create_registered_model("houses")
    for _ in range(2):
        client.create_model_version("houses", source="s3://mlpipeline/mlflow/houses/model")  # never read

    history.move_alias(client, "houses", "champion", "1", cause="training", moved_by="run-1", reason="x" * 5000)
    history.move_alias(client, "houses", "champion", "2", cause="training", moved_by="run-2")

    moves = history.read(mlflow_server, "houses")
    assert [(move.alias, move.from_version, move.to_version) for move in moves] == [
        ("champion", "", "1"),
        ("champion", "1", "2"),
    ]
    assert moves[0].reason.endswith("…")
    assert history.previous_champion(moves, "2") == "1"
    assert history.current_aliases(mlflow_server, "houses") == {"champion": "2"}
    assert "| champion | 1 -> 2 |" in history.report(mlflow_server, "houses")
