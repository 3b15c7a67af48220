"""The server verifies the model's OpenSSF signature before a byte is unpickled, and scans the
pickle for dangerous imports: every refusal is one ``startup_failed`` line naming the version
and the reason, exit 1, the port closed again, never healthy.

Real cryptography, offline: keys made in the test (tests/signing/material.py), signatures made
with aurelius.signing (the model-signing package), S3 on moto. The sidecar layout is
aurelius.core.signature_layout's: ``{model_key}.sig/{sha256}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aurelius.core.signature_layout import SHA256_METADATA_KEY, checksum_sha256, signature_key
from aurelius.signing import KeySigner, sign_file
from tests.signing.material import KeyPair, key_trust, make_key

from .helpers import SERVER_DIR, Published, call, refuses_connections
from .test_startup_failures import run_main, the_one_error
from .toy_model import LinearModel

MODEL_KEY = "models/model.pkl"


class _RunsAShellCommand:
    """Unpickling this runs ``command`` (os.system): what an attacker who can write the bucket uploads."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[KeyPair, KeyPair]:
    directory = tmp_path_factory.mktemp("keys")
    return make_key(directory, "publisher"), make_key(directory, "stranger")


def signed_upload(s3: Any, bucket: str, body: bytes, key: KeyPair, tmp_path: Path, **put: Any) -> Published:
    """What ``aurelius publish`` does: sign, put the sidecar, then the model with its digest."""
    path = tmp_path / f"model-{hashlib.sha256(body).hexdigest()[:8]}.pkl"
    path.write_bytes(body)
    signed = sign_file(path, KeySigner(key.private_key))
    s3.put_object(Bucket=bucket, Key=signature_key(MODEL_KEY, signed.sha256), Body=signed.bundle)
    return upload(s3, bucket, body, signed.sha256, **put)


def upload(s3: Any, bucket: str, body: bytes, claimed_sha256: str, **put: Any) -> Published:
    response = s3.put_object(
        Bucket=bucket, Key=MODEL_KEY, Body=body, Metadata={SHA256_METADATA_KEY: claimed_sha256}, **put
    )
    return Published(f"s3://{bucket}/{MODEL_KEY}", response["VersionId"], body)


def signing_env(published: Published, trust: str | None, required: bool = True) -> dict[str, str]:
    env = {"MODEL_S3_URI": published.uri, "MODEL_VERSION_ID": published.version_id}
    if trust is not None:
        env["MODEL_SIGNING_TRUST"] = trust
    env["MODEL_SIGNING_REQUIRED"] = "true" if required else "false"
    return env


def one_bit_flipped(body: bytes) -> bytes:
    changed = bytearray(body)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def refused(env: dict[str, str], capsys) -> dict:
    """Run the server in this process; assert it exits 1 with one startup_failed line and its port closed."""
    code, lines = run_main(env, capsys)
    assert code == 1, lines
    error = the_one_error(lines)
    assert f"version {env['MODEL_VERSION_ID']}" in error["message"]
    listening = next(line for line in lines if line["event"] == "listening")
    assert refuses_connections(listening["port"])
    assert not any(line["event"] in ("model_loaded", "serving") for line in lines)
    return error


def test_a_signed_model_is_verified_then_served(s3, bucket, keys, tmp_path, start_server):
    # Given a model signed with the publisher's key, uploaded as `aurelius publish` does
    publisher, _ = keys
    body = pickle.dumps(LinearModel([2.0], bias=1.0))
    published = signed_upload(
        s3, bucket, body, publisher, tmp_path, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum_sha256(_hex(body))
    )

    # When the server starts trusting that key, signatures required
    server = start_server(published, **signing_env(published, key_trust(publisher.public_key)))

    # Then it logged the verified signature before loading, and serves the model
    verified = server.wait_for("model_verified")
    assert (verified["sha256"], verified["mode"]) == (_hex(body), "key")
    assert verified["signature"] == f"s3://{bucket}/{MODEL_KEY}.sig/{_hex(body)}"
    assert verified["signer"].startswith("key sha256:")
    names = [line["event"] for line in server.lines]
    assert names.index("model_verified") < names.index("model_scanned") < names.index("model_loaded")
    assert call(server.port, "POST", "/predict", {"instances": [[3.0]]}).json == {"predictions": [7.0]}
    # And /version says who signed it
    assert call(server.port, "GET", "/version").json["signature"]["signer"] == verified["signer"]


