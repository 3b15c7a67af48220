"""A server that cannot load its pinned model exits non-zero with one clear ERROR line that
names the model URI and version, and does not stay up."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from typing import Any

import pytest

from aurelius_server.app import main
from aurelius_server.config import parse_s3_uri
from aurelius_server.pinned_model import load_model
from aurelius_server.s3_download import ModelLoadError

from .helpers import log_lines, refuses_connections
from .toy_model import LinearModel, NotAModel

MISSING_VERSION = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"


def run_main(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    code = main({**os.environ, "HOST": "127.0.0.1", "PORT": "0", **env})
    return code, log_lines(capsys.readouterr().out)


def the_one_error(lines: list[dict]) -> dict:
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0]["event"] == "startup_failed"
    return errors[0]


def wrong_checksum(publish) -> tuple[str, str]:
    # moto stores a client-supplied checksum without checking it (real S3 would refuse the
    # upload): that gives an object whose bytes do not match its stored checksum.
    other = base64.b64encode(hashlib.sha256(b"some other bytes").digest()).decode()
    published = publish(LinearModel([1.0]), ChecksumAlgorithm="SHA256", ChecksumSHA256=other)
    return published.uri, published.version_id


def missing_key(publish) -> tuple[str, str]:
    published = publish(LinearModel([1.0]))
    return published.uri.replace("models/model.pkl", "models/absent.pkl"), published.version_id


def missing_version(publish) -> tuple[str, str]:
    return publish(LinearModel([1.0])).uri, MISSING_VERSION


def version_of_another_key(publish) -> tuple[str, str]:
    pinned = publish(LinearModel([1.0]), key="models/model.pkl")
    other = publish(LinearModel([2.0]), key="models/other.pkl")
    return pinned.uri, other.version_id


def missing_bucket(publish) -> tuple[str, str]:
    return "s3://no-such-bucket-aurelius/models/model.pkl", publish(LinearModel([1.0])).version_id


def not_a_pickle(publish) -> tuple[str, str]:
    published = publish(b"this is not a pickle")
    return published.uri, published.version_id


def no_predict(publish) -> tuple[str, str]:
    published = publish({"weights": [1.0, 2.0]})
    return published.uri, published.version_id


def predict_not_callable(publish) -> tuple[str, str]:
    published = publish(NotAModel())
    return published.uri, published.version_id


@pytest.mark.parametrize(
    "setup, reason",
    [
        (missing_key, "does not exist"),
        (missing_version, "that version of the object does not exist"),
        (version_of_another_key, "that version of the object does not exist"),
        (missing_bucket, "the bucket does not exist"),
        (wrong_checksum, "checksum mismatch"),
        (not_a_pickle, "not a recognised model format"),
        (no_predict, "dict object (pickle) has no callable predict()"),
        (predict_not_callable, "NotAModel object (pickle) has no callable predict()"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_start_up_fails_with_one_line_naming_the_uri_and_version(publish, capsys, restore_logging, setup, reason):
    # Given a pinned model that cannot be served
    uri, version_id = setup(publish)

    # When the server process starts
    code, lines = run_main({"MODEL_S3_URI": uri, "MODEL_VERSION_ID": version_id}, capsys)

    # Then it exits 1 with one ERROR line naming the URI, the version and the reason
    assert code == 1
    error = the_one_error(lines)
    assert f"{uri} version {version_id}" in error["message"]
    assert reason in error["message"]
    assert (error["model_s3_uri"], error["model_version_id"]) == (uri, version_id)
    # And the port it had bound (to answer /health while loading) is closed again
    listening = next(line for line in lines if line["event"] == "listening")
    assert refuses_connections(listening["port"])


@pytest.mark.parametrize(
    "uri, version_id, reason",
    [
        ("https://models.example.com/model.pkl", "v1", "is not an S3 URI"),
        ("s3://models-bucket", "v1", "has no object key"),
        ("s3://models-bucket/", "v1", "has no object key"),
        ("s3:///model.pkl", "v1", "has no bucket"),
        ("s3://Models_Bucket/model.pkl", "v1", "is not a valid bucket name"),
        ("", "v1", "MODEL_S3_URI is not set"),
        ("s3://models-bucket/model.pkl", "", "MODEL_VERSION_ID is not set"),
    ],
)
def test_start_up_fails_on_bad_configuration_naming_the_uri_and_version(
    capsys, restore_logging, uri, version_id, reason
):
    # Given a malformed or missing MODEL_S3_URI / MODEL_VERSION_ID
    # When the server process starts
    code, lines = run_main({"MODEL_S3_URI": uri, "MODEL_VERSION_ID": version_id}, capsys)

    # Then it exits 2 (a restart cannot fix it) with one ERROR line naming both values
    assert code == 2
    error = the_one_error(lines)
    assert f"model {uri or '(unset)'} version {version_id or '(unset)'}" in error["message"]
    assert reason in error["message"]
    # And it never bound a port
    assert not any(line["event"] == "listening" for line in lines)


class _StubS3:
    """An S3 client whose HeadObject announces given headers and whose download writes given
    bytes (what a botocore without its own check, or a cut connection, would leave us with).
    It records what the loader asked for and the download file it was handed."""

    def __init__(self, body: bytes, length: int | None = None, **headers: Any):
        self.body, self.length, self.headers = body, len(body) if length is None else length, headers
        self.calls: list[tuple[str, dict]] = []
        self.download_file: str | None = None
        self.download_mode: int | None = None

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("HeadObject", kwargs))
        return {"ContentLength": self.length, "VersionId": kwargs["VersionId"], **self.headers}

    def download_fileobj(self, **kwargs: Any) -> None:
        self.calls.append(("Download", {k: v for k, v in kwargs.items() if k not in ("Fileobj", "Config")}))
        fileobj = kwargs["Fileobj"]
        self.download_file, self.download_mode = fileobj.name, os.fstat(fileobj.fileno()).st_mode & 0o777
        fileobj.write(self.body)


def test_loader_itself_refuses_bytes_that_do_not_match_the_stored_checksum():
    # Given S3 announces a SHA256 for other bytes, and nothing checked it during the download
    body = b"\x80\x04N."  # pickle of None: must never be unpickled
    stored = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    s3 = _StubS3(body, ChecksumSHA256=stored)

    # When the loader loads the pinned version
    with pytest.raises(ModelLoadError) as raised:
        load_model(parse_s3_uri("s3://models-bucket/m.pkl"), "v7", s3)

    # Then it refuses, naming URI, version and the mismatch, after asking for that exact version
    assert str(raised.value).startswith("cannot load model s3://models-bucket/m.pkl version v7: checksum mismatch")
    assert s3.calls == [
        ("HeadObject", {"Bucket": "models-bucket", "Key": "m.pkl", "VersionId": "v7", "ChecksumMode": "ENABLED"}),
        ("Download", {"Bucket": "models-bucket", "Key": "m.pkl", "ExtraArgs": {"VersionId": "v7"}}),
    ]
    # And the downloaded bytes were in a private file, deleted again
    assert s3.download_mode == 0o600
    assert not os.path.exists(s3.download_file)


def test_loader_refuses_a_truncated_download():
    # Given S3 announced 1000 bytes and the download delivered 4
    s3 = _StubS3(b"\x80\x04N.", length=1000)

    # When the loader loads it
    with pytest.raises(ModelLoadError) as raised:
        load_model(parse_s3_uri("s3://models-bucket/m.pkl"), "v7", s3)

    # Then it refuses before unpickling, and leaves no file behind
    assert "truncated download: 4 of 1000 bytes" in str(raised.value)
    assert not os.path.exists(s3.download_file)


def test_loader_refuses_a_response_for_another_version():
    # Given an S3 endpoint that answers with a different version than the one asked for
    s3 = _StubS3(b"\x80\x04N.", VersionId="v8")

    # When the loader loads version v7
    with pytest.raises(ModelLoadError) as raised:
        load_model(parse_s3_uri("s3://models-bucket/m.pkl"), "v7", s3)

    # Then it refuses to serve it, without downloading it
    assert "S3 returned version v8 instead" in str(raised.value)
    assert [name for name, _ in s3.calls] == ["HeadObject"]


def test_start_up_fails_when_the_port_is_taken(publish, capsys, restore_logging):
    # Given another process already listens on the port
    published = publish(LinearModel([1.0]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # When the server starts on that port
        code, lines = run_main(
            {"MODEL_S3_URI": published.uri, "MODEL_VERSION_ID": published.version_id, "PORT": str(port)}, capsys
        )

    # Then it exits 1 with one ERROR line naming the model and the address
    assert code == 1
    error = the_one_error(lines)
    assert f"{published.uri} version {published.version_id}" in error["message"]
    assert f"cannot listen on 127.0.0.1:{port}" in error["message"]
