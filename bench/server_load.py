"""Row 6. The model server under load: gunicorn (pre-forked event-loop workers) next to the previous
standard-library server, in the same run; then workers 2 vs 1 and memory 2 workers vs 1.

Both servers run as their own process (`python -m aurelius_server`) against a moto S3 server on
127.0.0.1 and load a pickled model from it; the previous server's code is taken from git
history (`git archive c48d5a8 server/aurelius_server` into a temporary directory: the last
commit with the `ThreadingHTTPServer` version), so the repository keeps one server.

Load: a separate client process (so the client's Python does not share the server's
interpreter) opens N HTTP/1.1 keep-alive connections, one thread each, and sends
`POST /predict` with 8 rows of 3 numbers back to back for a fixed time (`--load-seconds`,
default 3 s) after a short warm-up; latency is measured per request in the client (send to
last byte), p50/p99 over all requests, throughput = requests / elapsed. Models: a trivial one
(row sums) and a CPU-bound one (a pure-Python loop calibrated on this machine to about 1 ms of
CPU time per `predict`). The new server runs with its default worker count (one per core here).

Workers: the CPU-bound model at 8 clients, WORKERS=2 vs WORKERS=1, three interleaved runs each,
best of each (goal >= 1.7x throughput). On a 2-core machine the load client and anything else
running share the two cores with the workers: the load average is in the notes.

Memory: a model of about 100 MiB of Python objects (lists of floats, as a tree ensemble or a
vocabulary would be), WORKERS=2 vs WORKERS=1, after 200 predictions; the whole server's
proportional set size (Pss in /proc/PID/smaps_rollup, summed over the master and its workers:
shared pages are split between the processes that share them) (goal <= 1.3x). The model is
loaded once in the master, `gc.freeze()` runs before the fork, so the workers' share of it stays
shared.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

from bench import REPO, Row, ratio

BASELINE_COMMIT = "c48d5a8"
ROWS = [[1.0, 2.0, 3.0]] * 8
BODY = json.dumps({"instances": ROWS}).encode()
CLIENTS = (1, 8, 32)
MEMORY_MODEL_MIB = 100


# ---- models (unpickled by the server processes: REPO is on their PYTHONPATH) ---------------


class TrivialModel:
    def predict(self, instances):
        return [sum(row) for row in instances]


class BusyModel:
    """Pure-Python work of ``loops`` iterations per predict() call."""

    def __init__(self, loops: int):
        self.loops = loops

    def predict(self, instances):
        total = 0
        for i in range(self.loops):
            total += i
        return [sum(row) + (total & 0) for row in instances]


class BigModel:
    """About ``mib`` MiB of small Python objects (GC-tracked lists of floats)."""

    def __init__(self, mib: int):
        rows = mib * 2**20 // 176  # a 3-float list: 56 + 3 * 8 list, 16 GC header, 3 * 24 floats, 24 slot
        self.table = [[float(i), float(i) + 0.5, float(i) + 0.25] for i in range(rows)]

    def predict(self, instances):
        return [sum(row) + self.table[len(row)][0] for row in instances]


def calibrate_loops(target_seconds: float = 0.001) -> int:
    """Loop steps for ``target_seconds`` of CPU per predict() (CPU time: other load on the machine
    does not shrink the work)."""
    loops = 10_000
    model = BusyModel(loops)
    while True:
        started = time.process_time()
        for _ in range(50):
            model.predict(ROWS)
        per_call = (time.process_time() - started) / 50
        if per_call > target_seconds / 4:
            return max(1, int(loops * target_seconds / per_call))
        loops *= 4
        model = BusyModel(loops)


# ---- the load client (its own process) ---------------------------------------------------


def _request(port: int, path: str = "/predict", body: bytes = BODY) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _one_exchange(sock: socket.socket, request: bytes, buffer: bytearray) -> int:
    sock.sendall(request)
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[:end]).lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            total = end + 4 + length
            while len(buffer) < total:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed mid-response")
                buffer += chunk
            status = int(head[9:12])
            del buffer[:total]
            return status
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buffer += chunk


def client_main(
    port: int, clients: int, seconds: float, warmup: float, path: str = "/predict", body: bytes = BODY
) -> dict[str, Any]:
    request = _request(port, path, body)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_at = time.monotonic() + 0.2
    measure_from = start_at + warmup
    stop_at = measure_from + seconds

    def worker(index: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        mine = latencies[index]
        while time.monotonic() < start_at:
            time.sleep(0.001)
        while True:
            began = time.monotonic()
            if began >= stop_at:
                break
            try:
                status = _one_exchange(sock, request, buffer)
            except OSError:
                errors[index] += 1
                sock.close()
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                buffer.clear()
                continue
            if status != 200:
                errors[index] += 1
            if began >= measure_from:
                mine.append(time.monotonic() - began)
        sock.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(value for per_client in latencies for value in per_client)
    return {
        "requests": len(every),
        "errors": sum(errors),
        "seconds": seconds,
        "p50_ms": statistics.median(every) * 1000 if every else None,
        "p99_ms": every[min(len(every) - 1, int(len(every) * 0.99))] * 1000 if every else None,
        "rps": len(every) / seconds,
    }


def client_command(
    port: int, clients: int, seconds: float, warmup: float = 0.5, path: str = "/predict", body: bytes = BODY
) -> list[str]:
    """The load client's command line (run it from REPO)."""
    return [
        sys.executable,
        "-m",
        "bench.server_load",
        "--port",
        str(port),
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        "--warmup",
        str(warmup),
        "--path",
        path,
        "--body",
        body.decode(),
    ]


