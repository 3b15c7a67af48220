"""Worker count from the CPU quota of the cgroup (ECS), else the cores (elb), else WORKERS."""

from __future__ import annotations

import pytest

from aurelius_server.cpus import quota_cpus, worker_count


def cgroup_v2(tmp_path, cpu_max: str):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    return tmp_path


def cgroup_v1(tmp_path, quota: str, period: str = "100000", directory: str = "cpu"):
    (tmp_path / directory).mkdir()
    (tmp_path / directory / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / directory / "cpu.cfs_period_us").write_text(period + "\n")
    return tmp_path


@pytest.mark.parametrize(
    "cpu_max, cores, workers",
    [
        ("200000 100000", 8, 2),  # an ECS task with cpu 2048: 2 vCPUs on an 8-core host
        ("100000 100000", 8, 1),  # 1 vCPU
        ("50000 100000", 8, 1),  # half a vCPU still runs one worker
        ("150000 100000", 8, 1),  # 1.5 vCPUs: rounded down, a second worker would be throttled
        ("400000 100000", 2, 2),  # more quota than cores: the cores win
        ("max 100000", 4, 4),  # no quota: the cores
    ],
)
def test_cgroup_v2_cpu_max_sets_the_worker_count(tmp_path, cpu_max, cores, workers):
    # Given a cgroup v2 cpu.max and a number of usable cores
    root = cgroup_v2(tmp_path, cpu_max)
    # When the worker count is derived / Then it is the quota in CPUs (rounded down, >= 1), capped by the cores
    assert worker_count(None, root=root, cores=cores) == workers


@pytest.mark.parametrize("directory", ["cpu", "cpu,cpuacct"])
def test_cgroup_v1_cfs_quota_sets_the_worker_count(tmp_path, directory):
    # Given a cgroup v1 quota of 3 CPUs (300 ms per 100 ms period)
    root = cgroup_v1(tmp_path, "300000", directory=directory)
    # When derived on an 8-core host / Then 3 workers
    assert quota_cpus(root) == 3.0
    assert worker_count(None, root=root, cores=8) == 3


def test_cgroup_v1_without_a_quota_uses_the_cores(tmp_path):
    # Given cfs_quota_us -1 (no limit), as on an EC2 instance of the elb path
    root = cgroup_v1(tmp_path, "-1")
    # When derived / Then one worker per usable core
    assert quota_cpus(root) is None
    assert worker_count(None, root=root, cores=4) == 4


def test_no_cgroup_files_uses_the_cores(tmp_path):
    # Given no cgroup files at all (not Linux, or not mounted)
    # When derived / Then the cores count, and never fewer than one worker
    assert worker_count(None, root=tmp_path, cores=6) == 6
    assert worker_count(None, root=tmp_path, cores=0) == 1


def test_unreadable_values_are_treated_as_no_quota(tmp_path):
    # Given a cpu.max that cannot be parsed
    root = cgroup_v2(tmp_path, "lots 100000")
    # When derived / Then it falls back to the cores rather than guessing
    assert worker_count(None, root=root, cores=3) == 3


def test_workers_override_wins(tmp_path):
    # Given WORKERS=5 and a 1-CPU quota
    root = cgroup_v2(tmp_path, "100000 100000")
    # When derived / Then the override is used as is
    assert worker_count(5, root=root, cores=2) == 5
