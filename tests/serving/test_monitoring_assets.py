"""cluster/monitoring: the Grafana dashboard and the alert rules query what the model server really exports: metric
names, label names and the label values they match (checked against real scrapes of both kinds of model and of a
model audited on a column it does not use), and are valid (Grafana's dashboard model; promtool); every alert rule
passes its promtool unit tests (tests/serving/promtool/)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "cluster" / "monitoring" / "dashboards" / "kfp-mlops.json"
RULES = REPO_ROOT / "cluster" / "monitoring" / "prometheus-rules.yaml"
# promtool's unit tests of the alert rules (kept out of cluster/: every YAML file there is a Kubernetes manifest).
RULE_TESTS = Path(__file__).resolve().parent / "promtool"
PANEL_TYPES = {"timeseries", "barchart", "table", "stat", "gauge", "heatmap", "bargauge"}
# Labels Prometheus itself adds to every scraped series (from the PodMonitor's target), not the server.
TARGET_LABELS = {"namespace", "pod", "container", "job", "instance", "endpoint"}
METRIC = re.compile(r"\b(model_[a-z_]+)\b")
# Where label names stand in a query (by/on (...) groupings, group_left (...), {...} matchers): no metric there.
LABEL_PLACES = re.compile(r"\b(?:by|on|group_left|group_right)\s*\([^)]*\)|\{[^}]*\}")
BY_LABELS = re.compile(r"\b(?:by|on) \(([^)]*)\)")
MATCHER_LABELS = re.compile(r"([a-z_]+)\s*(?:=~|!=|!~|=)\s*\"")
# A matcher with its value: label, operator, the PromQL string's text (escapes kept).
MATCHERS = re.compile(r'([a-z_]+)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')
ESCAPED = re.compile(r"\\(.)")
REGEX_SYNTAX = re.compile(r"[.^$*+?{}\[\]()|\\]")


def _table(columns: list[str], rows: list[list]) -> dict:
    """An OIP pd-table request: one input per column, datatype from the column's values, null = missing."""

    def datatype(values: list) -> str:
        present = [value for value in values if value is not None]
        if all(isinstance(value, bool) for value in present):
            return "BOOL"
        if all(isinstance(value, int | float) and not isinstance(value, bool) for value in present):
            return "FP64"
        return "BYTES"

    inputs = []
    for index, name in enumerate(columns):
        values = [row[index] for row in rows]
        inputs.append({"name": name, "shape": [len(values)], "datatype": datatype(values), "data": values})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def _scraped(server, bundle, rows, sent_beside: dict[str, list] | None = None) -> list[tuple[str, dict]]:
    """(metric name, labels) of every sample of the server's metrics after a good request (with a missing value),
    a refused one and, with ``sent_beside`` (column -> values of columns that are no features), a good one with
    those columns too."""
    rows = [[None, *rows[0][1:]], *rows[1:]]
    good = requests.post(server.infer_url, json=_table(bundle.feature_names, rows), timeout=30)
    assert good.status_code == 200, good.text
    refused = _table(bundle.feature_names[:-1], [row[:-1] for row in rows])
    assert requests.post(server.infer_url, json=refused, timeout=30).status_code == 400
    if sent_beside:
        columns = [*bundle.feature_names, *sent_beside]
        wider = [[*row, *(values[index] for values in sent_beside.values())] for index, row in enumerate(rows)]
        answered = requests.post(server.infer_url, json=_table(columns, wider), timeout=30)
        assert answered.status_code == 200, answered.text
    text = requests.get(server.metrics_url, timeout=30).text
    families = text_string_to_metric_families(text)
    return [(sample.name, sample.labels) for family in families for sample in family.samples]


@pytest.fixture(scope="module")
def scraped(
    regression_server,
    regression_bundle,
    classification_server,
    classification_bundle,
    audited_server,
    audited_bundle,
) -> list[tuple[str, dict]]:
    """The samples of the three kinds of model server: a regressor (prediction buckets, sums per group), a
    classifier (classes, per group), both with the feature neighbourhood as sensitive column, and a classifier
    audited on neighbourhood without using it, sent with a value training did not list, a missing one, and not
    at all: every group label a server emits."""
    samples = []
    for server, (bundle, test) in (
        (regression_server, regression_bundle),
        (classification_server, classification_bundle),
        (audited_server, audited_bundle),
    ):
        rows = json.loads(test[bundle.feature_names].head(3).to_json(orient="values"))
        beside = {"neighbourhood": ["Docklands", None, "Riverside"]} if server is audited_server else None
        samples += _scraped(server, bundle, rows, beside)
    return samples


