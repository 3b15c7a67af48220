"""The HTTP/1.1 connection of the event-loop worker (``http11``), driven directly: a socket pair
stands in for the client, a small WSGI application for the model server, the loop's calls
(``on_readable``, ``expire``, ``close_if_idle``) are made by the test."""

from __future__ import annotations

import json
import select
import socket
import time

import pytest

from aurelius_server.balance import STALE_SECONDS, ConnectionShares
from aurelius_server.http11 import Connection, Settings
from aurelius_server.logs import configure_logging


class Owner:
    """The loop's side: what the connection asked of it."""

    def __init__(self) -> None:
        self.draining = False
        self.writable: list[bool] = []
        self.forgotten = False

    def watch(self, _connection: Connection, writable: bool) -> None:
        self.writable.append(writable)

    def forget(self, _connection: Connection) -> None:
        self.forgotten = True


class EchoApp:
    """Answers 200 with what it saw of the request; ``close`` adds ``Connection: close``."""

    def __init__(self, close: bool = False):
        self.close, self.environs = close, []

    def __call__(self, environ, start_response):
        self.environs.append(environ)
        body = json.dumps(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "body": environ["wsgi.input"].read().decode(),
            }
        ).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if self.close:
            headers.append(("Connection", "close"))
        start_response("200 OK", headers)
        return [body]


@pytest.fixture
def pair():
    server_side, client = socket.socketpair()
    server_side.setblocking(False)
    client.settimeout(2)
    yield server_side, client
    server_side.close()
    client.close()


def connection(sock, app=None, owner=None, read_timeout=10.0, max_body_bytes=1024) -> Connection:
    settings = Settings(app or EchoApp(), read_timeout, 75, max_body_bytes, ("127.0.0.1", 8080))
    return Connection(sock, ("127.0.0.1", 5000), settings, owner or Owner())


def exchange(conn: Connection, client: socket.socket, data: bytes) -> bytes:
    client.sendall(data)
    time.sleep(0.01)
    conn.on_readable()
    client.setblocking(False)
    try:
        return client.recv(65536)
    except BlockingIOError:
        return b""
    finally:
        client.setblocking(True)


