"""Row 10. The model server next to KServe 0.21's Python model server, same model, same client,
same run.

Model: a scikit-learn pipeline (`StandardScaler` + `LogisticRegression`) trained here on the
iris data scikit-learn ships, pickled; aurelius loads it from a moto S3 server on 127.0.0.1,
KServe from a local file through a minimal `kserve.Model` (a script this module writes:
`load` unpickles, `predict` calls the pipeline's `predict` on the V1 `instances`).
KServe runs in its own virtual environment, made on demand (`$AURELIUS_KSERVE_VENV`, else
`<tmp>/aurelius-kserve-0.21.0`: `pip install kserve==0.21.0` and this scikit-learn version);
if that cannot be installed the row says so and the other rows still run. KServe runs as
shipped (one process, its defaults), aurelius as shipped (`python -m aurelius_server`).

Load: the load client of row 6 (its own process; N keep-alive HTTP/1.1 connections, one
thread each, back to back), body `{"instances": [[5.1, 3.5, 1.4, 0.2]]}` to `POST /predict`
and to KServe's `POST /v1/models/iris:predict`; 0.5 s warm-up, then `--load-seconds`.
Two interleaved rounds (aurelius 1 worker, aurelius 2 workers, KServe), best of each.

- overhead at 1 client: server p50 minus the same pipeline's in-process `predict` p50 on
  the same row (measured in this process, median of 2,000 calls). Goal <= 0.3 ms.
- 8 clients, 1 aurelius worker vs KServe: requests/s. Goal >= 1.0.
- 8 clients, 2 aurelius workers vs KServe: requests/s (goal >= 1.3) and each worker's share of
  the work: its CPU time during the load (utime + stime in /proc/PID/stat) over the workers'
  total (every request costs about the same), and the connections it held mid-run (sockets in
  /proc/PID/fd). Goal: each worker >= 40 %.

- slow clients: 100 connections that send a request's headers one line per second
  (slowloris, from this process), and 1 keep-alive client: its `/predict` p50, and `/health` on
  a new connection (median of 5), 1 aurelius worker vs KServe. Goals: p50 <= 5 ms, `/health`
  <= 1 s.

The machine has 2 cores shared with the load client (and, on a developer's machine, anything
else running): the load average at the end is in the notes.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import REPO, Row, ratio
from bench.server_load import _children, _free_port, client_command, moto_s3, open_sockets, running_server, stop
from bench.server_overhead import ROW, WARMUP, _times

KSERVE_VERSION = "0.21.0"
BODY = json.dumps({"instances": [ROW]}).encode()
ROUNDS = 2
NUMBER = "10"
SLOW_CONNECTIONS = 100

KSERVE_SCRIPT = '''\
"""Written by aurelius's bench/kserve_compare.py: the iris pipeline behind KServe's V1 API."""
import pickle
import sys

import kserve


class Pipeline(kserve.Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self):
        with open(self.path, "rb") as handle:
            self.model = pickle.load(handle)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        return {"predictions": self.model.predict(payload["instances"]).tolist()}


if __name__ == "__main__":
    kserve.ModelServer(http_port=int(sys.argv[2]), enable_grpc=False).start([Pipeline("iris", sys.argv[1])])
'''


def iris_pipeline() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_iris(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, target)


def in_process_p50(model: Any, calls: int = 2000) -> float:
    """Median seconds of ``model.predict([ROW])`` (after row 9's warm-up calls)."""
    rows = [ROW]
    _times(lambda: model.predict(rows), WARMUP)
    return statistics.median(_times(lambda: model.predict(rows), calls))


# ---- KServe, in its own virtual environment --------------------------------------------------


def kserve_python() -> Path:
    """The KServe venv's interpreter, made on first use. Raises RuntimeError when it cannot be."""
    import sklearn

    venv = Path(os.environ.get("AURELIUS_KSERVE_VENV") or Path(tempfile.gettempdir()) / "aurelius-kserve-0.21.0")
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import kserve, sklearn; assert sklearn.__version__ == {sklearn.__version__!r}"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"kserve=={KSERVE_VERSION}",
            f"scikit-learn=={sklearn.__version__}",
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[-3:])} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return python


