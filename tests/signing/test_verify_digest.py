"""verify_digest: the server's check of a bundle over the digest it computed while downloading.

Real cryptography, offline: keys and certificates are made in the tests (material.py).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from model_signing import hashing
from model_signing import signing as ms_signing

from aurelius.signing import CertificateSigner, KeySigner, sign_file
from aurelius_server import signature
from aurelius_server.signature import parse_trust, verify_digest

from .conftest import sha256_of, tampered_copy
from .material import certificate_trust, key_trust, make_key, make_pki


def test_a_bundle_signed_with_a_trusted_key_verifies_over_the_precomputed_digest(model, key):
    # Given a model signed with the publisher's key and the server trusting that key
    signed = sign_file(model, KeySigner(key.private_key))
    # When the server checks the bundle against the digest it computed while downloading
    verified = verify_digest(sha256_of(model), signed.bundle, parse_trust(key_trust(key.public_key)))
    # Then it is accepted, naming the signer and the digest
    assert verified.sha256 == sha256_of(model) == signed.sha256
    assert verified.mode == "key"
    assert verified.signer == f"key sha256:{signature.key_id(key.public_key.read_bytes())}"
    assert verified.model_name == "model.pkl"


def test_p384_keys_sign_and_verify(model, material):
    from cryptography.hazmat.primitives.asymmetric import ec

    # Given a P-384 key pair
    p384 = make_key(material, "p384", ec.SECP384R1())
    # When a model is signed and verified with it / Then it is accepted
    signed = sign_file(model, KeySigner(p384.private_key))
    assert verify_digest(signed.sha256, signed.bundle, parse_trust(key_trust(p384.public_key))).sha256 == signed.sha256


def test_the_right_key_is_chosen_among_several_trusted_keys(model, key, other_key):
    # Given two trusted keys, the publisher's second
    signed = sign_file(model, KeySigner(key.private_key))
    trust = parse_trust(key_trust(other_key.public_key, key.public_key))
    # When verified / Then the publisher's key is the one named
    assert verify_digest(signed.sha256, signed.bundle, trust).signer.endswith(trust.key_ids[1])


def test_a_tampered_byte_is_a_digest_mismatch(model, key):
    # Given a signed model, then one byte of it changed
    signed = sign_file(model, KeySigner(key.private_key))
    tampered = tampered_copy(model)
    # When the server computes the digest of what it downloaded and checks the (genuine) bundle
    with pytest.raises(signature.DigestMismatch) as raised:
        verify_digest(sha256_of(tampered), signed.bundle, parse_trust(key_trust(key.public_key)))
    # Then it is refused, naming both digests
    assert signed.sha256 in str(raised.value) and sha256_of(tampered) in str(raised.value)
    assert raised.value.reason == "digest_mismatch"


def test_the_signature_of_another_model_is_refused(model, key, tmp_path):
    # Given another model, genuinely signed by the trusted key
    another = tmp_path / "another.pkl"
    another.write_bytes(b"\x80\x05another model.")
    bundle_of_another = sign_file(another, KeySigner(key.private_key)).bundle
    # When presented as the signature of our model
    with pytest.raises(signature.DigestMismatch, match="it signs other bytes"):
        verify_digest(sha256_of(model), bundle_of_another, parse_trust(key_trust(key.public_key)))


def test_a_signature_by_a_key_that_is_not_trusted_is_refused(model, key, other_key):
    # Given a model signed by a key the operator does not trust
    signed = sign_file(model, KeySigner(other_key.private_key))
    # When verified against the operator's key / Then the signer is untrusted, named by its key id
    with pytest.raises(signature.SignerUntrusted, match="not one of the 1 trusted key") as raised:
        verify_digest(signed.sha256, signed.bundle, parse_trust(key_trust(key.public_key)))
    assert signature.key_id(other_key.public_key.read_bytes()) in str(raised.value)


def test_a_bundle_whose_key_hint_was_forged_fails_the_signature_check(model, key, other_key):
    # Given a bundle signed by another key whose hint was rewritten to the trusted key's id
    signed = sign_file(model, KeySigner(other_key.private_key))
    document = json.loads(signed.bundle)
    document["verificationMaterial"]["publicKey"]["hint"] = signature.key_id(key.public_key.read_bytes())
    # When verified / Then the signature does not verify with the trusted key
    with pytest.raises(signature.SignatureInvalid):
        verify_digest(signed.sha256, json.dumps(document).encode(), parse_trust(key_trust(key.public_key)))


def test_a_changed_statement_breaks_the_signature(model, key):
    # Given a genuine bundle whose statement was rewritten to claim the digest of other bytes
    signed = sign_file(model, KeySigner(key.private_key))
    document = json.loads(signed.bundle)
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    forged = hashlib.sha256(b"evil").hexdigest()
    statement["predicate"]["resources"][0]["digest"] = forged
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(bytes.fromhex(forged)).hexdigest()
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    # When checked against the forged digest / Then the signature check fails
    with pytest.raises(signature.SignatureInvalid, match="does not verify"):
        verify_digest(forged, json.dumps(document).encode(), parse_trust(key_trust(key.public_key)))


def test_no_signature_is_missing(model, key):
    with pytest.raises(signature.SignatureMissing, match=f"no signature for sha256 {sha256_of(model)}"):
        verify_digest(sha256_of(model), None, parse_trust(key_trust(key.public_key)))


@pytest.mark.parametrize(
    "bundle",
    [
        b"",
        b"not json",
        b"[]",
        b'{"mediaType": "x"}',
        json.dumps({"dsseEnvelope": {}, "verificationMaterial": {}}).encode(),
    ],
)
def test_a_bundle_that_is_not_a_sigstore_bundle_is_malformed(model, key, bundle):
    with pytest.raises(signature.SignatureMalformed):
        verify_digest(sha256_of(model), bundle, parse_trust(key_trust(key.public_key)))


def test_a_certificate_chain_signature_verifies_against_the_operators_root(model, pki):
    # Given a model signed with a leaf certificate issued by the operator's intermediate CA
    signed = sign_file(model, CertificateSigner(pki.leaf_key, pki.leaf, (pki.intermediate,)))
    # When the server trusts the operator's root only (the bundle carries leaf + intermediate)
    verified = verify_digest(signed.sha256, signed.bundle, parse_trust(certificate_trust(pki.root)))
    # Then it is accepted, naming the leaf's subject
    assert verified.signer == "CN=operator model signer"
    assert verified.mode == "certificate"


def test_a_certificate_from_another_ca_is_untrusted(model, pki, material):
    # Given a model signed under a CA the operator does not trust
    stranger = make_pki(material / "stranger", "stranger")
    signed = sign_file(model, CertificateSigner(stranger.leaf_key, stranger.leaf, (stranger.intermediate,)))
    # When verified against the operator's root / Then untrusted, naming the leaf
    with pytest.raises(signature.SignerUntrusted, match="'CN=stranger model signer' does not chain"):
        verify_digest(signed.sha256, signed.bundle, parse_trust(certificate_trust(pki.root)))


def test_a_certificate_without_the_signing_usage_is_untrusted(model, material):
    # Given a leaf certificate without digitalSignature/codeSigning, under the trusted root
    no_usage = make_pki(material / "nousage", "nousage", leaf_can_sign=False)
    signed = sign_file(model, CertificateSigner(no_usage.leaf_key, no_usage.leaf, (no_usage.intermediate,)))
    # When verified / Then refused: the certificate is not for signing
    with pytest.raises(signature.SignerUntrusted, match="is not for signing"):
        verify_digest(signed.sha256, signed.bundle, parse_trust(certificate_trust(no_usage.root)))


def test_a_key_bundle_under_certificate_trust_and_the_reverse_are_untrusted(model, key, pki):
    key_bundle = sign_file(model, KeySigner(key.private_key)).bundle
    certificate_bundle = sign_file(model, CertificateSigner(pki.leaf_key, pki.leaf, (pki.intermediate,))).bundle
    with pytest.raises(signature.SignerUntrusted, match="bare key"):
        verify_digest(sha256_of(model), key_bundle, parse_trust(certificate_trust(pki.root)))
    with pytest.raises(signature.SignerUntrusted, match="made with a certificate"):
        verify_digest(sha256_of(model), certificate_bundle, parse_trust(key_trust(key.public_key)))


def test_a_shard_serialization_signature_is_unsupported_with_the_reason(model, key, tmp_path):
    # Given a bundle hashing the model in shards (model-signing's option, not the default)
    output = tmp_path / "shards.sig"
    ms_signing.Config().use_elliptic_key_signer(private_key=key.private_key).set_hashing_config(
        hashing.Config().use_shard_serialization(shard_size=1024)
    ).sign(model, output)
    # When verified over the whole-file digest / Then refused, saying how to sign instead
    with pytest.raises(signature.SignatureUnsupported, match="sign with the default"):
        verify_digest(sha256_of(model), output.read_bytes(), parse_trust(key_trust(key.public_key)))


def test_a_directory_signature_is_unsupported_even_if_it_holds_the_model(model, key, tmp_path):
    # Given a signature over a directory that contains the model (and another file)
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "model.pkl").write_bytes(model.read_bytes())
    (directory / "README").write_text("hello")
    output = tmp_path / "dir.sig"
    ms_signing.Config().use_elliptic_key_signer(private_key=key.private_key).sign(directory, output)
    # When verified over the model's digest / Then refused: a model is one file
    with pytest.raises(signature.SignatureUnsupported, match="covers 2 file"):
        verify_digest(sha256_of(model), output.read_bytes(), parse_trust(key_trust(key.public_key)))


def test_every_failure_is_a_signature_error_with_a_reason_code():
    # Given the failure classes / Then each is a SignatureError with its own reason code
    classes = [
        signature.SignatureMissing,
        signature.SignatureMalformed,
        signature.SignatureInvalid,
        signature.SignerUntrusted,
        signature.DigestMismatch,
        signature.SignatureUnsupported,
        signature.SigstoreUnavailable,
    ]
    assert all(issubclass(cls, signature.SignatureError) for cls in classes)
    assert len({cls.reason for cls in classes}) == len(classes)


def test_a_bundle_with_no_signature_in_its_envelope_is_malformed(model, key):
    # Given a genuine bundle whose DSSE envelope lost its signatures
    signed = sign_file(model, KeySigner(key.private_key))
    document = json.loads(signed.bundle)
    document["dsseEnvelope"]["signatures"] = []
    # When verified / Then malformed, not a crash
    with pytest.raises(signature.SignatureMalformed):
        verify_digest(signed.sha256, json.dumps(document).encode(), parse_trust(key_trust(key.public_key)))


def test_an_oversized_signature_object_is_refused_before_parsing(model, key):
    # Given a "signature" larger than any bundle for one file
    huge = b" " * (signature.MAX_BUNDLE_BYTES + 1)
    # When verified / Then refused with the limit named
    with pytest.raises(signature.SignatureMalformed, match=f"more than a bundle's {signature.MAX_BUNDLE_BYTES}"):
        verify_digest(sha256_of(model), huge, parse_trust(key_trust(key.public_key)))


def test_sigstore_trust_refuses_a_bundle_that_is_not_a_sigstore_bundle_before_any_network_call(model):
    # Given Sigstore keyless trust (verification needs Sigstore's public trust root: not reachable here)
    trust = parse_trust(json.dumps({"mode": "sigstore", "identity": "ci@example.com", "issuer": "https://issuer"}))
    # When the sidecar is not a bundle / Then it is malformed, decided offline
    with pytest.raises(signature.SignatureMalformed, match="not a Sigstore bundle"):
        verify_digest(sha256_of(model), b"{}", trust)


def test_trusting_only_an_intermediate_does_not_anchor_the_chain(model, pki):
    # Given a certificate signature and a trust that lists the intermediate but not the root
    signed = sign_file(model, CertificateSigner(pki.leaf_key, pki.leaf, (pki.intermediate,)))
    # When verified / Then untrusted, as `model_signing verify certificate` decides: the root must be listed
    with pytest.raises(signature.SignerUntrusted, match="unable to get issuer certificate"):
        verify_digest(signed.sha256, signed.bundle, parse_trust(certificate_trust(pki.intermediate)))
