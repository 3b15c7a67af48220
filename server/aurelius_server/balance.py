"""Spread connections evenly over the workers that share one listening socket.

Every worker waits on the same socket, and the kernel wakes whichever is idle first: with a
few long-lived keep-alive connections (a load balancer opens only a handful per target) one
worker could hold most of them and do most of the work while the other one idles (measured:
1 connection against 7). So each worker publishes how many connections it holds, in a page of
memory the master maps before it forks the workers, and accepts only while it holds no more
than every other live worker: the counts never differ by more than about one.

A worker that has not published for ``STALE_SECONDS`` (busy in a long ``predict``, or dead) is
left out of the comparison, so a stuck worker never keeps the others from accepting.
"""

from __future__ import annotations

import mmap
import struct
import time

STALE_SECONDS = 0.5
_SLOT = struct.Struct("=qd")  # connections held, time.monotonic() of the last publish


class ConnectionShares:
    """One slot per worker in anonymous shared memory (inherited by forked workers)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._memory = mmap.mmap(-1, _SLOT.size * max(1, workers))

    def publish(self, slot: int | None, connections: int, now: float | None = None) -> None:
        if slot is not None:
            _SLOT.pack_into(self._memory, slot * _SLOT.size, connections, time.monotonic() if now is None else now)

    def may_accept(self, slot: int | None, connections: int, now: float | None = None) -> bool:
        """True while no live worker holds fewer connections than ``connections``."""
        if slot is None:
            return True
        now = time.monotonic() if now is None else now
        for other in range(self.workers):
            if other == slot:
                continue
            held, published = _SLOT.unpack_from(self._memory, other * _SLOT.size)
            if now - published <= STALE_SECONDS and held < connections:
                return False
        return True

    def free_slot(self, taken: set[int]) -> int | None:
        """The lowest slot no live worker uses (the master calls this before each fork)."""
        for slot in range(self.workers):
            if slot not in taken:
                return slot
        return None
