"""`make bench` row 8 (model signing) keeps working: a small run in a subprocess."""

import os
import subprocess
import sys

from tests.helpers import REPO


def test_small_signing_bench_run_writes_the_signing_rows(tmp_path):
    # Given a 2 MiB model; When row 8 runs
    output = tmp_path / "RESULTS.md"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "8", "--model-mib", "2", "--output", str(output)],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then it succeeds and the table has the signing, verification and loading rows, all measured
    assert done.returncode == 0, done.stdout + done.stderr
    table = output.read_text()
    assert "signing a 2 MiB model" in table
    assert "verify_digest over the precomputed digest" in table
    assert "with verification (sha256 in the copy pass + verify_digest)" in table
    assert "not measured" not in table
    # And the generated model was deleted from $TMPDIR
    assert list(scratch.iterdir()) == []
