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


class HaltingMachine:
    """A clock where a call made right after a sleep costs ``cold`` instead of ``warm`` (the
    vCPU halted: its caches came back cold)."""

    def __init__(self, warm: float, cold: float):
        self.now, self.warm, self.cold, self.slept, self.sleeps = 0.0, warm, cold, False, 0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        self.slept = True

    def call(self) -> None:
        self.now += self.cold if self.slept else self.warm
        self.slept = False


def test_the_idle_penalty_is_a_call_after_a_sleep_minus_a_tight_loop_and_leaves_the_sleep_out(monkeypatch):
    # Given a machine where predict takes 1 ms warm and 1.4 ms right after an idle moment
    machine = HaltingMachine(warm=0.001, cold=0.0014)
    monkeypatch.setattr(server_overhead.time, "perf_counter", machine.perf_counter)
    monkeypatch.setattr(server_overhead.time, "sleep", machine.sleep)

    # When row 9 measures the idle penalty over 4 blocks
    penalty = server_overhead.idle_penalty(machine.call, idle_seconds=0.0002, blocks=4)

    # Then it is the 0.4 ms the idle moment added, in ms, not the 0.2 ms slept
    assert penalty == pytest.approx(0.4)
    # And every call of the after-idle blocks followed its own sleep
    assert machine.sleeps == 4 * server_overhead.BLOCK
