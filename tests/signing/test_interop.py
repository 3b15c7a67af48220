"""Same format, no private dialect: the upstream model_signing CLI and aurelius accept each other's bundles.

The CLI runs as its own process (`python -m model_signing ...`, model-signing 1.1.1), offline.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aurelius.signing import CertificateSigner, KeySigner, sign_file
from aurelius_server import signature
from aurelius_server.signature import parse_trust, verify_digest

from .conftest import sha256_of, tampered_copy
from .material import certificate_trust, key_trust


def model_signing_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_a_bundle_made_by_the_upstream_cli_with_a_key_verifies_with_verify_digest(model, key, tmp_path):
    # Given a model signed by `python -m model_signing sign key`
    bundle = tmp_path / "model.pkl.sig"
    result = model_signing_cli("sign", "key", "--private_key", key.private_key, "--signature", bundle, model)
    assert result.returncode == 0, result.stderr
    # When the server checks it over the digest it computed
    verified = verify_digest(sha256_of(model), bundle.read_bytes(), parse_trust(key_trust(key.public_key)))
    # Then it is accepted
    assert verified.sha256 == sha256_of(model)


def test_a_bundle_made_by_aurelius_verifies_with_the_upstream_cli_and_a_tampered_copy_does_not(model, key, tmp_path):
    # Given a model signed by aurelius, the bundle written where the CLI reads it
    bundle = tmp_path / "model.pkl.sig"
    bundle.write_bytes(sign_file(model, KeySigner(key.private_key)).bundle)
    # When `python -m model_signing verify key` checks the model with it
    accepted = model_signing_cli("verify", "key", "--public_key", key.public_key, "--signature", bundle, model)
    # Then it succeeds
    assert accepted.returncode == 0, accepted.stderr
    assert "Verification succeeded" in accepted.stdout
    # And the same check over a copy with one byte changed fails (the CLI is a real check)
    tampered = tampered_copy(model)
    refused = model_signing_cli("verify", "key", "--public_key", key.public_key, "--signature", bundle, tampered)
    assert refused.returncode == 1
    assert "Hash mismatch" in refused.stderr


def test_certificate_bundles_interoperate_both_ways(model, pki, tmp_path):
    # Given the operator's PKI: root (trusted), intermediate, leaf signing certificate and key
    upstream = tmp_path / "upstream.sig"
    result = model_signing_cli(
        "sign", "certificate", "--private_key", pki.leaf_key, "--signing_certificate", pki.leaf,
        "--certificate_chain", pki.intermediate, "--signature", upstream, model,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # When aurelius verifies the CLI's bundle / Then it is accepted
    trust = parse_trust(certificate_trust(pki.root))
    assert verify_digest(sha256_of(model), upstream.read_bytes(), trust).signer == "CN=operator model signer"
    # And when the CLI verifies aurelius' bundle with the root / Then it succeeds
    ours = tmp_path / "ours.sig"
    ours.write_bytes(sign_file(model, CertificateSigner(pki.leaf_key, pki.leaf, (pki.intermediate,))).bundle)
    verified = model_signing_cli("verify", "certificate", "--certificate_chain", pki.root, "--signature", ours, model)
    assert verified.returncode == 0, verified.stderr


def test_an_upstream_bundle_by_another_key_is_untrusted(model, key, other_key, tmp_path):
    # Given the CLI signing with a key the operator does not trust
    bundle = tmp_path / "model.pkl.sig"
    result = model_signing_cli("sign", "key", "--private_key", other_key.private_key, "--signature", bundle, model)
    assert result.returncode == 0, result.stderr
    # Then aurelius refuses it
    with pytest.raises(signature.SignerUntrusted):
        verify_digest(sha256_of(model), bundle.read_bytes(), parse_trust(key_trust(key.public_key)))
