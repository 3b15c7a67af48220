"""SIGTERM's handlers never wait for a lock the code they interrupt may hold.

Each case runs in its own process (``tests/server/signal_safety.py``), with the handler
delivered before every line of Python the interrupted code runs: a deadlock there is a process
that never finishes, and the timeout is the verdict.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .signal_safety import CASES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("case", sorted(CASES))
def test_sigterm_handler_delivered_at_any_line_never_blocks(case):
    # Given the server code a SIGTERM can interrupt: a worker answering /predict and writing the
    # request's log line, or the master waiting for the model loader
    # When the handler runs before every line of it
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.server.signal_safety", case],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{case}: the handler blocked (deadlock); output: {exc.stdout!r} {exc.stderr!r}")
    # Then the code and the handler both finish, the handler having run at least once
    assert done.returncode == 0, done.stderr
    verdict, calls = done.stdout.splitlines()[-1].split()
    assert verdict == "ok" and int(calls) >= 1, done.stdout
