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
