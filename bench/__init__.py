"""`make bench`: what aurelius costs and how it behaves, measured in one run on one machine.

A benchmark, not a test: it prints one table and writes it, with the machine's description and
how each row was measured, to bench/RESULTS.md. Everything runs on this machine against
127.0.0.1 (a moto server; no AWS account, no network).

    python -m bench [--runs 11] [--redeploys 20] [--events 1000] [--uploads 20] [--only 1,2]

Rows (one module each):
  1 cold_start      import of each handler + its clients, next to a bare boto3 import + client
  2 redeploy_cost   API calls and time per redeploy, next to the ecs-deploy CLI on the same server
  3 burst           1,000 shuffled, duplicated S3 events with uploads in between
  4 rollout_budget  the rollout time the ecs-service template's settings imply, next to AWS defaults
  5 build_size      each function's `sam build` output
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Row:
    """One line of the table. ``ratio`` is always aurelius ÷ the comparison column."""

    number: str
    measure: str
    aurelius: str
    compared_with: str
    ratio: str
    notes: str = ""


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "n/a"


def mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
