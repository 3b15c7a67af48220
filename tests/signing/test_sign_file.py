"""sign_file and `aurelius sign`: bad input is refused with the reason, before any hashing."""

from __future__ import annotations

import argparse
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from aurelius import signing_commands
from aurelius.signing import CertificateSigner, KeySigner, SigningError, sign_file, signed_sha256
from aurelius_server.signature import parse_trust, verify_digest

from .conftest import sha256_of
from .material import key_trust, make_key, make_pki, write_private_key


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (ed25519.Ed25519PrivateKey.generate, "Ed25519 key: model-signing 1.1.1 signs with ECDSA keys only"),
        (lambda: rsa.generate_private_key(65537, 2048), "RSAPrivateKey key: use ECDSA"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "secp256k1 key: use ECDSA"),
    ],
)
def test_a_key_type_model_signing_cannot_use_is_refused_with_the_reason(model, tmp_path, make, reason):
    # Given a private key of a type model-signing 1.1.1 does not sign with
    path = write_private_key(tmp_path / "key.pem", make())
    # When signing / Then refused, naming the supported curves
    with pytest.raises(SigningError, match=reason):
        sign_file(model, KeySigner(path))


def test_a_model_that_is_not_a_regular_file_is_refused(tmp_path, key):
    with pytest.raises(SigningError, match="is not a regular file"):
        sign_file(tmp_path, KeySigner(key.private_key))
    with pytest.raises(SigningError, match="is not a regular file"):
        sign_file(tmp_path / "missing.pkl", KeySigner(key.private_key))


def test_an_unreadable_or_non_pem_key_is_refused(model, tmp_path):
    with pytest.raises(SigningError, match="cannot read the private key"):
        sign_file(model, KeySigner(tmp_path / "absent.pem"))
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(SigningError, match="is not a usable PEM private key"):
        sign_file(model, KeySigner(tmp_path / "junk.pem"))


def test_an_encrypted_key_signs_with_its_password_and_not_without(model, tmp_path):
    # Given a password-protected key
    locked = make_key(tmp_path, "locked", password=b"s3cret")
    # When signing without the password / Then refused
    with pytest.raises(SigningError, match="not a usable PEM private key"):
        sign_file(model, KeySigner(locked.private_key))
    # And with it / Then the bundle verifies
    signed = sign_file(model, KeySigner(locked.private_key, b"s3cret"))
    assert verify_digest(signed.sha256, signed.bundle, parse_trust(key_trust(locked.public_key)))


def test_a_certificate_that_does_not_match_the_key_is_refused(model, key, pki):
    # Given the PKI's leaf certificate but another private key
    with pytest.raises(SigningError, match="does not match"):
        sign_file(model, CertificateSigner(key.private_key, pki.leaf, (pki.intermediate,)))


def test_signed_sha256_reads_the_claimed_digest_of_a_bundle(model, key):
    signed = sign_file(model, KeySigner(key.private_key))
    assert signed_sha256(signed.bundle) == sha256_of(model) == signed.sha256
    assert signed.size == model.stat().st_size
    with pytest.raises(SigningError, match="not a model signing bundle"):
        signed_sha256(b"{}")


def sign_command(argv: list[str]) -> tuple[int, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="aurelius")
    signing_commands.register(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["sign", *argv])
    return args.run(args, None), args


def test_aurelius_sign_writes_the_bundle_next_to_the_model_and_prints_the_s3_key(model, key, capsys):
    # Given a model and a key / When `aurelius sign MODEL --key KEY`
    code, _ = sign_command([str(model), "--key", str(key.private_key)])
    # Then it exits 0 and MODEL.sig verifies over the model's digest
    assert code == 0
    bundle = model.with_name("model.pkl.sig").read_bytes()
    assert verify_digest(sha256_of(model), bundle, parse_trust(key_trust(key.public_key)))
    # And the output names the digest and where the bundle goes in S3
    out = capsys.readouterr().out
    assert f"sha256 {sha256_of(model)}" in out
    assert f"<model key>.sig/{sha256_of(model)}" in out
    assert not list(model.parent.glob(".*.partial"))


def test_aurelius_sign_with_a_certificate_and_an_output_path(model, tmp_path, material):
    pki = make_pki(material / "command", "command")
    output = tmp_path / "out" / "bundle.json"
    output.parent.mkdir()
    code, _ = sign_command(
        [str(model), "--key", str(pki.leaf_key), "--certificate", str(pki.leaf), "--chain", str(pki.intermediate),
         "--signature", str(output)]
    )  # fmt: skip
    assert code == 0
    chain = json.loads(output.read_bytes())["verificationMaterial"]["x509CertificateChain"]["certificates"]
    assert len(chain) == 2  # leaf + intermediate; the root stays with the operator


def test_aurelius_sign_with_bad_input_exits_2_and_writes_nothing(model, tmp_path, key, capsys):
    # Given --chain without --certificate, then an unsupported key
    code, _ = sign_command([str(model), "--key", str(key.private_key), "--chain", str(key.public_key)])
    assert code == 2
    assert "--chain needs --certificate" in capsys.readouterr().err
    ed = write_private_key(tmp_path / "ed.pem", ed25519.Ed25519PrivateKey.generate())
    code, _ = sign_command([str(model), "--key", str(ed)])
    assert code == 2
    assert "Ed25519" in capsys.readouterr().err
    # Then no bundle was written
    assert not model.with_name("model.pkl.sig").exists()


def test_aurelius_sign_needs_a_key_or_sigstore(model):
    with pytest.raises(SystemExit) as raised:
        sign_command([str(model)])
    assert raised.value.code == 2


def test_certificate_signing_without_the_issuing_chain_is_refused_with_the_reason(model, pki, capsys):
    # Given a signing certificate but no chain (model-signing 1.1.1 cannot sign that way)
    with pytest.raises(SigningError, match="needs the chain that issued the signing certificate"):
        sign_file(model, CertificateSigner(pki.leaf_key, pki.leaf, ()))
    code, _ = sign_command([str(model), "--key", str(pki.leaf_key), "--certificate", str(pki.leaf)])
    assert code == 2
    assert "--certificate needs --chain" in capsys.readouterr().err
