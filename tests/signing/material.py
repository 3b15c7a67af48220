"""Keys, certificates and model files made in the tests with ``cryptography`` (nothing checked in)."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    private_key: Path
    public_key: Path

    @property
    def public_pem(self) -> str:
        return self.public_key.read_text()


def make_key(
    directory: Path, name: str, curve: ec.EllipticCurve | None = None, password: bytes | None = None
) -> KeyPair:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    private = directory / f"{name}.pem"
    public = directory / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    public.write_bytes(_public_pem(key))
    return KeyPair(private, public)


def public_key_pem(curve: ec.EllipticCurve | None = None) -> str:
    """A fresh ECDSA public key, PEM (SubjectPublicKeyInfo): what a trust configuration lists."""
    return _public_pem(ec.generate_private_key(curve or ec.SECP256R1())).decode()


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_private_key(path: Path, key) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


@dataclass(frozen=True)
class Pki:
    root: Path  # the operator's trust anchor
    intermediate: Path
    leaf: Path  # the signing certificate
    leaf_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, issuer, public_key, issuer_key, *, ca: bool, signing: bool = True) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        # a leaf that cannot sign gets key agreement only (an all-false KeyUsage is not a valid certificate)
        builder = builder.add_extension(
            x509.KeyUsage(signing, False, False, False, not signing, False, False, False, False), critical=True
        )
        if signing:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, name: str = "ca", *, leaf_can_sign: bool = True) -> Pki:
    """A self-made root CA -> intermediate CA -> leaf signing certificate, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP384R1())
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate(f"{name} root", f"{name} root", root_key.public_key(), root_key, ca=True)
    intermediate = _certificate(
        f"{name} intermediate", f"{name} root", intermediate_key.public_key(), root_key, ca=True
    )
    leaf = _certificate(
        f"{name} model signer",
        f"{name} intermediate",
        leaf_key.public_key(),
        intermediate_key,
        ca=False,
        signing=leaf_can_sign,
    )
    paths = {}
    for label, certificate in (("root", root), ("intermediate", intermediate), ("leaf", leaf)):
        paths[label] = directory / f"{name}-{label}.crt"
        paths[label].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Pki(
        paths["root"], paths["intermediate"], paths["leaf"], write_private_key(directory / f"{name}-leaf.pem", leaf_key)
    )


def key_trust(*public_keys: Path) -> str:
    return json.dumps({"mode": "key", "public_keys": [path.read_text() for path in public_keys]})


def certificate_trust(*certificates: Path) -> str:
    return json.dumps({"mode": "certificate", "certificate_chain": [path.read_text() for path in certificates]})
