"""Sign a model file: the OpenSSF model signing format, made with the ``model-signing`` package.

``sign_file(path, signer)`` hashes the file once (model-signing's own hashing, sha256, the
default "files" serialization) and returns the bundle (a Sigstore bundle with a DSSE envelope
over an in-toto statement, JSON bytes) with the file's sha256, so a caller that uploads the
model needs no second pass for its checksum. The bundle is exactly what
``python -m model_signing sign key|certificate|sigstore ... MODEL`` writes for that file:
``python -m model_signing verify ...`` accepts it, and the model server accepts the CLI's.

Signers:

- ``KeySigner(private_key_pem_path, password=None)``: an ECDSA P-256, P-384 or P-521 private key
  (PEM). model-signing 1.1.1 supports no other key type, Ed25519 included: refused up front
  with that reason;
- ``CertificateSigner(private_key, signing_certificate, certificate_chain)``: bring your own
  PKI; the bundle carries the signing certificate and the chain (at least its issuer:
  model-signing 1.1.1 needs one), and the server trusts the operator's root;
- ``SigstoreSigner(identity_token=None, oidc_issuer=None, use_staging=False)``: Sigstore
  keyless. Needs Sigstore's public services (Fulcio, Rekor, an OIDC provider) at signing time
  and at verification time: not exercised by the offline tests.

Where the bundle goes in S3: ``aurelius.core.signature_layout`` (``{model_key}.sig/{sha256}``).
model-signing's signer classes live in its ``_signing`` package; the version is pinned
(requirements.lock) and tests/signing checks interoperability with its CLI both ways.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurelius.core.signature_layout import check_sha256_hex

SUPPORTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_SINGLE_FILE = "."  # model-signing's resource name for a file signed on its own


class SigningError(Exception):
    """The model cannot be signed with what was given (bad key, certificate, path)."""


@dataclass(frozen=True)
class SignedModel:
    bundle: bytes  # the signature object's body
    sha256: str  # hex digest of the model file: the S3 key suffix, metadata and ChecksumSHA256
    size: int


@dataclass(frozen=True)
class KeySigner:
    private_key: Path
    password: bytes | None = None


@dataclass(frozen=True)
class CertificateSigner:
    private_key: Path
    signing_certificate: Path
    certificate_chain: tuple[Path, ...] = ()


@dataclass(frozen=True)
class SigstoreSigner:
    identity_token: str | None = None  # e.g. a CI's OIDC token; None: ambient credentials, then a browser flow
    oidc_issuer: str | None = None
    use_staging: bool = False


Signer = KeySigner | CertificateSigner | SigstoreSigner


def sign_file(path: Path | str, signer: Signer) -> SignedModel:
    """Sign one model file; the bundle covers its sha256. Raises SigningError for bad input."""
    from model_signing import hashing
    from model_signing._signing import signing

    path = Path(path)
    if not path.is_file() or path.is_symlink():
        raise SigningError(f"{path} is not a regular file: sign the model file itself")
    backend = _backend(signer)  # checks the key before the (long) hashing pass
    manifest = hashing.Config().hash(path)
    digest = _single_file_digest(manifest)
    try:
        signature = backend.sign(signing.Payload(manifest))
    except ValueError as exc:
        raise SigningError(f"signing failed: {exc}") from None
    return SignedModel(signature.bundle.to_json().encode("utf-8"), digest, path.stat().st_size)


def signed_sha256(bundle: bytes) -> str:
    """The file sha256 a bundle claims to sign, read WITHOUT checking the signature.

    For naming and display only (``aurelius sign`` prints it); trust decisions use the server's
    ``verify_digest``.
    """
    import base64

    try:
        envelope = json.loads(bundle)["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"]))
        resources = statement["predicate"]["resources"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningError(f"not a model signing bundle: {type(exc).__name__}: {exc}") from None
    if len(resources) != 1 or resources[0].get("name") != _SINGLE_FILE or resources[0].get("algorithm") != "sha256":
        raise SigningError("the bundle does not sign one file with sha256")
    return check_sha256_hex(resources[0]["digest"])


def _single_file_digest(manifest: Any) -> str:
    resources = list(manifest.resource_descriptors())
    if len(resources) != 1 or resources[0].identifier != _SINGLE_FILE:
        raise SigningError("model-signing did not hash exactly one file")  # cannot happen for a regular file
    return resources[0].digest.digest_hex


def _backend(signer: Signer) -> Any:
    if isinstance(signer, KeySigner):
        from model_signing._signing import sign_ec_key

        _check_private_key(signer.private_key, signer.password)
        return sign_ec_key.Signer(Path(signer.private_key), signer.password)
    if isinstance(signer, CertificateSigner):
        from model_signing._signing import sign_certificate

        _check_private_key(signer.private_key, None)
        if not signer.certificate_chain:
            # model-signing 1.1.1 fails on an empty chain (it parses the joined chain files as PEM)
            raise SigningError(
                "certificate signing needs the chain that issued the signing certificate (at least its issuer): "
                "model-signing 1.1.1 cannot sign with a certificate alone"
            )
        for certificate in (signer.signing_certificate, *signer.certificate_chain):
            _check_certificate(certificate)
        try:
            return sign_certificate.Signer(
                Path(signer.private_key),
                Path(signer.signing_certificate),
                [Path(certificate) for certificate in signer.certificate_chain],
            )
        except ValueError as exc:
            raise SigningError(f"{signer.signing_certificate}: {exc}") from None
    if isinstance(signer, SigstoreSigner):
        from model_signing._signing import sign_sigstore

        return sign_sigstore.Signer(
            identity_token=signer.identity_token,
            oidc_issuer=signer.oidc_issuer,
            use_staging=signer.use_staging,
            use_ambient_credentials=signer.identity_token is None,
        )
    raise TypeError(f"not a signer: {signer!r}")


def _check_private_key(path: Path, password: bytes | None) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password)
    except OSError as exc:
        raise SigningError(f"cannot read the private key {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{path} is not a usable PEM private key: {exc}") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raise SigningError(
            f"{path} is an Ed25519 key: model-signing 1.1.1 signs with ECDSA keys only "
            f"({', '.join(SUPPORTED_CURVES.values())})"
        )
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in SUPPORTED_CURVES:
        kind = key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
        raise SigningError(f"{path} is a {kind} key: use ECDSA {', '.join(SUPPORTED_CURVES.values())}")


def _check_certificate(path: Path) -> None:
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as exc:
        raise SigningError(f"cannot read the certificate {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SigningError(f"{path} is not a PEM certificate: {exc}") from None
    if not certificates:
        raise SigningError(f"{path} holds no certificate")