@pytest.fixture(scope="module")
def exported(scraped) -> dict[str, set[str]]:
    """Metric name -> its label names, over every server scraped."""
    found: dict[str, set[str]] = {}
    for name, labels in scraped:
        found.setdefault(name, set()).update(labels)
    return found


def _label_values(scraped, metrics: list[str]) -> dict[str, set[str]]:
    """Label name -> the values the servers emit for it on ``metrics``."""
    values: dict[str, set[str]] = {}
    for name, labels in scraped:
        if name in metrics:
            for label, value in labels.items():
                values.setdefault(label, set()).add(value)
    return values


def _matched_values(query: str) -> list[tuple[str, str]]:
    """(label, literal value) of every matcher of ``query`` on a fixed value: the value of = and !=, each
    alternative of a =~ or !~ regex (which must be literals joined by |). Grafana variables ($model) are left out."""
    matched = []
    for label, operator, text in MATCHERS.findall(query):
        value = ESCAPED.sub(r"\1", text)  # the PromQL string's escapes: \\( is the regex's \(
        if "$" in value:
            continue
        if operator in ("=~", "!~"):
            for alternative in value.split("|"):
                unescaped = ESCAPED.sub("", alternative)
                assert not REGEX_SYNTAX.search(unescaped), f"{label}{operator}{value!r} is no list of literals: {query}"
                literal = ESCAPED.sub(r"\1", alternative)
                matched.append((label, literal))
        else:
            matched.append((label, value))
    return matched


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _rule_queries() -> list[str]:
    spec = yaml.safe_load(RULES.read_text())["spec"]
    return [rule["expr"] for group in spec["groups"] for rule in group["rules"]]


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        # In CI (CI set) tests/fixtures.py turns this skip into a failure.
        pytest.skip("promtool not found: install Debian's prometheus package (.ci/run does)")
    return promtool


def test_the_dashboard_is_a_grafana_dashboard():
    dashboard = json.loads(DASHBOARD.read_text())

    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panel_ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert {key: type(value) for key, value in panel["gridPos"].items()} == dict.fromkeys("xywh", int)
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        references = [target["refId"] for target in panel["targets"]]
        assert references and len(references) == len(set(references)), panel["title"]
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for subject in (
        "requests",
        "percentiles",
        "errors",
        "prediction distribution",
        "drift",
        "selection rate per group",
        "mean prediction per group",
        "predictions per group",
    ):
        assert subject in titles


@pytest.mark.parametrize("source", ["dashboard", "alert rules"])
def test_queries_use_metrics_and_labels_the_server_exports(exported, source):
    queries = _dashboard_queries() if source == "dashboard" else _rule_queries()
    for query in queries:
        metrics = METRIC.findall(LABEL_PLACES.sub(" ", query))
        assert metrics, query
        for metric in metrics:
            assert metric in exported, f"{metric} is not exported by the model server; query: {query}"
        labels = {label.strip() for group in BY_LABELS.findall(query) for label in group.split(",") if label.strip()}
        labels |= set(MATCHER_LABELS.findall(query))
        known = set().union(*(exported[metric] for metric in metrics)) | TARGET_LABELS
        assert labels <= known, f"labels {sorted(labels - known)} are not on {metrics}; query: {query}"


@pytest.mark.parametrize("source", ["dashboard", "alert rules"])
def test_queries_match_label_values_the_server_emits(scraped, source):
    """A matcher on a value no server emits (group="(others)", sign="neg") would match nothing and stay silent."""
    queries = _dashboard_queries() if source == "dashboard" else _rule_queries()
    checked = set()
    for query in queries:
        emitted = _label_values(scraped, METRIC.findall(LABEL_PLACES.sub(" ", query)))
        for label, value in _matched_values(query):
            assert value in emitted.get(label, set()), (
                f"{label}={value!r} is not a value the server emits (it emits {sorted(emitted.get(label, []))}); "
                f"query: {query}"
            )
            checked.add((label, value))
    # What the queries rely on is really checked: the group labels the fairness alert leaves out, the signs.
    expected = {("outcome", "error")}
    if source == "alert rules":
        expected |= {("group", "(other)"), ("group", "(missing)"), ("group", "(not sent)")}
    else:
        expected |= {("sign", "positive"), ("sign", "negative")}
    assert expected <= checked