def run_client(port: int, clients: int, seconds: float, warmup: float = 0.5) -> dict[str, Any]:
    done = subprocess.run(
        client_command(port, clients, seconds, warmup),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=seconds + warmup + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


# ---- servers -------------------------------------------------------------------------------


@contextmanager
def moto_s3() -> Iterator[tuple[Any, dict[str, str], str]]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    bucket = f"bench-models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    try:
        yield s3, env, bucket
    finally:
        server.stop()


def publish(s3: Any, bucket: str, model: Any, key: str) -> tuple[str, str]:
    body = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    version_id = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    return f"s3://{bucket}/{key}", version_id


@contextmanager
def baseline_server_dir() -> Iterator[Path]:
    """The previous server (stdlib ThreadingHTTPServer), extracted from git history."""
    archive = subprocess.run(
        ["git", "archive", BASELINE_COMMIT, "server/aurelius_server"], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="aurelius-baseline-") as directory:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        yield Path(directory) / "server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def open_sockets(pid: int) -> int:
    """How many sockets the process holds open (its listener and its connections)."""
    count = 0
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(entry).startswith("socket:")
        except OSError:
            pass
    return count


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the server has not exited 30 s later (its drain is shorter)."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextmanager
def running_server(
    server_dir: Path, aws: dict[str, str], uri: str, version_id: str, **settings: Any
) -> Iterator[subprocess.Popen]:
    port = _free_port()
    env = {
        **os.environ,
        **aws,
        "PYTHONPATH": os.pathsep.join([str(server_dir), str(REPO)]),
        "MODEL_S3_URI": uri,
        "MODEL_VERSION_ID": version_id,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **{name: str(value) for name, value in settings.items()},
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "aurelius_server"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process.port = port  # type: ignore[attr-defined]
    try:
        _wait_healthy(process, port)
        if "WORKERS" in settings:  # gunicorn starts its workers one after the other
            deadline = time.monotonic() + 20
            while len(_children(process.pid)) < int(settings["WORKERS"]) and time.monotonic() < deadline:
                time.sleep(0.05)
        yield process
    finally:
        stop(process)


def _wait_healthy(process: subprocess.Popen, port: int, timeout: float = 120) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was healthy")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server never answered /health 200")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _rollup(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0]) * 1024
    return values


def server_memory(pid: int) -> dict[str, int]:
    """Pss and Rss summed over the master and its workers, bytes."""
    pids = [pid, *_children(pid)]
    rollups = [_rollup(p) for p in pids]
    return {"processes": len(pids), "pss": sum(r["Pss"] for r in rollups), "rss": sum(r["Rss"] for r in rollups)}


def _warm(port: int, requests: int) -> None:
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(4)]
    request, buffers = _request(port), [bytearray() for _ in sockets]
    for i in range(requests):
        _one_exchange(sockets[i % 4], request, buffers[i % 4])
    for sock in sockets:
        sock.close()


# ---- rows ----------------------------------------------------------------------------------


def _fmt(result: dict[str, Any]) -> str:
    errors = f", {result['errors']} errors" if result["errors"] else ""
    return f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, {result['rps']:,.0f} req/s{errors}"


