"""CloudWatch embedded metric format (EMF) fields for the /predict log line.

A JSON log line with an ``_aws`` object is turned into metrics by CloudWatch Logs when it
reaches a log group (the awslogs driver ships the container's stdout): no agent and no
PutMetricData call. Structure, per "Specification: Embedded metric format"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
``_aws.Timestamp`` (epoch milliseconds), ``_aws.CloudWatchMetrics`` = one directive with
``Namespace``, ``Dimensions`` (a list of dimension-name lists) and ``Metrics`` (``Name``,
``Unit``); every dimension and metric named there is a top-level member of the same line
(dimension values strings, metric values numbers).
"""

from __future__ import annotations

import time
from typing import Any

NAMESPACE = "aurelius/ModelServer"
DIMENSIONS = [["ServiceName", "ModelVersionId"]]
METRICS = [
    {"Name": "Predictions", "Unit": "Count"},
    {"Name": "PredictionErrors", "Unit": "Count"},
    {"Name": "PredictionLatency", "Unit": "Milliseconds"},
]


def emf_fields(
    service_name: str,
    model_version_id: str,
    *,
    predicted: bool,
    failed: bool,
    latency_ms: float,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """The members to add to one /predict log line: ``_aws`` plus the dimension and metric values."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if now_ms is None else now_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": DIMENSIONS, "Metrics": METRICS}],
        },
        "ServiceName": service_name,
        "ModelVersionId": model_version_id,
        "Predictions": 1 if predicted else 0,
        "PredictionErrors": 1 if failed else 0,
        "PredictionLatency": latency_ms,
    }
