"""The HTTP contract: POST /predict shapes, JSON errors for everything else, no stack traces."""

from __future__ import annotations

import http.client
import json
import pickle

import pytest

from .conftest import aws_values, moto_s3, server_env, versioned_bucket
from .helpers import Published, ServerProcess, call, raw_exchange
from .toy_model import ArrayModel, FailingModel, LinearModel, WrongCountModel


@pytest.fixture(scope="module")
def linear(moto_endpoint, tmp_path_factory):
    """One server for the module's contract tests (a 4096-byte body limit)."""
    aws = aws_values(moto_endpoint)
    s3 = moto_s3(moto_endpoint)
    bucket = versioned_bucket(s3)
    body = pickle.dumps(LinearModel([1.0, 10.0]))
    version_id = s3.put_object(Bucket=bucket, Key="models/model.pkl", Body=body)["VersionId"]
    published = Published(f"s3://{bucket}/models/model.pkl", version_id, body)
    server = ServerProcess(server_env(aws, published, MAX_BODY_BYTES=4096), cwd=tmp_path_factory.mktemp("linear"))
    try:
        yield server.wait_healthy()
    finally:
        server.terminate()


def test_predict_returns_one_prediction_per_instance(linear):
    # Given a loaded model
    # When a client posts two instances
    reply = call(linear.port, "POST", "/predict", {"instances": [[1, 2], [0.5, -1]]})

    # Then it gets two predictions, in order, as JSON
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json == {"predictions": [21.0, -9.5]}


def test_predict_converts_array_like_output_with_tolist(publish, start_server):
    # Given a model whose predict() returns numpy-style objects (with .tolist(), also nested)
    service = start_server(publish(ArrayModel()))

    # When a client asks for predictions
    reply = call(service.port, "POST", "/predict", {"instances": [[1, 2], [3, 4]]})

    # Then the response holds plain JSON lists
    assert reply.status == 200
    assert reply.json == {"predictions": [[3, 2], [7, 2]]}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"instances": [[1, 2]]',
        b"",
        b"\xff\xfe{}",
        b'{"instances": [[NaN, 1]]}',
        b'{"instances": [[1e999, 1]]}',
        b'{"instances": ["\\ud800"]}',
    ],
    ids=["broken", "truncated", "empty", "not-utf8", "nan", "overflows-to-infinity", "lone-surrogate"],
)
def test_bad_json_is_400(linear, body):
    # Given a body that is not valid JSON (RFC 8259: no NaN, no number that is infinite as a double,
    # no unpaired surrogate)
    # When it is posted to /predict
    reply = call(linear.port, "POST", "/predict", body)

    # Then the answer is 400 invalid_json, in JSON
    assert reply.status == 400
    assert reply.json["error"] == "invalid_json"


@pytest.mark.parametrize(
    "document, where",
    [
        ([[1, 2]], "not an object"),
        ({}, '"instances" is missing'),
        ({"instance": [[1, 2]]}, "unexpected key"),
        ({"instances": [[1, 2]], "extra": 1}, "unexpected key"),
        ({"instances": [[1, 2], 3]}, "instances[1] is a JSON number and instances[0] an array"),
        ({"instances": [3, [1, 2]]}, "instances[1] is a JSON array and instances[0] a scalar"),
        ({"instances": [{"a": 1}, [1]]}, "instances[1] is a JSON array and instances[0] an object"),
        ({"instances": []}, "instances is an empty array"),
        ({"instances": "1,2"}, "instances is a JSON string"),
        ({"instances": [[]]}, "instances[0] is an empty array"),
        ({"instances": [[1, {"a": 2}]]}, "instances[0][1] is a JSON object"),
        ({"instances": [[1, [2]]]}, "instances[0][1] is a JSON array"),
        ({"instances": [[1, 2], [3]]}, "instances[1] has 1 values, instances[0] has 2"),
        ({"instances": [{"a": 1}, {"b": 2}]}, "instances[1] is missing the column(s) 'a'"),
        ({"instances": [{"a": 1}, {"a": 2, "b": 2}]}, "instances[1] has the unknown column(s) 'b'"),
        ({"instances": [{"a": [1]}]}, "instances[0]['a'] is a JSON array"),
        ({"inputs": {"a": [1, 2], "b": [1]}}, "the inputs columns have different lengths (1, 2)"),
        ({"inputs": {"a": 1}}, "inputs['a'] is a JSON number"),
        ({"inputs": [[1, 2]], "instances": [[1, 2]]}, "unexpected key(s) 'inputs'"),
    ],
)
def test_wrong_shape_is_422_naming_the_first_problem(linear, document, where):
    # Given valid JSON of the wrong shape
    # When it is posted to /predict
    reply = call(linear.port, "POST", "/predict", json.dumps(document).encode())

    # Then the answer is 422 invalid_shape and says where the problem is
    assert reply.status == 422
    assert reply.json["error"] == "invalid_shape"
    assert where in reply.json["message"]


