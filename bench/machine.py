"""The machine and the tool versions the numbers were measured with."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench import REPO

TOOLS = ("boto3", "botocore", "moto", "aws-lambda-powertools", "ecs-deploy", "aws-sam-cli", "cfn-lint")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict[str, str]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{_cpu_model()}, {os.cpu_count()} cores",
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"CPython {platform.python_version()} ({_interpreter()})",
        "tools": ", ".join(f"{name} {_version(name)}" for name in TOOLS),
    }


def _interpreter() -> str:
    """The interpreter, relative to the repository when it is the project's .venv: no
    machine-specific path lands in bench/RESULTS.md."""
    path = Path(sys.executable)
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return path.name
