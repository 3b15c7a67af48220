"""MODEL_SIGNING_TRUST: the operator's trust material, validated before the server loads anything."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from aurelius_server.config import ConfigError
from aurelius_server.signature import TrustConfigError, key_id, parse_trust, trust_from_env

from .material import certificate_trust, key_trust


def public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_key_mode_keeps_every_key_and_its_bundle_hint(key, other_key):
    # Given two trusted public keys / When parsed
    trust = parse_trust(key_trust(key.public_key, other_key.public_key))
    # Then both are kept, with the id model-signing writes as the bundle's key hint
    assert trust.mode == "key"
    assert trust.key_ids == (key_id(key.public_key.read_bytes()), key_id(other_key.public_key.read_bytes()))
    assert trust.describe() == {"mode": "key", "keys": [f"sha256:{i}" for i in trust.key_ids]}


def test_certificate_mode_keeps_the_chain_and_describes_its_subjects(pki):
    # Given the operator's root and intermediate / When parsed / Then the log line names the anchors
    trust = parse_trust(certificate_trust(pki.root, pki.intermediate))
    assert trust.mode == "certificate"
    assert trust.describe()["anchors"] == ["CN=operator root", "CN=operator intermediate"]


def test_sigstore_mode_needs_an_identity_and_an_issuer():
    # Given a Sigstore identity and issuer / When parsed / Then both are kept
    trust = parse_trust(json.dumps({"mode": "sigstore", "identity": "ci@example.com", "issuer": "https://issuer"}))
    assert (trust.identity, trust.issuer) == ("ci@example.com", "https://issuer")
    # And without the issuer it is refused, naming the field
    with pytest.raises(TrustConfigError, match="'issuer'"):
        parse_trust(json.dumps({"mode": "sigstore", "identity": "ci@example.com"}))


def test_unset_or_empty_trust_means_none():
    assert trust_from_env({}) is None
    assert trust_from_env({"MODEL_SIGNING_TRUST": "  "}) is None


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("{not json", "is not JSON"),
        ("[]", "must be a JSON object"),
        ('{"mode": "pgp"}', "mode 'pgp' is not one of key, certificate, sigstore"),
        ('{"mode": "key"}', "needs 'public_keys': a non-empty list"),
        ('{"mode": "key", "public_keys": []}', "needs 'public_keys': a non-empty list"),
        ('{"mode": "key", "public_keys": ["abc"]}', r"public_keys\[0\] is not a PEM string"),
        (
            '{"mode": "key", "public_keys": ["-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----"]}',
            r"public_keys\[0\] is not a PEM public key",
        ),
        # an empty chain would make model-signing trust the public web CAs (certifi): never
        ('{"mode": "certificate", "certificate_chain": []}', "needs 'certificate_chain': a non-empty list"),
        ('{"mode": "key", "public_keys": [], "certificate_chain": []}', "takes only"),
    ],
)
def test_bad_trust_is_a_config_error_naming_the_variable_and_the_rule(text, rule):
    # Given a bad MODEL_SIGNING_TRUST / When parsed / Then a ConfigError names the variable and the rule
    with pytest.raises(ConfigError, match=rule) as raised:
        trust_from_env({"MODEL_SIGNING_TRUST": text})
    assert str(raised.value).startswith("MODEL_SIGNING_TRUST ")


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (
            ed25519.Ed25519PrivateKey.generate,
            "Ed25519 key: model-signing 1.1.1 signs and verifies with ECDSA keys only",
        ),
        (lambda: rsa.generate_private_key(65537, 2048), "RSAPublicKey key: use ECDSA"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "secp256k1 key: use ECDSA P-256, P-384, P-521"),
    ],
)
def test_a_key_type_model_signing_cannot_verify_is_refused_up_front(make, rule):
    # Given a public key model-signing 1.1.1 does not support / When parsed / Then the reason is named
    with pytest.raises(TrustConfigError, match=rule):
        parse_trust(json.dumps({"mode": "key", "public_keys": [public_pem(make())]}))


def test_a_certificate_that_is_not_pem_is_refused(pki):
    with pytest.raises(TrustConfigError, match=r"certificate_chain\[1\] is not a PEM certificate"):
        parse_trust(
            json.dumps(
                {"mode": "certificate", "certificate_chain": [pki.root.read_text(), "-----BEGIN CERTIFICATE-----\nx\n"]}
            )
        )
