"""Row 9's measurement (bench/server_overhead.py): both sides in alternating blocks, the overhead
as the median of the blocks' paired differences. A fake clock stands in for the machine, so
this checks the arithmetic and the order of the calls, not any speed."""

from __future__ import annotations

import pytest

from bench import server_overhead


class DriftingMachine:
    """A clock the two sides advance: in-process costs 1 unit, the server 1.25; from the
    ``slow_from``-th call on, everything takes twice as long (the VM slowing down)."""

    def __init__(self, slow_from: int):
        self.now, self.calls, self.slow_from, self.order = 0.0, 0, slow_from, []

    def perf_counter(self) -> float:
        return self.now

    def run(self, side: str, cost: float) -> None:
        self.calls += 1
        self.order.append(side)
        self.now += cost * (2 if self.calls > self.slow_from else 1)


def test_the_overhead_is_paired_block_by_block_so_a_slowdown_between_blocks_cancels(monkeypatch):
    # Given a machine that doubles its times halfway through the measured blocks
    count = 10 * server_overhead.BLOCK
    warm_calls = 2 * server_overhead.WARMUP
    machine = DriftingMachine(slow_from=warm_calls + count)
    monkeypatch.setattr(server_overhead.time, "perf_counter", machine.perf_counter)

    # When row 9 measures 10 blocks of each side
    result = server_overhead.interleaved(
        lambda: machine.run("local", 0.001), lambda: machine.run("server", 0.00125), count
    )

    # Then each block pair's difference is taken on one machine speed (0.25 ms before the
    # slowdown, 0.5 ms after), and the overhead is the median of the 10 differences
    assert result["blocks"] == 10
    assert result["overhead"] == pytest.approx(0.375)
    # And the sides alternate block by block after their warm-ups
    measured = machine.order[warm_calls:]
    blocks = [measured[i : i + server_overhead.BLOCK] for i in range(0, len(measured), server_overhead.BLOCK)]
    assert [set(block) for block in blocks] == [{"local"}, {"server"}] * 10
