"""Row 9. What the server adds to a real scikit-learn pipeline's predict, per request.

Two iris pipelines (StandardScaler + LogisticRegression, trained here on the data scikit-learn
ships): one fitted on a numpy array, served numbers-only rows (`{"instances": [[5.1, 3.5, 1.4,
0.2]]}`: the fast path, no pandas), and one fitted on a DataFrame, served a named-feature object
(`{"instances": [{"sepal_length": 5.1, ...}]}`: the server builds a DataFrame in the model's
column order). Each is pickled, uploaded to a moto S3 server on 127.0.0.1 and served by
`python -m aurelius_server` (WORKERS=1, other settings default).

Measured: the server's `POST /predict` p50 at 1 HTTP/1.1 keep-alive client (a raw socket in
this process, TCP_NODELAY, send to last byte; `--overhead-requests` requests after 200 warm-up
requests), minus the same model's in-process `predict` p50 on the same instance (numpy rows: the
parsed list; named features: a DataFrame built beforehand), measured just before and just after
the server run (median of both). So the difference is JSON parsing, validation, the DataFrame
construction where there is one, HTTP and the response. Goal <= 0.3 ms for both.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench import REPO, Row, ratio
from bench.server_load import moto_s3, stop

GOAL_MS = 0.3
WARMUP = 200
ROW = [5.1, 3.5, 1.4, 0.2]
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _pipelines() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_iris(as_frame=True).frame
    features, target = frame.iloc[:, :4], frame["target"]
    features.columns = NAMES
    numeric = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features.to_numpy(), target)
    named = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, target)
    return numeric, named


def _p50_ms(call: Callable[[], Any], count: int) -> float:
    for _ in range(min(count, WARMUP)):
        call()
    times = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


@contextmanager
def _server(aws: dict[str, str], uri: str, version_id: str) -> Iterator[int]:
    env = {
        **os.environ,
        **aws,
        "PYTHONPATH": str(REPO / "server"),
        "MODEL_S3_URI": uri,
        "MODEL_VERSION_ID": version_id,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "WORKERS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "aurelius_server"], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        port = None
        for line in process.stdout:  # JSON lines: "listening" names the port, "serving" means ready
            event = json.loads(line)
            port = event.get("port", port) if event["event"] == "listening" else port
            if event["event"] == "serving":
                break
            if event["event"] == "startup_failed":
                raise RuntimeError(f"the server did not start: {event['message']}")
        else:
            raise RuntimeError(f"the server exited with {process.wait()} before serving")
        _drain(process)
        yield _wait_accepting(port)
    finally:
        stop(process)


def _drain(process: subprocess.Popen) -> None:
    """Keep reading the server's log (one line per request) so that its pipe never fills."""
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()


def _wait_accepting(port: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return port
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server never answered /health 200")


def _exchange(sock: socket.socket, request: bytes) -> None:
    sock.sendall(request)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, body = buffer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the server answered {head.splitlines()[0]!r}")
    length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        body += sock.recv(65536)


def server_p50_ms(port: int, document: dict[str, Any], count: int) -> float:
    body = json.dumps(document).encode()
    request = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _p50_ms(lambda: _exchange(sock, request), count)


def measure(
    s3: Any, aws: dict[str, str], bucket: str, model: Any, model_input: Any, document: dict, count: int
) -> dict:
    key = f"overhead/{uuid.uuid4().hex[:12]}.pkl"
    version_id = s3.put_object(Bucket=bucket, Key=key, Body=pickle.dumps(model))["VersionId"]
    before = _p50_ms(lambda: model.predict(model_input), count)
    with _server(aws, f"s3://{bucket}/{key}", version_id) as port:
        served = server_p50_ms(port, document, count)
    after = _p50_ms(lambda: model.predict(model_input), count)
    in_process = statistics.median([before, after])
    return {"server": served, "in_process": in_process, "overhead": served - in_process}


def run(requests: int = 2000, **_: Any) -> tuple[list[Row], dict]:
    import pandas

    numeric, named = _pipelines()
    record = dict(zip(NAMES, ROW, strict=True))
    with moto_s3() as (s3, aws, bucket):
        rows = measure(s3, aws, bucket, numeric, [ROW], {"instances": [ROW]}, requests)
        frame = measure(
            s3, aws, bucket, named, pandas.DataFrame([record], columns=NAMES), {"instances": [record]}, requests
        )
    result = []
    for label, shape, numbers in (
        ("numbers-only rows (list, no pandas)", '{"instances": [[5.1, 3.5, 1.4, 0.2]]}', rows),
        ("named features (DataFrame built by the server)", '{"instances": [{"sepal_length": 5.1, ...}]}', frame),
    ):
        met = "met" if numbers["overhead"] <= GOAL_MS else "NOT met"
        result.append(
            Row(
                "9",
                f"/predict overhead, iris pipeline, {label}: server p50 − in-process predict p50",
                f"{numbers['overhead']:.3f} ms",
                f"goal ≤ {GOAL_MS} ms",
                ratio(numbers["overhead"], GOAL_MS),
                f"{shape}; server p50 {numbers['server']:.3f} ms, in-process {numbers['in_process']:.3f} ms, "
                f"{requests} requests on 1 keep-alive connection, WORKERS=1; goal {met}",
            )
        )
    return result, {"rows": rows, "frame": frame}


if __name__ == "__main__":
    table, raw = run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    print(json.dumps(raw, indent=2))
