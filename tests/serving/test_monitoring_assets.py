"""cluster/monitoring: the Grafana dashboard and the alert rules query what the model server really exports
(checked against real scrapes of both kinds of model) and are valid (Grafana's dashboard model; promtool)."""

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
PANEL_TYPES = {"timeseries", "barchart", "table", "stat", "gauge", "heatmap", "bargauge"}
# Labels Prometheus itself adds to every scraped series (from the PodMonitor's target), not the server.
TARGET_LABELS = {"namespace", "pod", "container", "job", "instance", "endpoint"}
METRIC = re.compile(r"\b(model_[a-z_]+)\b")
# Where label names stand in a query (by (...) groupings, {...} matchers): model_name there is no metric.
LABEL_PLACES = re.compile(r"\bby\s*\([^)]*\)|\{[^}]*\}")
BY_LABELS = re.compile(r"\bby \(([^)]*)\)")
MATCHER_LABELS = re.compile(r"([a-z_]+)\s*(?:=~|!=|!~|=)\s*\"")


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


def _scraped(server, bundle, rows) -> dict[str, set[str]]:
    """Metric name -> label names, from the server's metrics after a good request (with a missing value) and a
    refused one."""
    rows = [[None, *rows[0][1:]], *rows[1:]]
    good = requests.post(server.infer_url, json=_table(bundle.feature_names, rows), timeout=30)
    assert good.status_code == 200, good.text
    refused = _table(bundle.feature_names[:-1], [row[:-1] for row in rows])
    assert requests.post(server.infer_url, json=refused, timeout=30).status_code == 400
    text = requests.get(server.metrics_url, timeout=30).text
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


@pytest.fixture(scope="module")
def exported(regression_server, regression_bundle, classification_server, classification_bundle) -> dict:
    """What both kinds of model server export (a regressor has prediction buckets, a classifier classes)."""
    found: dict[str, set[str]] = {}
    for server, (bundle, test) in (
        (regression_server, regression_bundle),
        (classification_server, classification_bundle),
    ):
        rows = json.loads(test[bundle.feature_names].head(3).to_json(orient="values"))
        for name, labels in _scraped(server, bundle, rows).items():
            found.setdefault(name, set()).update(labels)
    return found


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
    for subject in ("requests", "percentiles", "errors", "prediction distribution", "drift"):
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
    assert "SUCCESS: 3 rules found" in checked.stdout


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