def run(
    load_seconds: float = 3.0, clients: tuple[int, ...] = CLIENTS, memory_mib: int = MEMORY_MODEL_MIB, **_: Any
) -> tuple[list[Row], dict]:
    loops = calibrate_loops()
    rows: list[Row] = []
    raw: dict[str, Any] = {"busy_loops": loops}
    new_dir = REPO / "server"
    with moto_s3() as (s3, aws, bucket), baseline_server_dir() as old_dir:
        models = {
            "trivial": publish(s3, bucket, TrivialModel(), "trivial.pkl"),
            f"CPU-bound (~1 ms pure Python, {loops:,} loop steps)": publish(s3, bucket, BusyModel(loops), "busy.pkl"),
        }
        for label, (uri, version_id) in models.items():
            results: dict[str, dict[int, dict]] = {"new": {}, "old": {}}
            for side, directory in (("new", new_dir), ("old", old_dir)):
                with running_server(directory, aws, uri, version_id) as server:
                    for count in clients:
                        results[side][count] = run_client(server.port, count, load_seconds)
            raw[label] = results
            for count in clients:
                new, old = results["new"][count], results["old"][count]
                notes = f"throughput ratio; p50 ratio {ratio(new['p50_ms'], old['p50_ms'])}"
                if label == "trivial" and count == 1:
                    notes += f"; goal p50 <= 1 ms: {'met' if new['p50_ms'] <= 1 else 'NOT met'}"
                rows.append(
                    Row(
                        "6",
                        f"{label} model, {count} keep-alive client(s), {load_seconds:g} s: p50 / p99 / throughput",
                        f"{_fmt(new)} (event-loop workers)",
                        f"{_fmt(old)} (previous stdlib server)",
                        ratio(new["rps"], old["rps"]),
                        notes,
                    )
                )

        busy_uri, busy_version = models[f"CPU-bound (~1 ms pure Python, {loops:,} loop steps)"]
        by_workers: dict[int, dict] = {}
        for _ in range(3):  # interleaved, best of 3: other load on the machine comes and goes
            for workers in (2, 1):
                with running_server(new_dir, aws, busy_uri, busy_version, WORKERS=workers) as server:
                    result = run_client(server.port, 8, load_seconds)
                if workers not in by_workers or result["rps"] > by_workers[workers]["rps"]:
                    by_workers[workers] = result
        raw["workers"] = by_workers
        scale = by_workers[2]["rps"] / by_workers[1]["rps"]
        rows.append(
            Row(
                "6",
                "CPU-bound model, 8 keep-alive clients: throughput with 2 workers vs 1 (best of 3 each, interleaved)",
                f"{by_workers[2]['rps']:,.0f} req/s (2 workers)",
                f"{by_workers[1]['rps']:,.0f} req/s (1 worker)",
                ratio(by_workers[2]["rps"], by_workers[1]["rps"]),
                f"goal >= 1.7: {'met' if scale >= 1.7 else 'NOT met'}; the load client shares the cores; "
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end of the run",
            )
        )

        big_uri, big_version = publish(s3, bucket, BigModel(memory_mib), "big.pkl")
        memory = {}
        for workers in (2, 1):
            with running_server(new_dir, aws, big_uri, big_version, WORKERS=workers) as server:
                _warm(server.port, 200)
                memory[workers] = server_memory(server.pid)
        raw["memory"] = memory
        growth = memory[2]["pss"] / memory[1]["pss"]
        rows.append(
            Row(
                "6",
                f"memory of the whole server (Pss, master + workers) for a {memory_mib} MiB model, 2 workers vs 1",
                f"{memory[2]['pss'] / 2**20:.0f} MiB ({memory[2]['processes']} processes)",
                f"{memory[1]['pss'] / 2**20:.0f} MiB ({memory[1]['processes']} processes)",
                ratio(memory[2]["pss"], memory[1]["pss"]),
                f"goal <= 1.3: {'met' if growth <= 1.3 else 'NOT met'}; Rss summed (counts shared pages twice): "
                f"{memory[2]['rss'] / 2**20:.0f} vs {memory[1]['rss'] / 2**20:.0f} MiB",
            )
        )
    return rows, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_load", description="the load client (one process)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--path", default="/predict")
    parser.add_argument("--body", default=BODY.decode(), help="the JSON body of every request")
    args = parser.parse_args(argv)
    print(json.dumps(client_main(args.port, args.clients, args.seconds, args.warmup, args.path, args.body.encode())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
