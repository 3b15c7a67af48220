"""Row 1. Cold start: importing a handler and building its clients, next to bare boto3.

Each sample is a fresh interpreter that sees only what a Lambda execution environment holds:
`python -I -S` (no site-packages, no PYTHON* variables) with sys.path set to the function's
artifact, then the powertools layer, then the runtime's own packages, Lambda's order. The
artifact is functions/<name>/ (app.py and the aurelius core through its symlinks: what
functions/build-function.mk copies for `sam build`). The runtime's packages are boto3 and its
dependencies; the layer is aws-lambda-powertools at the version pinned in requirements.lock
and its own dependencies. Both are linked from this virtual environment into a temporary
directory, distribution by distribution, so nothing else can be imported.

Timed inside the interpreter, from before the first import to after the last client exists, so
interpreter start-up (the same for all) is left out. The ratio uses CPU time (process_time):
this machine is shared, and wall time then measures the neighbours as much as the imports
(the wall-time figures are shown too). A handler sample imports app and builds
the two clients every reconcile uses (S3, CloudFormation); the comparison imports boto3 and
builds the same two clients, in the same kind of interpreter with the runtime's packages only.
The samples run on `python3.14` (the functions' runtime, template.yaml) when it is on PATH,
else on this interpreter; the notes say which. One warm-up round is discarded (it writes the
.pyc files, as the runtime's are precompiled), then the variants take turns, ``runs`` times
each; the table shows the medians. Goal (issue 12): at most 1.15 × the comparison.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

from bench import REPO, Row, median, ms, ratio

FUNCTIONS = ("redeploy_service", "scheduled_refresh")
GOAL = 1.15
# What the Lambda Python runtime provides: boto3 and its dependencies.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
# The powertools layer: the library and what it requires (boto3 is left to the runtime).
LAYER_DISTRIBUTIONS = ("aws-lambda-powertools", "jmespath", "typing-extensions")

HANDLER = """
import sys, time
sys.path[:0] = {paths!r}
c0, t0 = time.process_time(), time.perf_counter()
import app
app.runtime.clients.get("s3")
app.runtime.clients.get("cloudformation")
print(time.process_time() - c0, time.perf_counter() - t0)
"""

BARE = """
import sys, time
sys.path[:0] = {paths!r}
c0, t0 = time.process_time(), time.perf_counter()
import boto3
boto3.client("s3"); boto3.client("cloudformation")
print(time.process_time() - c0, time.perf_counter() - t0)
"""


def locked_version(package: str, lock: Path = REPO / "requirements.lock") -> str:
    """The version requirements.lock pins for package (names compared as pip does)."""
    wanted = package.lower().replace("_", "-")
    for line in lock.read_text(encoding="utf-8").splitlines():
        name, _, version = line.partition("==")
        if version and name.strip().lower().replace("_", "-") == wanted:
            return version.strip()
    raise LookupError(f"{lock.name}: no pin for {package}")


def link_distributions(names: tuple[str, ...], target: Path) -> None:
    """Link each installed distribution's top-level modules and metadata into target."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        dist = distribution(name)
        site = Path(dist.locate_file(""))
        tops = {file.parts[0] for file in dist.files or () if file.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            if not (target / top).exists():
                (target / top).symlink_to(site / top, target_is_directory=(site / top).is_dir())


@dataclass(frozen=True)
class LambdaPaths:
    """sys.path entries of a Lambda execution environment, after the artifact's own."""

    layer: Path  # the powertools layer: /opt/python on Lambda
    runtime: Path  # the runtime's packages: /var/runtime on Lambda

    def sys_path(self, artifact: Path | None = None) -> list[str]:
        return ([str(artifact)] if artifact else []) + [str(self.layer), str(self.runtime)]


def lambda_paths(root: Path) -> LambdaPaths:
    """Build the layer and runtime directories under root; the layer must match the lock's pin."""
    pinned, installed = locked_version("aws-lambda-powertools"), distribution("aws-lambda-powertools").version
    if pinned != installed:
        raise RuntimeError(
            f"aws-lambda-powertools {installed} is installed, requirements.lock pins {pinned}: run make venv"
        )
    paths = LambdaPaths(layer=root / "layer", runtime=root / "runtime")
    link_distributions(LAYER_DISTRIBUTIONS, paths.layer)
    link_distributions(RUNTIME_DISTRIBUTIONS, paths.runtime)
    return paths


def clean_interpreter(python: str = sys.executable) -> list[str]:
    """A Python that sees the standard library only: no site-packages, no PYTHON* variables."""
    return [python, "-I", "-S"]


def lambda_environment(**extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "aurelius",
    }
    env.update(extra)
    return env


def functions_runtime() -> str:
    """The functions' Lambda runtime, e.g. python3.14 (template.yaml Globals)."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse((REPO / "template.yaml").read_text(encoding="utf-8"))["Globals"]["Function"]["Runtime"]


def sample_python() -> tuple[str, str]:
    """(interpreter, its description): the runtime's Python if this machine has it."""
    runtime = functions_runtime()
    found = shutil.which(runtime)
    if found:
        return found, runtime
    return (
        sys.executable,
        f"CPython {platform.python_version()} ({runtime}, the functions' runtime, is not installed here)",
    )


def _variants(paths: LambdaPaths) -> dict[str, str]:
    variants = {function: HANDLER.format(paths=paths.sys_path(REPO / "functions" / function)) for function in FUNCTIONS}
    variants["boto3 + 2 clients"] = BARE.format(paths=[str(paths.runtime)])
    return variants


def _sample(python: str, code: str, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one fresh interpreter."""
    done = subprocess.run(
        [*clean_interpreter(python), "-c", code],
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start sample failed: {done.stderr.strip()[-400:]}")
    cpu, wall = done.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def measure(runs: int, python: str = sys.executable) -> dict[str, list[tuple[float, float]]]:
    with tempfile.TemporaryDirectory(prefix="aurelius-bench-lambda-") as tmp:
        env, variants = lambda_environment(), _variants(lambda_paths(Path(tmp)))
        for code in variants.values():  # warm-up: .pyc files, disk cache
            _sample(python, code, env, Path(tmp))
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(runs):
            for name, code in variants.items():
                samples[name].append(_sample(python, code, env, Path(tmp)))
    return samples


def run(runs: int = 11, **_) -> tuple[list[Row], dict]:
    python, described = sample_python()
    samples = measure(runs, python)
    cpu = {name: median([c for c, _ in values]) for name, values in samples.items()}
    wall = {name: median([w for _, w in values]) for name, values in samples.items()}
    bare = "boto3 + 2 clients"
    rows = [
        Row(
            "1",
            f"cold start `{function}`: import + S3 & CloudFormation clients, Lambda's sys.path only (median CPU time of {runs} fresh interpreters)",
            f"{ms(cpu[function])} CPU ({ms(wall[function])} wall)",
            f"{ms(cpu[bare])} CPU ({ms(wall[bare])} wall), `import boto3` + the same 2 clients",
            ratio(cpu[function], cpu[bare]),
            f"goal ≤ {GOAL:.2f}: {'met' if cpu[function] <= GOAL * cpu[bare] else 'not met'}; wall-time ratio "
            f"{ratio(wall[function], wall[bare])}; the {ms(cpu[function] - cpu[bare])} CPU beyond boto3 is aurelius + "
            f"aws-lambda-powertools from the layer; {described}",
        )
        for function in FUNCTIONS
    ]
    return rows, {"cold_start_seconds": samples, "python": described}


if __name__ == "__main__":
    print(json.dumps(measure(3), indent=2))