@contextmanager
def running_kserve(python: Path, model_path: Path) -> Iterator[int]:
    script = python.parent.parent / "aurelius_iris_model.py"
    script.write_text(KSERVE_SCRIPT, encoding="utf-8")
    port = _free_port()
    process = subprocess.Popen(
        [str(python), str(script), str(model_path), str(port)],
        cwd=script.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(process, port, "/v1/models/iris")
        yield port
    finally:
        stop(process)


def _wait_ready(process: subprocess.Popen, port: int, path: str, timeout: float = 120) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"KServe exited with {process.returncode} before it was ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            status = connection.getresponse().status
            connection.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("KServe never became ready")


# ---- load, with the share of each worker -------------------------------------------------


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def load(port: int, clients: int, seconds: float, path: str, workers: list[int] | None = None) -> dict[str, Any]:
    """Run the load client; with ``workers``, each one's share of CPU time and of connections."""
    workers = workers or []
    before_cpu = {pid: _cpu_ticks(pid) for pid in workers}
    before_sockets = {pid: open_sockets(pid) for pid in workers}
    client = subprocess.Popen(
        client_command(port, clients, seconds, 0.5, path, BODY), cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5 + seconds / 2)
    held = {pid: open_sockets(pid) - before_sockets[pid] for pid in workers}
    out, _ = client.communicate(timeout=seconds + 60)
    if client.returncode != 0:
        raise RuntimeError("the load client failed")
    result = json.loads(out)
    if workers:
        used = {pid: _cpu_ticks(pid) - before_cpu[pid] for pid in workers}
        total = sum(used.values()) or 1
        result["cpu_share"] = sorted((used[pid] / total for pid in workers), reverse=True)
        result["connections"] = sorted(held.values(), reverse=True)
    return result


@contextmanager
def slow_headers(port: int, count: int = SLOW_CONNECTIONS) -> Iterator[None]:
    """``count`` connections sending a request's header block one line per second."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
    for sock in sockets:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    stop = threading.Event()

    def trickle() -> None:
        line = 0
        while not stop.wait(1.0):
            line += 1
            for sock in sockets:
                try:
                    sock.send(f"X-Line-{line}: {line}\r\n".encode())
                except OSError:
                    pass

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)
        yield
    finally:
        stop.set()
        thread.join(5)
        for sock in sockets:
            sock.close()


def health_seconds(port: int, path: str, tries: int = 5) -> float:
    """Median time of a GET on a new connection (what a load balancer's health check does)."""
    import http.client

    times = []
    for _ in range(tries):
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()
            times.append(time.perf_counter() - started)
        except OSError:
            times.append(float("inf"))
    return statistics.median(times)


def _best(results: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return min(results, key=lambda r: r["p50_ms"]) if key == "p50_ms" else max(results, key=lambda r: r["rps"])


def measure(model: Any, python: Path | None, load_seconds: float) -> dict[str, Any]:
    """Every load run: aurelius (1 and 2 workers) and KServe, interleaved; then under slow clients."""
    runs: dict[str, Any] = {"one": [], "w1": [], "w2": [], "kserve_one": [], "kserve_8": [], "slow": {}}
    kserve_path = "/v1/models/iris:predict"
    with moto_s3() as (s3, aws, bucket), tempfile.TemporaryDirectory(prefix="aurelius-kserve-model-") as tmp:
        body = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        version_id = s3.put_object(Bucket=bucket, Key="iris/model.pkl", Body=body)["VersionId"]
        uri = f"s3://{bucket}/iris/model.pkl"
        model_path = Path(tmp) / "model.pkl"
        model_path.write_bytes(body)
        server_dir = REPO / "server"
        for _ in range(ROUNDS):
            with running_server(server_dir, aws, uri, version_id, WORKERS=1) as server:
                runs["one"].append(load(server.port, 1, load_seconds, "/predict"))
                runs["w1"].append(load(server.port, 8, load_seconds, "/predict"))
            with running_server(server_dir, aws, uri, version_id, WORKERS=2) as server:
                runs["w2"].append(load(server.port, 8, load_seconds, "/predict", _children(server.pid)))
            if python is not None:
                with running_kserve(python, model_path) as port:
                    runs["kserve_one"].append(load(port, 1, load_seconds, kserve_path))
                    runs["kserve_8"].append(load(port, 8, load_seconds, kserve_path))
        with running_server(server_dir, aws, uri, version_id, WORKERS=1) as server, slow_headers(server.port):
            runs["slow"]["aurelius"] = {
                **load(server.port, 1, load_seconds, "/predict"),
                "health_s": health_seconds(server.port, "/health"),
            }
        if python is not None:
            with running_kserve(python, model_path) as port, slow_headers(port):
                runs["slow"]["kserve"] = {
                    **load(port, 1, load_seconds, kserve_path),
                    "health_s": health_seconds(port, "/v1/models/iris"),
                }
    return runs


def run(load_seconds: float = 3.0, **_: Any) -> tuple[list[Row], dict]:
    model = iris_pipeline()
    predict_ms = in_process_p50(model) * 1000
    try:
        python: Path | None = kserve_python()
        missing = ""
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        python, missing = None, f"KServe {KSERVE_VERSION} could not be installed: {exc}"
    runs = measure(model, python, load_seconds)
    return rows(runs, predict_ms, load_seconds, missing), {"in_process_predict_p50_ms": predict_ms, "runs": runs}


def rows(runs: dict[str, Any], predict_ms: float, load_seconds: float, missing: str) -> list[Row]:
    one, w1, w2 = _best(runs["one"], "p50_ms"), _best(runs["w1"], "rps"), _best(runs["w2"], "rps")
    k_one = _best(runs["kserve_one"], "p50_ms") if runs["kserve_one"] else None
    k_8 = _best(runs["kserve_8"], "rps") if runs["kserve_8"] else None
    overhead = one["p50_ms"] - predict_ms
    k_overhead = k_one["p50_ms"] - predict_ms if k_one else None
    rounds = f"best of {ROUNDS} interleaved rounds"
    load_note = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end"

    def kserve_cell(text: str) -> str:
        return missing or text

    found = [
        Row(
            NUMBER,
            f"iris pipeline, 1 keep-alive client, {load_seconds:g} s: server p50 minus in-process predict p50 "
            f"({predict_ms:.3f} ms)",
            f"{overhead:.3f} ms (p50 {one['p50_ms']:.3f} ms, {one['rps']:,.0f} req/s)",
            kserve_cell(f"{k_overhead:.3f} ms (p50 {k_one['p50_ms']:.3f} ms) (KServe {KSERVE_VERSION})")
            if k_one
            else kserve_cell(""),
            ratio(overhead, k_overhead) if k_overhead else "n/a",
            f"goal <= 0.3 ms: {'met' if overhead <= 0.3 else 'NOT met'}; {rounds}",
        ),
        Row(
            NUMBER,
            f"iris pipeline, 8 keep-alive clients, {load_seconds:g} s: throughput, 1 aurelius worker vs KServe",
            f"{w1['rps']:,.0f} req/s (p50 {w1['p50_ms']:.2f} ms, p99 {w1['p99_ms']:.2f} ms)",
            kserve_cell(f"{k_8['rps']:,.0f} req/s (p50 {k_8['p50_ms']:.2f} ms, p99 {k_8['p99_ms']:.2f} ms)")
            if k_8
            else kserve_cell(""),
            ratio(w1["rps"], k_8["rps"]) if k_8 else "n/a",
            (f"goal >= 1.0: {'met' if w1['rps'] >= k_8['rps'] else 'NOT met'}; " if k_8 else "") + rounds,
        ),
    ]
    shares = ", ".join(f"{share:.0%}" for share in w2["cpu_share"])
    held = " / ".join(str(count) for count in w2["connections"])
    goal_rps = k_8 is not None and w2["rps"] >= 1.3 * k_8["rps"]
    goal_share = min(w2["cpu_share"]) >= 0.4
    found.append(
        Row(
            NUMBER,
            f"iris pipeline, 8 keep-alive clients, {load_seconds:g} s: throughput, 2 aurelius workers vs KServe; "
            "each worker's share",
            f"{w2['rps']:,.0f} req/s (p50 {w2['p50_ms']:.2f} ms); workers' CPU shares {shares}; "
            f"connections held {held}",
            kserve_cell(f"{k_8['rps']:,.0f} req/s (one process)") if k_8 else kserve_cell(""),
            ratio(w2["rps"], k_8["rps"]) if k_8 else "n/a",
            (f"goal >= 1.3: {'met' if goal_rps else 'NOT met'}; " if k_8 else "")
            + f"goal each worker >= 40 %: {'met' if goal_share else 'NOT met'}; {rounds}; {load_note}",
        )
    )
    ours, theirs = runs["slow"]["aurelius"], runs["slow"].get("kserve")
    slow_ok = ours["p50_ms"] <= 5 and ours["health_s"] <= 1
    found.append(
        Row(
            NUMBER,
            f"iris pipeline, 1 keep-alive client with {SLOW_CONNECTIONS} slow-header connections open, "
            f"{load_seconds:g} s: /predict p50, /health on a new connection (1 worker)",
            f"p50 {ours['p50_ms']:.2f} ms, {ours['rps']:,.0f} req/s, {ours['errors']} errors; "
            f"/health {ours['health_s'] * 1000:.1f} ms",
            kserve_cell(
                f"p50 {theirs['p50_ms']:.2f} ms, {theirs['rps']:,.0f} req/s; /health {theirs['health_s'] * 1000:.1f} ms"
            )
            if theirs
            else kserve_cell(""),
            ratio(ours["p50_ms"], theirs["p50_ms"]) if theirs else "n/a",
            f"goal p50 <= 5 ms and /health <= 1 s: {'met' if slow_ok else 'NOT met'}; one run",
        )
    )
    return found


if __name__ == "__main__":
    found, data = run(load_seconds=float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
    for row in found:
        print(row)
    print(json.dumps(data, default=str)[:4000])
