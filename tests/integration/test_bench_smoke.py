"""`make bench` keeps working: a small run of the rows that need no sam build, in a subprocess."""

import subprocess
import sys

from tests.helpers import REPO


def test_small_bench_run_writes_a_table_with_the_newest_version_deployed(tmp_path):
    # Given a small burst and the rollout budget rows; When the bench runs
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "3,4", "--events", "40", "--uploads", "3", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    # Then it succeeds and the written table says the burst ended on the newest version
    assert done.returncode == 0, done.stdout + done.stderr
    table = output.read_text()
    assert "newest deployed at the end: yes" in table
    assert "UpdateStack for an already-deployed version: 0" in table
    assert "rollout budget" in table and "Machine:" in table


def test_small_model_server_bench_run_measures_both_servers_and_the_loaders(tmp_path):
    # Given tiny counts for the model server rows (one client, 0.2 s, 5 MiB models); When the bench runs
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--only",
            "6,7",
            "--load-seconds",
            "0.2",
            "--load-clients",
            "1",
            "--memory-mib",
            "5",
            "--model-mib",
            "5",
            "--output",
            str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then it succeeds, and the table compares the event-loop workers with the previous server and the two loaders
    assert done.returncode == 0, done.stdout + done.stderr
    table = output.read_text()
    assert "(event-loop workers)" in table and "(previous stdlib server)" in table
    assert "2 workers vs 1" in table and "previous loader" in table
    assert "not measured" not in table
