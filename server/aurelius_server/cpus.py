"""How many worker processes: one per CPU the process may actually use.

A model's ``predict`` is usually CPU-bound Python, so workers beyond the CPUs available only
queue on the same cores. What is available:

- on ECS, the task's CPU setting becomes a CFS quota on the task's cgroup (cgroup v2
  ``cpu.max`` = "<quota> <period>" or "max <period>"; cgroup v1 ``cpu.cfs_quota_us`` /
  ``cpu.cfs_period_us``, -1 = no quota). Quota / period CPUs, rounded down, at least 1;
- on EC2 without a quota (the elb path), the cores this process may run on
  (``os.sched_getaffinity``), else ``os.cpu_count()``;
- ``WORKERS`` overrides both.

The lower of the quota and the cores wins: a quota of 4 CPUs on a 2-core host runs 2 workers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def quota_cpus(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in CPUs, or None when there is none."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                quota, period = int(parts[0]), int(parts[1])
            except ValueError:
                return None
            return quota / period if quota > 0 and period > 0 else None
        return None
    for directory in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
        raw_quota, raw_period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
        if raw_quota is None or raw_period is None:
            continue
        try:
            quota, period = int(raw_quota), int(raw_period)
        except ValueError:
            return None
        return quota / period if quota > 0 and period > 0 else None
    return None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_count(override: int | None = None, root: Path = CGROUP_ROOT, cores: int | None = None) -> int:
    """``WORKERS`` if set, else min(CPU quota rounded down, usable cores), at least 1."""
    if override is not None:
        return override
    cores = usable_cores() if cores is None else cores
    quota = quota_cpus(root)
    if quota is None:
        return max(1, cores)
    return max(1, min(cores, math.floor(quota)))
