"""/predict log lines carry CloudWatch embedded metric format (EMF) metrics: Predictions,
PredictionErrors (5xx) and PredictionLatency per ServiceName and ModelVersionId.

CloudWatch (not moto) turns these lines into metrics, so the test checks the lines against
the structure of "Specification: Embedded metric format"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
"""

from __future__ import annotations

import json
import time

import pytest

from aurelius_server.metrics import emf_fields

from .helpers import call
from .toy_model import LinearModel, WrongCountModel

# The units the specification allows for a MetricDefinition
UNITS = {
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
}


def emf_problems(line: dict) -> list[str]:
    """What makes ``line`` not a valid EMF document (empty when valid)."""
    problems = []
    aws = line.get("_aws")
    if not isinstance(aws, dict):
        return ["no _aws object"]
    if set(aws) - {"Timestamp", "CloudWatchMetrics", "LogGroupName"}:
        problems.append(f"unknown _aws members {set(aws)}")
    if not isinstance(aws.get("Timestamp"), int) or isinstance(aws.get("Timestamp"), bool):
        problems.append("Timestamp is not an integer of epoch milliseconds")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return problems + ["CloudWatchMetrics is not a non-empty array"]
    for directive in directives:
        if set(directive) != {"Namespace", "Dimensions", "Metrics"}:
            problems.append(f"directive members {set(directive)}")
            continue
        if not isinstance(directive["Namespace"], str) or not 1 <= len(directive["Namespace"]) <= 255:
            problems.append("Namespace is not a 1-255 character string")
        for dimension_set in directive["Dimensions"]:
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                problems.append(f"dimension set {dimension_set!r} is not an array of at most 30 names")
                continue
            for name in dimension_set:
                if not isinstance(line.get(name), str) or not 1 <= len(line[name]) <= 1024:
                    problems.append(f"dimension {name!r} has no 1-1024 character string value at the root")
        if not isinstance(directive["Metrics"], list) or not 1 <= len(directive["Metrics"]) <= 100:
            problems.append("Metrics is not an array of 1-100 definitions")
            continue
        for metric in directive["Metrics"]:
            name = metric.get("Name")
            if (
                set(metric) - {"Name", "Unit", "StorageResolution"}
                or not isinstance(name, str)
                or not 1 <= len(name) <= 1024
            ):
                problems.append(f"metric definition {metric!r}")
            elif "Unit" in metric and metric["Unit"] not in UNITS:
                problems.append(f"unit {metric['Unit']!r} is not one CloudWatch knows")
            value = line.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"metric {name!r} has no number at the root")
    return problems


def test_emf_fields_are_valid_emf_with_the_agreed_names():
    # Given the fields for one failed prediction
    line = {
        "event": "request",
        **emf_fields("fraud-model", "v-123", predicted=True, failed=True, latency_ms=4.5, now_ms=1700000000000),
    }

    # Then it is valid EMF, namespace aurelius/ModelServer, one dimension set (ServiceName, ModelVersionId)
    assert emf_problems(line) == []
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "aurelius/ModelServer"
    assert directive["Dimensions"] == [["ServiceName", "ModelVersionId"]]
    assert {(m["Name"], m["Unit"]) for m in directive["Metrics"]} == {
        ("Predictions", "Count"),
        ("PredictionErrors", "Count"),
        ("PredictionLatency", "Milliseconds"),
    }
    assert (line["ServiceName"], line["ModelVersionId"]) == ("fraud-model", "v-123")
    assert (line["Predictions"], line["PredictionErrors"], line["PredictionLatency"]) == (1, 1, 4.5)


@pytest.mark.parametrize(
    "broken",
    [
        lambda line: line["_aws"].pop("Timestamp"),
        lambda line: line.pop("ModelVersionId"),
        lambda line: line.update(Predictions="1"),
        lambda line: line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="Requests"),
    ],
)
def test_the_emf_check_itself_catches_broken_lines(broken):
    # Given a valid line broken in one way / When checked / Then the problem is reported
    line = emf_fields("s", "v", predicted=True, failed=False, latency_ms=1.0)
    line = json.loads(json.dumps(line))
    broken(line)
    assert emf_problems(line) != []


def predict_lines(server, count: int) -> list[dict]:
    """The request lines of /predict once ``count`` of them are logged (the readiness probes'
    /health lines come and go in any number, so only /predict lines are counted)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in server.events("request") if line["path"] == "/predict"]
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    return [line for line in server.events("request") if line["path"] == "/predict"]


def test_predict_lines_carry_metrics_per_service_and_version(publish, start_server):
    # Given a server with SERVICE_NAME set
    published = publish(LinearModel([1.0]))
    server = start_server(published, SERVICE_NAME="fraud-model")

    # When it answers a prediction, a request with a bad body, and a health check
    assert call(server.port, "POST", "/predict", {"instances": [[2.0]]}).status == 200
    assert call(server.port, "POST", "/predict", b"{").status == 400
    assert call(server.port, "GET", "/health").status == 200
    # (two workers write their lines independently: pick each by its status, not by order)
    by_status = {line["status"]: line for line in predict_lines(server, 2)}

    # Then the prediction's line is valid EMF: one prediction, no error, its latency, this version
    ok = by_status[200]
    assert emf_problems(ok) == []
    assert (ok["ServiceName"], ok["ModelVersionId"]) == ("fraud-model", published.version_id)
    assert (ok["Predictions"], ok["PredictionErrors"]) == (1, 0)
    assert ok["PredictionLatency"] == ok["duration_ms"] >= 0
    # And the client's bad request is not a prediction: no metrics on its line, nor on /health's
    assert "_aws" not in by_status[400]
    assert not [line for line in server.events("request") if line["path"] == "/health" and "_aws" in line]


def test_a_5xx_of_predict_counts_as_a_prediction_error(publish, start_server):
    # Given a model whose output the server cannot use (500)
    published = publish(WrongCountModel())
    server = start_server(published)

    # When it is asked for a prediction
    assert call(server.port, "POST", "/predict", {"instances": [[1.0]]}).status == 500

    # Then its line counts one prediction and one prediction error, for that version
    line = predict_lines(server, 1)[-1]
    assert emf_problems(line) == []
    assert (line["status"], line["Predictions"], line["PredictionErrors"], line["ModelVersionId"]) == (
        500,
        1,
        1,
        published.version_id,
    )