def responses(data: bytes) -> list[tuple[bytes, bytes]]:
    """(head, body) of each response in ``data``."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        found.append((head, rest[:length]))
        data = rest[length:]
    return found


def test_a_request_in_pieces_reaches_the_application_only_once_whole(pair):
    # Given a connection and a request that arrives in three pieces
    sock, client = pair
    app = EchoApp()
    conn = connection(sock, app)
    pieces = [b"POST /predict HTTP/1.1\r\nHost: x\r\n", b"Content-Length: 5\r\n\r\nab", b"cde"]

    # When the first two pieces arrive / Then the application has not been called
    assert exchange(conn, client, pieces[0]) == b""
    assert exchange(conn, client, pieces[1]) == b""
    assert app.environs == []
    # When the last piece arrives / Then it is answered, once, with the whole body
    [(head, body)] = responses(exchange(conn, client, pieces[2]))
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Date: " in head and b"Connection" not in head
    assert json.loads(body) == {"method": "POST", "path": "/predict", "body": "abcde"}
    # And the connection waits for the next request (keep-alive)
    assert conn.phase == "idle" and not conn.closed


def test_pipelined_requests_are_answered_in_order(pair):
    # Given two requests sent back to back in one segment
    sock, client = pair
    conn = connection(sock)
    data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"

    # When they are read / Then both are answered, in order
    answers = responses(exchange(conn, client, data))
    assert [json.loads(body)["path"] for _, body in answers] == ["/a", "/b"]


def test_the_environ_follows_wsgi_and_drops_header_names_with_underscores(pair):
    # Given a request with a query string, an escaped path, a repeated header and one spelled with "_"
    sock, client = pair
    app = EchoApp()
    conn = connection(sock, app)
    request = (
        b"GET /a%20b?x=1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n"
        b"X_Forwarded_For: 6.6.6.6\r\nContent-Type: text/plain\r\n\r\n"
    )

    # When it is answered
    exchange(conn, client, request)

    # Then the application saw what PEP 3333 says, and only the header spelled with dashes
    environ = app.environs[0]
    assert (environ["PATH_INFO"], environ["QUERY_STRING"], environ["RAW_URI"]) == ("/a b", "x=1", "/a%20b?x=1")
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.1.1.1, 2.2.2.2"
    assert environ["CONTENT_TYPE"] == "text/plain" and "HTTP_CONTENT_TYPE" not in environ
    assert (environ["REMOTE_ADDR"], environ["SERVER_PORT"], environ["SERVER_PROTOCOL"]) == (
        "127.0.0.1",
        "8080",
        "HTTP/1.1",
    )


def test_head_gets_headers_only_and_http_1_0_closes_unless_it_asks_for_keep_alive(pair):
    # Given an HTTP/1.0 HEAD request without keep-alive
    sock, client = pair
    conn = connection(sock)

    # When it is answered
    reply = exchange(conn, client, b"HEAD /x HTTP/1.0\r\n\r\n")

    # Then no body follows the headers, and the connection is closed
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Content-Length: " in head and b"Connection: close" in head and body == b""
    assert conn.closed


def test_a_connection_close_from_the_application_closes_the_connection(pair):
    # Given an application that answers with Connection: close
    sock, client = pair
    owner = Owner()
    conn = connection(sock, EchoApp(close=True), owner)

    # When a keep-alive request is answered
    reply = exchange(conn, client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

    # Then the header is sent once and the connection is closed after the answer
    assert reply.count(b"Connection: close") == 1
    assert conn.closed and owner.forgotten


def test_expect_100_continue_is_answered_before_the_body(pair):
    # Given a request that waits for 100 Continue before its body (what curl does past 1 KiB)
    sock, client = pair
    conn = connection(sock)

    # When its headers arrive / Then 100 Continue is sent
    reply = exchange(conn, client, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert reply == b"HTTP/1.1 100 Continue\r\n\r\n"
    # And the body is then read and the request answered
    [(head, body)] = responses(exchange(conn, client, b"hi"))
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["body"] == "hi"


@pytest.mark.parametrize(
    "request_bytes, status, error",
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431, None),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, None),
        (b"NOT AN HTTP REQUEST\r\n\r\n", 400, "bad_request"),
        (b"BREW /pot HTTP/1.1\r\n\r\n", 501, "not_implemented"),
    ],
    ids=["long-target", "too-many-fields", "long-field", "not-http", "unknown-method"],
)
def test_requests_the_http_layer_refuses_get_a_json_error_and_a_close(pair, request_bytes, status, error):
    # Given a request beyond the limits, or not HTTP
    sock, client = pair
    app = EchoApp()
    conn = connection(sock, app)

    # When it is read
    reply = exchange(conn, client, request_bytes)

    # Then it is answered in JSON with the status, the connection closed, the application not called
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status) and b"Connection: close" in head
    assert b"Content-Type: application/json" in head
    if error:
        assert json.loads(body)["error"] == error
    assert conn.closed and app.environs == []


def test_a_header_block_that_never_ends_is_refused_past_64_kib(pair):
    # Given a client sending header fields forever, each under the field limit
    sock, client = pair
    conn = connection(sock)
    client.sendall(b"GET / HTTP/1.1\r\n")
    conn.on_readable()

    # When more than 64 KiB of them arrived
    reply = b""
    for i in range(20):
        reply += exchange(conn, client, b"".join(b"X-%d: %s\r\n" % (i * 10 + j, b"a" * 900) for j in range(10)))
        if conn.closed:
            break

    # Then the server answers 431 and closes, rather than buffering on
    assert reply.startswith(b"HTTP/1.1 431") and conn.closed


def test_a_chunked_or_too_large_body_is_answered_from_the_headers_and_not_read(pair):
    # Given a request announcing a body above the limit (1 KiB here)
    sock, client = pair
    app = EchoApp()
    conn = connection(sock, app, max_body_bytes=1024)

    # When its headers arrive
    reply = exchange(conn, client, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\nabc")

    # Then the application answers at once, without the body, and the connection is closed
    assert reply.startswith(b"HTTP/1.1 200") and b"Connection: close" in reply
    assert app.environs[0]["CONTENT_LENGTH"] == "999999" and conn.closed


def test_a_body_that_stalls_gets_408_at_the_deadline_and_stalled_headers_just_close(pair):
    # Given a request whose body stopped arriving
    sock, client = pair
    conn = connection(sock, read_timeout=1)
    exchange(conn, client, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")

    # When the loop finds its deadline passed
    assert conn.phase == "reading" and conn.deadline <= time.monotonic() + 1
    conn.expire(time.monotonic())

    # Then the client is told 408 in JSON and the connection is closed
    head, _, body = client.recv(65536).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and json.loads(body)["error"] == "request_timeout"
    assert conn.closed


def test_stalled_headers_close_without_an_answer(pair):
    # Given a request whose header block stopped arriving
    sock, client = pair
    conn = connection(sock, read_timeout=1)
    exchange(conn, client, b"GET / HTTP/1.1\r\nHost: x\r\n")

    # When the deadline passes / Then the connection is closed with nothing sent
    conn.expire(time.monotonic())
    assert conn.closed and client.recv(65536) == b""


def test_stopping_closes_an_idle_connection_but_answers_a_request_already_waiting(pair):
    # Given two idle keep-alive connections, one with a request already in its socket buffer
    sock, client = pair
    owner = Owner()
    waiting = connection(sock, owner=owner)
    other_side, other_client = socket.socketpair()
    other_side.setblocking(False)
    idle = connection(other_side, owner=Owner())
    client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.01)

    # When the worker stops
    owner.draining = True
    waiting.close_if_idle()
    idle.close_if_idle()

    # Then the waiting request is answered with Connection: close, and both connections close
    assert client.recv(65536).startswith(b"HTTP/1.1 200") and waiting.closed
    assert idle.closed and other_client.recv(1) == b""
    other_client.close()


def test_a_response_the_client_does_not_read_waits_for_write_readiness(pair):
    # Given a client that does not read, and a response larger than the socket buffers
    sock, client = pair
    big = b"x" * (4 * 1024 * 1024)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(big)))])
        return [big]

    owner = Owner()
    conn = connection(sock, app, owner)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.01)

    # When the request is answered
    conn.on_readable()

    # Then the connection asks the loop for write readiness instead of blocking, and finishes later
    assert owner.writable == [True] and conn.phase == "writing"
    received = 0
    while received < len(big):
        received += len(client.recv(1 << 20))
        conn.on_writable()
    assert owner.writable[-1] is False and conn.phase == "idle"


def test_workers_accept_only_while_no_live_worker_holds_fewer_connections():
    # Given two workers' shared counts: worker 0 holds 4 connections, worker 1 holds 3
    shares = ConnectionShares(2)
    now = time.monotonic()
    shares.publish(0, 4, now)
    shares.publish(1, 3, now)

    # Then worker 0 does not accept, worker 1 does
    assert shares.may_accept(0, 4, now) is False
    assert shares.may_accept(1, 3, now) is True
    # And once worker 1 stops publishing (stuck in a long predict, or dead), worker 0 accepts again
    assert shares.may_accept(0, 4, now + STALE_SECONDS + 0.1) is True
    # And a worker without a slot always accepts
    assert shares.may_accept(None, 100, now) is True


def test_a_replacement_worker_takes_the_lowest_free_slot():
    shares = ConnectionShares(3)
    # Given slots 0 and 2 taken / Then 1 is free; with all taken, none
    assert shares.free_slot({0, 2}) == 1
    assert shares.free_slot({0, 1, 2}) is None


class ClosingApp(EchoApp):
    """EchoApp whose result records, in ``close()``, whether the client could already read the answer."""

    def __init__(self, client: socket.socket):
        super().__init__()
        self.client, self.answer_waiting_at_close = client, []

    def __call__(self, environ, start_response):
        app = self

        class Result(list):
            def close(self):
                readable, _, _ = select.select([app.client], [], [], 0)
                app.answer_waiting_at_close.append(bool(readable))

        return Result(super().__call__(environ, start_response))


def test_the_results_close_is_called_once_the_response_is_sent(pair):
    # Given an application whose result has close() (PEP 3333: where a WSGI app finishes a request)
    sock, client = pair
    app = ClosingApp(client)
    conn = connection(sock, app)

    # When a request is answered
    [(head, _)] = responses(exchange(conn, client, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))

    # Then close() ran once, after the answer was in the client's socket
    assert head.startswith(b"HTTP/1.1 200")
    assert app.answer_waiting_at_close == [True]


def test_a_close_that_raises_is_logged_and_the_connection_serves_the_next_request(pair, capsys):
    # Given an application whose result's close() raises
    sock, client = pair

    class Result(list):
        def close(self):
            raise RuntimeError("close failed")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return Result([b"ok"])

    conn = connection(sock, app)
    configure_logging()

    # When two requests are answered on the connection
    first = exchange(conn, client, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    second = exchange(conn, client, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")

    # Then both got their answer, and each failure is one ERROR line
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
    errors = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"request_failed"' in line]
    assert [line["level"] for line in errors] == ["ERROR", "ERROR"]
    assert "close failed" in errors[0]["exception"]
