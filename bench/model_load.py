"""Row 7. Loading a big model: peak memory and download time of the server's loader.

A model of 200 MiB (`--model-mib`; a pickled object holding that many random bytes) is uploaded
to a moto S3 server on 127.0.0.1 (versioned bucket). Each measurement runs in a fresh
interpreter (`python -m bench.model_load --measure ...`) so that peak memory is that load's
alone:

- memory: `load_model()` of the pinned version with the current loader (HeadObject, ranged
  download to a temporary file, one verifying pass over the file, `pickle.load` from it) and
  with the previous loader, taken from git history (`git archive c48d5a8
  server/aurelius_server`: GetObject read into memory, then `pickle.loads`). Reported: peak RSS
  (VmHWM in /proc/self/status) ÷ model size, and the growth during the load (peak − RSS before
  the call, after imports and client creation) ÷ model size. Goal: 1.2; judged on the growth,
  since the interpreter with boto3 alone is about a third of a 200 MiB model before any load.
- download time: `download_fileobj` of that version into a temporary file with the loader's
  TransferConfig (8 MiB ranges, 8 at a time) vs a single stream (threshold above the size),
  median of 3 each. moto is one Python process: parallel ranges are slower than one stream
  here, unlike against S3.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import REPO, Row, ratio
from bench.server_load import baseline_server_dir, moto_s3

MIB = 1024 * 1024


class BlobModel:
    """``size`` random bytes and a predict() that does not touch them."""

    def __init__(self, size: int):
        self.blob = os.urandom(size)

    def predict(self, instances):
        return [len(row) for row in instances]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure_load(uri: str, version_id: str) -> dict[str, Any]:
    """In a fresh interpreter whose PYTHONPATH holds one aurelius_server: load once."""
    from aurelius_server.config import parse_s3_uri

    try:
        from aurelius_server.pinned_model import load_model
        from aurelius_server.s3_download import make_s3_client
    except ImportError:  # the previous loader (git history) had one module for both
        from aurelius_server.loader import load_model, make_s3_client

    s3 = make_s3_client()
    s3.list_buckets()  # the client's first call (credentials, endpoint) before the baseline
    before = _status_kib("VmRSS") * 1024
    started = time.perf_counter()
    loaded = load_model(parse_s3_uri(uri), version_id, s3)
    seconds = time.perf_counter() - started
    return {"before": before, "peak": _status_kib("VmHWM") * 1024, "seconds": seconds, "size": loaded.size_bytes}


def measure_download(bucket: str, key: str, version_id: str, size: int) -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig

    from aurelius_server.s3_download import TRANSFER, make_s3_client

    s3 = make_s3_client()
    single = TransferConfig(multipart_threshold=size + 1, use_threads=False)
    times: dict[str, list[float]] = {"ranged": [], "single": []}
    for _ in range(3):
        for name, config in (("ranged", TRANSFER), ("single", single)):
            with tempfile.TemporaryFile() as handle:
                started = time.perf_counter()
                s3.download_fileobj(
                    Bucket=bucket, Key=key, Fileobj=handle, ExtraArgs={"VersionId": version_id}, Config=config
                )
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _in_fresh_interpreter(server_dir: Path, aws: dict[str, str], *args: str) -> dict[str, Any]:
    env = {**os.environ, **aws, "PYTHONPATH": os.pathsep.join([str(server_dir), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-m", "bench.model_load", *args],
        cwd=REPO,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(model_mib: int = 200, **_: Any) -> tuple[list[Row], dict]:
    size = model_mib * MIB
    with moto_s3() as (s3, aws, bucket), baseline_server_dir() as old_dir:
        body = pickle.dumps(BlobModel(size), protocol=pickle.HIGHEST_PROTOCOL)
        version_id = s3.put_object(Bucket=bucket, Key="big.pkl", Body=body)["VersionId"]
        del body
        uri = f"s3://{bucket}/big.pkl"
        new = _in_fresh_interpreter(REPO / "server", aws, "--measure", "load", "--uri", uri, "--version", version_id)
        old = _in_fresh_interpreter(old_dir, aws, "--measure", "load", "--uri", uri, "--version", version_id)
        download = _in_fresh_interpreter(
            REPO / "server",
            aws,
            "--measure",
            "download",
            "--bucket",
            bucket,
            "--key",
            "big.pkl",
            "--version",
            version_id,
            "--size",
            str(new["size"]),
        )
    loaded_size = new["size"]

    def peak(result: dict[str, Any]) -> str:
        return (
            f"peak RSS {result['peak'] / MIB:.0f} MiB = {result['peak'] / loaded_size:.2f} × model; "
            f"growth during the load {(result['peak'] - result['before']) / loaded_size:.2f} × model; {result['seconds']:.1f} s"
        )

    goal = (new["peak"] - new["before"]) / loaded_size
    rows = [
        Row(
            "7",
            f"loading a {model_mib} MiB model from moto on 127.0.0.1: peak memory ÷ model size",
            f"{peak(new)} (ranged download to a file, pickle.load from it)",
            f"{peak(old)} (previous loader: whole body in memory, pickle.loads)",
            ratio(new["peak"], old["peak"]),
            f"ratio of peak RSS; goal <= 1.2 read as the load's own memory (growth ÷ size): "
            f"{'met' if goal <= 1.2 else 'NOT met'}; the {new['before'] / MIB:.0f} MiB of interpreter, boto3 and "
            f"client before the load are there with any loader",
        ),
        Row(
            "7",
            f"download of the {model_mib} MiB version: ranged (8 MiB × 8 in parallel) vs one stream, median of 3",
            f"{download['ranged']:.2f} s ranged",
            f"{download['single']:.2f} s single stream",
            ratio(download["ranged"], download["single"]),
            "moto answers every range from one Python process (slower than one stream here); against S3, "
            "parallel byte-range GETs are AWS's advice for throughput (S3 performance guidelines, "
            "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance-guidelines.html)",
        ),
    ]
    return rows, {"new": new, "old": old, "download": download}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.model_load", description="one measurement, fresh interpreter"
    )
    parser.add_argument("--measure", choices=["load", "download"], required=True)
    parser.add_argument("--uri")
    parser.add_argument("--bucket")
    parser.add_argument("--key")
    parser.add_argument("--version", required=True)
    parser.add_argument("--size", type=int)
    args = parser.parse_args(argv)
    if args.measure == "load":
        result = measure_load(args.uri, args.version)
    else:
        result = measure_download(args.bucket, args.key, args.version, args.size)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
