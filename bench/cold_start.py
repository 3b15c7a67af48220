"""Row 1. Cold start: importing a handler and building its clients, next to bare boto3.

Each sample is a fresh `python -c` interpreter (the way Lambda starts an execution environment),
timing inside the interpreter from before the first import to after the last client exists, so
interpreter start-up (the same for all) is left out. A handler sample loads
functions/<name>/app.py by path with the function's directory first on sys.path, as in its
Lambda artifact, and builds the two clients every reconcile uses (S3, CloudFormation). The
baseline is the issue's: `import boto3; boto3.client("s3")`; a second baseline builds the same
two clients, so the rest is aurelius and aws-lambda-powertools. One warm-up round is discarded
(it writes the .pyc files), then the variants take turns, ``runs`` times each; the table shows
the medians.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench import REPO, Row, median, ms, ratio

FUNCTIONS = ("redeploy_service", "scheduled_refresh")

HANDLER = """
import sys, time
t0 = time.perf_counter()
import importlib.util
sys.path.insert(0, {directory!r})
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.runtime.clients.get("s3")
module.runtime.clients.get("cloudformation")
print(time.perf_counter() - t0)
"""

BARE = """
import time
t0 = time.perf_counter()
import boto3
{clients}
print(time.perf_counter() - t0)
"""

ONE_CLIENT = 'boto3.client("s3")'
TWO_CLIENTS = 'boto3.client("s3"); boto3.client("cloudformation")'


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="bench",
        POWERTOOLS_METRICS_NAMESPACE="aurelius",
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up round writes .pyc files, as a deploy would ship
    return env


def _variants() -> dict[str, str]:
    variants = {}
    for function in FUNCTIONS:
        directory = REPO / "functions" / function
        variants[function] = HANDLER.format(directory=str(directory), path=str(directory / "app.py"))
    variants["boto3 + 1 client"] = BARE.format(clients=ONE_CLIENT)
    variants["boto3 + 2 clients"] = BARE.format(clients=TWO_CLIENTS)
    return variants


def _sample(code: str, env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"cold-start sample failed: {done.stderr.strip()[-400:]}")
    return float(done.stdout.strip().splitlines()[-1])


def measure(runs: int) -> dict[str, list[float]]:
    env, variants = _environment(), _variants()
    for code in variants.values():  # warm-up: .pyc files, disk cache
        _sample(code, env)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, code in variants.items():
            samples[name].append(_sample(code, env))
    return samples


def run(runs: int = 11, **_) -> tuple[list[Row], dict]:
    samples = measure(runs)
    medians = {name: median(values) for name, values in samples.items()}
    bare, bare_two = medians["boto3 + 1 client"], medians["boto3 + 2 clients"]
    rows = [
        Row(
            "1",
            f"cold start `{function}`: import + S3 & CloudFormation clients (median of {runs} fresh interpreters)",
            ms(medians[function]),
            f"{ms(bare)} (`import boto3` + 1 client)",
            ratio(medians[function], bare),
            f"{ms(bare_two)} for boto3 + the same 2 clients; the {ms(medians[function] - bare_two)} "
            "beyond that is aurelius + aws-lambda-powertools",
        )
        for function in FUNCTIONS
    ]
    return rows, {"cold_start_seconds": samples}


if __name__ == "__main__":
    print(json.dumps(measure(3), indent=2))
