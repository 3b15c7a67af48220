"""The JSON log lines: the per-request line (written after the response, without the logging
machinery) has the same shape as every other line."""

from __future__ import annotations

import logging

import numpy

from aurelius_server.logs import LOGGER_NAME, configure_logging, log_event, log_info_line

from .helpers import in_process_app, log_lines, predict_environ


def test_the_request_line_has_the_same_shape_as_a_logging_line(capsys):
    # Given the server's logging
    logger = configure_logging()
    fields = {"status": 200, "duration_ms": 1.5, "trace_id": None, "detail": {"a": [1, 2]}}

    # When the same event is written both ways
    log_event(logger, logging.INFO, "request", "GET / 200", **fields)
    log_info_line(logger, "request", "GET / 200", fields)

    # Then the two lines are the same JSON but for the time
    via_logging, direct = log_lines(capsys.readouterr().out)
    assert set(via_logging) == set(direct) == {"ts", "level", "logger", "event", "message", *fields}
    assert {**via_logging, "ts": None} == {**direct, "ts": None}
    assert direct["level"] == "INFO" and direct["logger"] == LOGGER_NAME and direct["ts"].endswith("Z")


def test_the_request_line_follows_the_loggers_level(capsys):
    # Given the server's logger raised to WARNING
    logger = configure_logging()
    logger.setLevel(logging.WARNING)
    try:
        # When a request line is written / Then nothing is
        log_info_line(logger, "request", "GET / 200", {})
        assert capsys.readouterr().out == ""
    finally:
        logger.setLevel(logging.NOTSET)


def test_the_request_line_is_written_when_the_server_closes_the_result(capsys):
    # Given the application with a model, and a /predict request
    configure_logging()
    environ = predict_environ(b'{"instances": [[1, 2]]}')
    statuses = []

    # When it answers
    result = in_process_app()(environ, lambda status, headers: statuses.append(status))

    # Then the answer is ready and no line is written yet
    assert statuses == ["200 OK"] and b"".join(result) == b'{"predictions": [21.0]}'
    assert capsys.readouterr().out == ""
    # And closing the result (what a WSGI server does once the response is sent) writes it, once
    result.close()
    result.close()
    [line] = log_lines(capsys.readouterr().out)
    assert line["event"] == "request" and line["status"] == 200 and line["path"] == "/predict"
    assert line["Predictions"] == 1 and line["PredictionLatency"] == line["duration_ms"] >= 0


def test_a_line_with_values_the_fast_encoder_refuses_is_still_written_whole(capsys):
    # Given fields orjson refuses: an int over 64 bits, a key that is not a string, and an object
    # without a JSON form
    logger = configure_logging()
    fields = {"size_bytes": 2**70, "by_worker": {1: "a"}, "where": object(), "score": numpy.float64(0.25)}

    # When the request line is written
    log_info_line(logger, "request", "GET / 200", fields)

    # Then it is one JSON line with the exact int, the key as a string and the object as its str()
    (line,) = log_lines(capsys.readouterr().out)
    assert line["size_bytes"] == 2**70
    assert line["by_worker"] == {"1": "a"}
    assert line["where"].startswith("<object object at")
    assert line["score"] == 0.25


def test_numpy_numbers_in_a_line_are_written_as_the_standard_encoder_writes_them(capsys):
    # Given fields with numpy values (numpy.float64 is a float subclass, numpy.int64 is not an int)
    logger = configure_logging()
    fields = {"tolerance": numpy.float64(0.125), "rows": numpy.int64(3), "ok": True}

    # When the request line is written
    log_info_line(logger, "request", "GET / 200", fields)

    # Then the float is a number and the rest is what json.dumps(default=str) wrote before
    (line,) = log_lines(capsys.readouterr().out)
    assert line["tolerance"] == 0.125 and isinstance(line["tolerance"], float)
    assert line["rows"] == "3" and line["ok"] is True