def test_every_query_keeps_models_apart():
    # The model server labels every series with model_name (the OIP model name, also the SeldonDeployment's).
    for query in _dashboard_queries():
        assert 'model_name=~"$model"' in query, query
    variables = {variable["name"]: variable for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    assert variables["model"]["query"]["query"] == "label_values(model_requests_total, model_name)"
    for query in _rule_queries():
        assert all("model_name" in group for group in BY_LABELS.findall(query)), query


def test_alert_rules_pass_promtool(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(yaml.safe_load(RULES.read_text())["spec"]))

    checked = subprocess.run([_promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout


def _alert_rules() -> dict[str, dict]:
    spec = yaml.safe_load(RULES.read_text())["spec"]
    return {rule["alert"]: rule for group in spec["groups"] for rule in group["rules"] if "alert" in rule}


def _duration(text: str) -> int:
    """Seconds of a Prometheus duration such as 30m, 1h or 1h30m."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)([smhd])", text)
    assert parts and "".join(number + unit for number, unit in parts) == text, f"unexpected duration {text!r}"
    return sum(int(number) * units[unit] for number, unit in parts)


def test_every_alert_rule_passes_its_promtool_unit_tests(tmp_path):
    # The unit tests name the rule file rules.yaml: the PrometheusRule's spec, written beside them.
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(yaml.safe_load(RULES.read_text())["spec"]))
    files = sorted(RULE_TESTS.glob("*.yaml"))
    assert files, f"no promtool unit tests in {RULE_TESTS}"
    for path in files:
        test = yaml.safe_load(path.read_text())
        assert test["rule_files"] == ["rules.yaml"], path
        shutil.copy(path, tmp_path / path.name)

    tested = subprocess.run(
        [_promtool(), "test", "rules", *(path.name for path in files)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_firing_after_its_for_not_before_and_silent():
    """For each alert of the rules: a test where it fires, one evaluation at or after its `for:` with it firing and
    one before that with it silent (the series make it true from the test's start or its first minute), and a test
    whose series leave it silent throughout."""
    cases: dict[str, list[tuple[int, bool]]] = {}
    silent_tests: dict[str, bool] = {}
    for path in sorted(RULE_TESTS.glob("*.yaml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            by_alert: dict[str, list[bool]] = {}
            for check in test["alert_rule_test"]:
                fired = bool(check["exp_alerts"])
                cases.setdefault(check["alertname"], []).append((_duration(check["eval_time"]), fired))
                by_alert.setdefault(check["alertname"], []).append(fired)
            for alert, fired in by_alert.items():
                silent_tests[alert] = silent_tests.get(alert, False) or not any(fired)
    for alert, rule in _alert_rules().items():
        hold = _duration(rule["for"])
        times = cases.get(alert, [])
        firing = [time for time, fired in times if fired]
        assert firing and min(firing) >= hold, f"{alert}: no test fires it at or after its for: {rule['for']}"
        assert any(not fired and time >= hold - 60 for time, fired in times), (
            f"{alert}: no test shows it silent up to its for: {rule['for']} has passed"
        )
        assert silent_tests.get(alert), f"{alert}: no test whose series leave it silent"


@pytest.mark.parametrize("alert", ["ModelErrorRateHigh", "ModelLatencyHigh", "ModelFairnessGap"])
def test_failure_and_fairness_alerts_name_the_rollback(alert):
    runbook = " ".join(_alert_rules()[alert]["annotations"]["runbook"].split())

    assert "`make rollback MODEL=<registered model name>`" in runbook
    assert "`make run PIPELINE=rollback RUN_ARGS='model_name=<registered model name> reason=\"...\"'`" in runbook
    assert "build/rollback_pipeline.yaml in the KFP UI" in runbook
    assert "`make history MODEL=<registered model name>`" in runbook


def test_dashboard_queries_are_valid_promql(tmp_path):
    # promtool parses every expression of a rule file: each query becomes a recording rule, the dashboard's
    # variables replaced by what Grafana substitutes.
    queries = [query.replace("$model", ".*").replace("$__rate_interval", "5m") for query in _dashboard_queries()]
    rules = {
        "groups": [{"name": "dashboard", "rules": [{"record": f"q{i}", "expr": q} for i, q in enumerate(queries)]}]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))

    checked = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)

    assert checked.returncode == 0, checked.stdout + checked.stderr