def test_body_over_the_limit_is_413_and_the_body_is_not_read(linear):
    # Given a server with a 4096-byte body limit
    # When a client announces a larger body
    reply = raw_exchange(
        linear.port,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n",
    )

    # Then it answers 413 at once, in JSON, and closes the connection
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in head
    assert json.loads(body)["error"] == "body_too_large"


def test_body_without_content_length_is_411(linear):
    # Given a chunked request body (no Content-Length)
    # When it is posted
    reply = raw_exchange(
        linear.port,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )

    # Then the answer is 411 in JSON
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411")
    assert json.loads(body)["error"] == "length_required"


def test_predict_proba_on_a_model_without_it_is_404_naming_its_methods(linear):
    # Given a model that has predict() only
    # When a client asks for probabilities
    reply = call(linear.port, "POST", "/predict_proba", {"instances": [[1, 2]]})

    # Then the answer is 404, in JSON, naming what the model has, and the connection is not reused
    assert reply.status == 404
    assert reply.json == {
        "error": "method_not_available",
        "message": "the model has no predict_proba(); it has predict",
    }
    assert reply.headers["connection"] == "close"


def test_unknown_path_is_404_json(linear):
    # Given a running server
    # When a client asks for a path it does not serve
    reply = call(linear.port, "GET", "/admin")

    # Then the answer is 404 with a JSON error
    assert reply.status == 404
    assert reply.json["error"] == "not_found"


@pytest.mark.parametrize(
    "method, path, allowed", [("GET", "/predict", "POST"), ("POST", "/health", "GET"), ("DELETE", "/version", "GET")]
)
def test_wrong_method_is_405_with_allow(linear, method, path, allowed):
    # Given a running server
    # When a known path is called with a method it does not take
    reply = call(linear.port, method, path)

    # Then the answer is 405, JSON, with an Allow header
    assert reply.status == 405
    assert reply.json["error"] == "method_not_allowed"
    assert reply.headers["allow"] == allowed


def test_unknown_method_is_501_json(linear):
    # Given a running server
    # When a client uses a method HTTP servers do not know
    reply = call(linear.port, "BREW", "/predict")

    # Then the answer is JSON too (not the standard library's HTML page)
    assert reply.status == 501
    assert reply.headers["content-type"] == "application/json"
    assert "error" in reply.json


def test_predict_exception_is_500_generic_and_logged(publish, start_server):
    # Given a model whose predict() raises with a sensitive message
    service = start_server(publish(FailingModel()))

    # When a client asks for a prediction
    reply = call(service.port, "POST", "/predict", {"instances": [[1.0]]})

    # Then it gets a generic 500: no exception text, no traceback
    assert reply.status == 500
    assert reply.json == {"error": "prediction_failed", "message": "the model could not make a prediction"}
    assert FailingModel.SECRET.encode() not in reply.body and b"Traceback" not in reply.body
    # And the server log has the details, as one JSON object per line
    failure = service.wait_for("predict_failed", timeout=5)
    assert FailingModel.SECRET in failure["exception"]
    assert len(service.events("predict_failed")) == 1


def test_predict_returning_the_wrong_number_of_predictions_is_500(publish, start_server):
    # Given a model that returns one prediction too many
    service = start_server(publish(WrongCountModel()))

    # When a client asks for predictions
    reply = call(service.port, "POST", "/predict", {"instances": [[1.0], [2.0]]})

    # Then it gets a generic 500 rather than a misaligned answer
    assert reply.status == 500
    assert reply.json["error"] == "prediction_failed"


def test_keep_alive_connection_serves_several_requests(linear):
    # Given one HTTP/1.1 connection (as a load balancer keeps them)
    connection = http.client.HTTPConnection("127.0.0.1", linear.port, timeout=5)
    try:
        # When it sends a health check, a bad request and a prediction one after another
        statuses = []
        for method, path, body in [
            ("GET", "/health", None),
            ("POST", "/predict", b"{"),
            ("POST", "/predict", b'{"instances": [[1, 1]]}'),
        ]:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        connection.close()

    # Then every request on it is answered
    assert statuses == [200, 400, 200]
