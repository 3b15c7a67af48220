"""Test clients for the HTTP layer: slow-header connections (slowloris) and keep-alive clients
that record what became of every request they sent."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path

from .helpers import connect


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks), time.monotonic() - started


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and a Content-Length body may arrive in separate segments)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def worker_pids(master: int, expected: int, timeout: float = 10) -> list[int]:
    """The master's child processes (gunicorn starts them one after the other)."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                        found.append(int(entry.name))
                except (OSError, IndexError, ValueError):
                    pass
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


class SlowHeaders:
    """``count`` connections that send a request's header block one line per ``interval``."""

    def __init__(self, port: int, count: int, interval: float = 1.0):
        self.sockets = [connect(port) for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, args=(interval,), daemon=True)
        self._thread.start()

    def _trickle(self, interval: float) -> None:
        line = 0
        while not self._stop.wait(interval):
            line += 1
            for sock in self.sockets:
                try:
                    sock.send(f"X-Line-{line}: {line}\r\n".encode())
                except OSError:
                    pass  # closed by the server: that is its right

    def open_count(self) -> int:
        """How many of the connections the server has not closed."""
        alive = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                alive += sock.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
            finally:
                sock.setblocking(True)
        return alive

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.sockets:
            sock.close()


class KeepAliveClients:
    """``count`` threads, each sending POST /predict on one keep-alive connection back to back.

    Every request ends as one outcome: ``answered`` (any status; the ``Connection`` header is
    recorded), ``refused`` (a new connection was refused: the client stops), ``closed`` (the
    connection was closed or reset before an answer: the client reconnects) or ``hung`` (no
    answer within ``timeout``).
    """

    def __init__(self, port: int, count: int, timeout: float = 5.0):
        self.port, self.timeout = port, timeout
        self.outcomes: Counter[str] = Counter()
        self.answers: list[tuple[float, int, str | None]] = []  # (time, status, Connection header)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _record(self, outcome: str, answer: tuple[float, int, str | None] | None = None) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            if answer is not None:
                self.answers.append(answer)

    def _run(self) -> None:
        body = json.dumps({"instances": [[1, 2]]})
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                try:
                    connection.connect()
                except ConnectionRefusedError:
                    self._record("refused")
                    return
                except OSError:
                    self._record("closed")  # reset while queued in the backlog of a closing socket
                    connection = None
                    continue
            try:
                connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                self._record("answered", (time.monotonic(), response.status, response.getheader("Connection")))
                if response.will_close:
                    connection.close()
                    connection = None
            except TimeoutError:
                self._record("hung")
                connection.close()
                connection = None
            except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
                self._record("closed")
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def answered_since(self, moment: float) -> list[tuple[float, int, str | None]]:
        with self._lock:
            return [answer for answer in self.answers if answer[0] >= moment]

    def wait_until_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        self._stop.set()
        self.wait_until_done(self.timeout + 5)
