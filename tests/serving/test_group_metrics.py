"""The real model server counts predictions per group of the model card's sensitive columns: a feature column
(the fixture models' neighbourhood) or an excluded column the client sends beside the features (the audited model),
with values outside the card's groups as (other), missing ones as (missing) and requests without the column as
(not sent); scraped from its metrics port as Prometheus scrapes it."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from model_bundle import MISSING_GROUP, NOT_SENT_GROUP, OTHER_GROUP

pytestmark = pytest.mark.serving

JSON_HEADERS = {"Content-Type": "application/json"}
ROWS, CLASSES, SUMS = (
    "model_group_predictions_total",
    "model_group_predicted_class_total",
    "model_group_prediction_sum_total",
)


def _post(server, body) -> requests.Response:
    return requests.post(server.infer_url, data=json.dumps(body, allow_nan=False), headers=JSON_HEADERS, timeout=60)


def _predicted(response: requests.Response, bundle) -> list:
    assert response.status_code == 200, response.text
    return next(output["data"] for output in response.json()["outputs"] if output["name"] == bundle.card.target)


def _group_samples(server) -> Counter:
    """(metric, column, group, class or sign) -> value, for this server's model, from a scrape."""
    text = requests.get(server.metrics_url, timeout=30).text
    found: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name in (ROWS, CLASSES, SUMS) and labels["model_name"] == server.model_name:
                key = (sample.name, labels["column"], labels["group"], labels.get("class", labels.get("sign", "")))
                found[key] += sample.value
    return found


def _delta(after: Counter, before: Counter) -> dict:
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def _counted(groups: list[str], classes: list | None = None) -> dict:
    """What a scrape's delta holds for rows of ``groups`` (of neighbourhood) and, for a classifier, their classes."""
    expected = {(ROWS, "neighbourhood", group, ""): n for group, n in Counter(groups).items()}
    if classes is not None:
        pairs = Counter(zip(groups, classes, strict=True))
        expected |= {(CLASSES, "neighbourhood", group, label): n for (group, label), n in pairs.items()}
    return expected


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_predictions_are_counted_per_group_of_a_feature(request, task, oip_table):
    bundle, test = request.getfixturevalue(f"{task}_bundle")
    server = request.getfixturevalue(f"{task}_server")
    rows = test[bundle.feature_names].head(40).copy()
    rows.loc[rows.index[:3], "neighbourhood"] = None
    before = _group_samples(server)

    predicted = _predicted(_post(server, oip_table(bundle, rows)), bundle)

    delta = _delta(_group_samples(server), before)
    groups = rows["neighbourhood"].fillna(MISSING_GROUP).tolist()
    if task == "classification":
        assert delta == _counted(groups, predicted)
    else:
        sums = pd.Series(predicted).groupby(groups).sum()
        assert (sums > 0).all()  # house prices: the negative sums stay at 0
        for group, total in sums.items():
            assert delta.pop((SUMS, "neighbourhood", group, "positive")) == pytest.approx(total, rel=1e-9)
        assert delta == _counted(groups)
    assert set(groups) - set(bundle.card.sensitive_groups["neighbourhood"]) == {MISSING_GROUP}


def test_an_excluded_sensitive_column_is_read_when_sent(audited_server, audited_bundle, oip_table):
    bundle, test = audited_bundle
    assert "neighbourhood" not in bundle.feature_names
    listed = bundle.card.sensitive_groups["neighbourhood"]
    sent = test[[*bundle.feature_names, "neighbourhood"]].head(30).copy()
    sent = sent[sent["neighbourhood"].notna()]
    sent.loc[sent.index[0], "neighbourhood"] = "Docklands"  # no training group: no data contract for it either
    sent.loc[sent.index[1], "neighbourhood"] = None
    without = test[bundle.feature_names].head(7)
    before = _group_samples(audited_server)

    predicted = _predicted(_post(audited_server, oip_table(bundle, sent)), bundle)
    predicted_without = _predicted(_post(audited_server, oip_table(bundle, without)), bundle)

    delta = _delta(_group_samples(audited_server), before)
    groups = [OTHER_GROUP, MISSING_GROUP, *sent["neighbourhood"].iloc[2:]] + [NOT_SENT_GROUP] * len(without)
    assert set(groups) - set(listed) == {OTHER_GROUP, MISSING_GROUP, NOT_SENT_GROUP}
    assert delta == _counted(groups, predicted + predicted_without)
    # The column is read for the counts only: the model never sees it.
    assert predicted == bundle.predict(sent[bundle.feature_names]).tolist()


def test_a_sent_sensitive_column_must_have_one_value_per_row(audited_server, audited_bundle, oip_table):
    bundle, test = audited_bundle
    body = oip_table(bundle, test[[*bundle.feature_names, "neighbourhood"]].head(4))
    column = next(entry for entry in body["inputs"] if entry["name"] == "neighbourhood")
    column["data"], column["shape"] = column["data"][:3], [3]
    before = _group_samples(audited_server)

    response = _post(audited_server, body)

    assert response.status_code == 400
    assert response.json()["reason"] == "BAD_SHAPE"
    assert "'neighbourhood': 3" in response.json()["error"]
    assert _delta(_group_samples(audited_server), before) == {}


def test_a_column_has_series_for_each_of_its_groups_and_no_other(audited_server, audited_bundle):
    """Created when the model loads, at 0 (a class never predicted for a group has a rate of 0, not none): the card's
    groups and the three reserved labels, every class for each: a bounded set, whatever the traffic sent."""
    bundle, _ = audited_bundle
    samples = _group_samples(audited_server)
    groups = [*bundle.card.sensitive_groups["neighbourhood"], OTHER_GROUP, MISSING_GROUP, NOT_SENT_GROUP]

    expected = {(ROWS, "neighbourhood", group, "") for group in groups}
    expected |= {(CLASSES, "neighbourhood", group, label) for group in groups for label in bundle.card.classes}
    assert set(samples) == expected