def test_a_tampered_model_is_never_healthy_and_names_its_missing_signature(s3, bucket, keys, tmp_path, start_server):
    # Given a signed model whose bytes were changed by one bit afterwards, uploaded with the
    # original digest in its metadata and no checksum (so S3 does not catch it)
    publisher, _ = keys
    body = pickle.dumps(LinearModel([2.0]))
    signed_upload(s3, bucket, body, publisher, tmp_path)
    tampered = upload(s3, bucket, one_bit_flipped(body), _hex(body))

    # When the server process starts for the tampered version
    server = start_server(tampered, healthy=False, **signing_env(tampered, key_trust(publisher.public_key)))

    # Then /health is never 200 while it runs, and it exits 1 with one line naming the version and the reason
    health = []
    while server.process.poll() is None:
        try:
            health.append(call(server.port, "GET", "/health", timeout=2).status)
        except OSError:
            pass
        time.sleep(0.05)
    assert server.terminate() == 1
    assert 200 not in health
    error = server.wait_for("startup_failed")
    assert error["reason"] == "signature_missing"
    assert f"version {tampered.version_id}" in error["message"]
    assert f"looked for s3://{bucket}/{MODEL_KEY}.sig/{_hex(tampered.body)}" in error["message"]


def test_a_missing_signature_is_refused_when_required(s3, bucket, keys, capsys, restore_logging):
    # Given an unsigned upload, and the server required to check signatures
    publisher, _ = keys
    published = upload(s3, bucket, pickle.dumps(LinearModel([1.0])), "0" * 64)

    # When it starts / Then it is refused: no signature for the bytes it downloaded
    error = refused(signing_env(published, key_trust(publisher.public_key)), capsys)
    assert error["reason"] == "signature_missing"
    assert "no signature for sha256" in error["message"]


def test_a_signature_by_another_key_is_refused(s3, bucket, keys, tmp_path, capsys, restore_logging):
    # Given a model signed by a key the operator does not trust
    publisher, stranger = keys
    published = signed_upload(s3, bucket, pickle.dumps(LinearModel([1.0])), stranger, tmp_path)

    # When the server starts trusting only the publisher / Then the signer is untrusted
    error = refused(signing_env(published, key_trust(publisher.public_key)), capsys)
    assert error["reason"] == "signer_untrusted"
    assert "not one of the 1 trusted key(s)" in error["message"]


def test_another_models_signature_is_refused(s3, bucket, keys, tmp_path, capsys, restore_logging):
    # Given model A signed and model B uploaded with A's signature copied to B's sidecar key
    publisher, _ = keys
    a, b = pickle.dumps(LinearModel([1.0])), pickle.dumps(LinearModel([9.0]))
    signed_upload(s3, bucket, a, publisher, tmp_path)
    bundle = s3.get_object(Bucket=bucket, Key=signature_key(MODEL_KEY, _hex(a)))["Body"].read()
    s3.put_object(Bucket=bucket, Key=signature_key(MODEL_KEY, _hex(b)), Body=bundle)
    published = upload(s3, bucket, b, _hex(b))

    # When the server starts for B / Then the signature is for other bytes
    error = refused(signing_env(published, key_trust(publisher.public_key)), capsys)
    assert error["reason"] == "digest_mismatch"
    assert f"the downloaded bytes have sha256 {_hex(b)}" in error["message"]


def test_a_changed_signature_is_refused(s3, bucket, keys, tmp_path, capsys, restore_logging):
    # Given a signed model whose signature object was edited (the DSSE signature replaced)
    publisher, _ = keys
    body = pickle.dumps(LinearModel([1.0]))
    published = signed_upload(s3, bucket, body, publisher, tmp_path)
    sidecar = signature_key(MODEL_KEY, _hex(body))
    bundle = json.loads(s3.get_object(Bucket=bucket, Key=sidecar)["Body"].read())
    other = signed_upload(s3, bucket, pickle.dumps(LinearModel([5.0])), publisher, tmp_path)
    other_bundle = json.loads(
        s3.get_object(Bucket=bucket, Key=signature_key(MODEL_KEY, _hex(other.body)))["Body"].read()
    )
    bundle["dsseEnvelope"]["signatures"] = other_bundle["dsseEnvelope"]["signatures"]
    s3.put_object(Bucket=bucket, Key=sidecar, Body=json.dumps(bundle).encode())

    # When the server starts for the first model / Then the signature does not verify
    error = refused(signing_env(published, key_trust(publisher.public_key)), capsys)
    assert error["reason"] == "signature_invalid"


def test_required_signing_without_trust_is_a_configuration_error(s3, bucket, capsys, restore_logging):
    # Given signatures required and no trust material
    published = upload(s3, bucket, pickle.dumps(LinearModel([1.0])), "0" * 64)

    # When the server starts
    code, lines = run_main(signing_env(published, trust=None, required=True), capsys)

    # Then it exits 2 (a restart cannot fix it) before binding, naming both variables
    assert code == 2
    error = the_one_error(lines)
    assert "MODEL_SIGNING_REQUIRED is true but MODEL_SIGNING_TRUST is not set" in error["message"]
    assert not any(line["event"] == "listening" for line in lines)


def test_an_unsigned_model_loads_with_a_warning_when_trust_is_set_but_not_required(
    s3, bucket, keys, capsys, restore_logging
):
    # Given trust configured, signatures not required (an environment moving to signing), an unsigned model
    publisher, _ = keys
    published = upload(s3, bucket, pickle.dumps(LinearModel([1.0])), "0" * 64)
    loaded = _load_in_process(signing_env(published, key_trust(publisher.public_key), required=False))

    # Then it loads, says it is unsigned, and the scan still ran
    lines = _lines(capsys)
    assert loaded.signature is None
    assert [line["event"] for line in lines] == ["model_unsigned", "model_scanned", "model_loaded"]
    assert lines[0]["level"] == "WARNING"


def test_without_trust_nothing_is_checked_but_the_scan_still_runs(s3, bucket, capsys, restore_logging):
    # Given no signing settings at all
    published = upload(s3, bucket, pickle.dumps(LinearModel([1.0])), "0" * 64)
    _load_in_process({"MODEL_S3_URI": published.uri, "MODEL_VERSION_ID": published.version_id})

    # Then the log says the signature was not checked, and shows the scan
    events = [line["event"] for line in _lines(capsys)]
    assert events == ["signature_not_checked", "model_scanned", "model_loaded"]


def test_a_malicious_pickle_is_refused_by_the_scan_and_never_runs(s3, bucket, tmp_path, capsys, restore_logging):
    # Given a pickle that runs a shell command when loaded (no signing configured)
    marker = tmp_path / "pwned"
    published = upload(s3, bucket, pickle.dumps(_RunsAShellCommand(f"touch {marker}")), "0" * 64)

    # When the server starts (MODEL_PICKLE_SCAN defaults to refuse)
    code, lines = run_main({"MODEL_S3_URI": published.uri, "MODEL_VERSION_ID": published.version_id}, capsys)

    # Then it is refused naming the import, and the command never ran
    assert code == 1
    error = the_one_error(lines)
    assert error["reason"] == "pickle_refused"
    assert "posix.system" in error["message"]
    assert not marker.exists()


def test_a_signed_malicious_pickle_is_still_refused_by_the_scan(s3, bucket, keys, tmp_path, capsys, restore_logging):
    # Given a malicious pickle signed with the trusted key (a compromised training job signs what it made)
    publisher, _ = keys
    marker = tmp_path / "pwned"
    body = pickle.dumps(_RunsAShellCommand(f"touch {marker}"))
    published = signed_upload(s3, bucket, body, publisher, tmp_path)

    # When the server starts / Then the signature verifies, the scan refuses, nothing ran
    error = refused(signing_env(published, key_trust(publisher.public_key)), capsys)
    assert error["reason"] == "pickle_refused"
    assert not marker.exists()


def test_a_dangerous_import_after_a_numpy_array_in_a_joblib_file_is_refused_while_loading(
    s3, bucket, tmp_path, capsys, restore_logging
):
    # Given a joblib file whose dangerous object follows a numpy array: the static scan stops at the array
    import joblib
    import numpy as np

    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump([np.arange(1000.0), _RunsAShellCommand(f"touch {marker}")], path)
    published = upload(s3, bucket, path.read_bytes(), "0" * 64)

    # When the server starts
    code, lines = run_main({"MODEL_S3_URI": published.uri, "MODEL_VERSION_ID": published.version_id}, capsys)

    # Then the guarded unpickler refuses the import before it is called: the command never ran
    assert code == 1
    error = the_one_error(lines)
    assert error["reason"] == "pickle_refused" and "posix.system" in error["message"]
    scanned = next(line for line in lines if line["event"] == "model_scanned")
    assert scanned["complete"] is False
    assert not marker.exists()


def test_the_server_imports_model_signing_only_when_trust_is_configured():
    # Given the server's modules imported as the process does at start-up
    # When no trust is configured / Then model_signing (about 2 s to import) is not loaded
    code = (
        "import sys; from aurelius_server import app, verification; "
        "from aurelius_server.config import Config; "
        "Config.from_env({'MODEL_S3_URI': 's3://b-1/k', 'MODEL_VERSION_ID': 'v'}); "
        "print('model_signing' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SERVER_DIR)}, capture_output=True, text=True
    )
    assert result.stdout.strip() == "False", result.stderr


def _hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _load_in_process(env: dict[str, str]) -> Any:
    from aurelius_server.app import load_and_check
    from aurelius_server.config import Config
    from aurelius_server.logs import configure_logging

    configure_logging()
    return load_and_check(Config.from_env(env), None)


def _lines(capsys) -> list[dict]:
    from .helpers import log_lines

    return [line for line in log_lines(capsys.readouterr().out) if line["logger"] == "aurelius_server"]
