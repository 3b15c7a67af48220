"""Check an OpenSSF model signing bundle over a digest the server computed itself.

The server hashes the model while downloading it (one pass), so verification never reads the
file again: ``verify_digest(sha256_hex, bundle, trust)`` checks the bundle's signature with the
operator's trust material, then checks that the signed statement covers exactly those bytes.

What a bundle is (model-signing 1.1.1, the format of ``python -m model_signing sign``): a
Sigstore bundle whose DSSE envelope carries an in-toto statement. For one file signed on its own,
the statement's predicate lists one resource named ``.`` with the file's sha256, its
serialization is ``{"method": "files", "hash_type": "sha256", ...}``, and its subject digest is
sha256 over that resource digest (model-signing checks that consistency when it opens the
statement). We let model-signing's own verifiers check the signature and rebuild its manifest,
then compare that manifest with a ``model_signing.manifest.Manifest`` built from our digest, the
same comparison ``model_signing.verifying.Config.verify`` makes after hashing the file itself.

Where the bundle lives in S3 (``{model_key}.sig/{sha256hex}``): ``signature_key`` below, the
same function as ``aurelius/core/signature_layout.py`` on the operator side (this package ships
without ``aurelius``; a test asserts both agree). docs/threat-model.md explains the choice.

Trust comes from the environment variable ``MODEL_SIGNING_TRUST`` (JSON), set by the stack from
the operator's service settings, never from the bucket (or ``MODEL_SIGNING_TRUST_FILE``, a file
holding that JSON: the elb install writes one, a systemd environment file cannot hold JSON's
quotes safely):

- ``{"mode": "key", "public_keys": [PEM, ...]}``: ECDSA P-256, P-384 or P-521 public keys
  (model-signing 1.1.1 signs and verifies with elliptic-curve keys only; Ed25519 is refused
  with that reason);
- ``{"mode": "certificate", "certificate_chain": [PEM, ...]}``: your own CA. It must include
  the self-signed root (an intermediate alone does not anchor the chain, as with
  ``model_signing verify certificate``); any leaf under it whose key usage allows signing is
  trusted, so use a CA dedicated to model signing. Never empty: model-signing would fall back
  to the public web CAs;
- ``{"mode": "sigstore", "identity": ..., "issuer": ...}``: Sigstore keyless. Verification
  fetches Sigstore's public trust root (TUF) at startup, so the task needs internet access to
  Sigstore's services; it cannot be exercised offline.

Every failure raises a ``SignatureError`` subclass whose message names the reason; its
``reason`` attribute is a short code for logs and metrics.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from aurelius_server.config import ConfigError

TRUST_VARIABLE = "MODEL_SIGNING_TRUST"
TRUST_FILE_VARIABLE = "MODEL_SIGNING_TRUST_FILE"
SIGNATURE_INFIX = ".sig/"
MODES = ("key", "certificate", "sigstore")
# The curves model-signing 1.1.1 accepts (sign_ec_key._check_supported_ec_key).
SUPPORTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

# A key or certificate bundle for one file is a few KiB; read no more than this from the sidecar
# (check ContentLength before GetObject) so a huge object cannot exhaust the task's memory.
MAX_BUNDLE_BYTES = 1024 * 1024

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SINGLE_FILE = "."  # the resource name model-signing gives a file signed on its own


class TrustConfigError(ConfigError):
    """MODEL_SIGNING_TRUST does not describe usable trust material."""


class SignatureError(Exception):
    """The model's signature does not allow loading it. ``reason``: a short code."""

    reason = "signature_error"


class SignatureMissing(SignatureError):
    reason = "signature_missing"


class SignatureMalformed(SignatureError):
    reason = "signature_malformed"


class SignatureInvalid(SignatureError):
    reason = "signature_invalid"


class SignerUntrusted(SignatureError):
    reason = "signer_untrusted"


class DigestMismatch(SignatureError):
    reason = "digest_mismatch"


class SignatureUnsupported(SignatureError):
    reason = "signature_unsupported"


class SigstoreUnavailable(SignatureError):
    reason = "sigstore_unavailable"


class SignatureUnreadable(SignatureError):
    reason = "signature_unreadable"


@dataclass(frozen=True)
class Trust:
    mode: str
    public_keys: tuple[bytes, ...] = ()  # PEM, mode "key"
    certificate_chain: tuple[bytes, ...] = ()  # PEM, mode "certificate"
    identity: str | None = None  # mode "sigstore"
    issuer: str | None = None
    key_ids: tuple[str, ...] = field(default=(), compare=False)  # sha256 of each key's PEM (the bundle's hint)

    def describe(self) -> dict[str, Any]:
        """What the logs say about the trust material (never the material itself)."""
        if self.mode == "key":
            return {"mode": "key", "keys": [f"sha256:{key_id}" for key_id in self.key_ids]}
        if self.mode == "certificate":
            return {"mode": "certificate", "anchors": _subjects(b"".join(self.certificate_chain))}
        return {"mode": "sigstore", "identity": self.identity, "issuer": self.issuer}


@dataclass(frozen=True)
class VerifiedSignature:
    sha256: str
    mode: str
    signer: str  # key id, certificate subject or Sigstore identity
    model_name: str  # the statement's subject name: informative only (the file name when signed)

    def as_json(self) -> dict[str, str]:
        return {"sha256": self.sha256, "mode": self.mode, "signer": self.signer, "model_name": self.model_name}


def signature_key(model_key: str, sha256_hex: str) -> str:
    """``{model_key}.sig/{sha256hex}``: where the signature of these bytes lives."""
    _check_digest(sha256_hex)
    return f"{model_key}{SIGNATURE_INFIX}{sha256_hex}"


def read_bundle(s3: Any, bucket: str, model_key: str, sha256_hex: str) -> bytes | None:
    """The body of ``s3://bucket/{model_key}.sig/{sha256_hex}``, or None when there is none.

    The current version of the sidecar is read (not a pinned one): its content is checked by
    ``verify_digest``, so whoever overwrites it can only make the check fail. S3 answers 403, not
    404, for a missing key when the caller may not s3:ListBucket the bucket
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): that is reported as
    unreadable, naming both causes.
    """
    from botocore.exceptions import ClientError

    key = signature_key(model_key, sha256_hex)
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return None
        if code in ("AccessDenied", "403"):
            raise SignatureUnreadable(
                f"s3://{bucket}/{key}: access denied (no such signature, or the task role may not s3:GetObject "
                f"under s3://{bucket}/{model_key}{SIGNATURE_INFIX})"
            ) from None
        raise SignatureUnreadable(f"s3://{bucket}/{key}: {code or type(exc).__name__}: {exc}") from None
    body = response["Body"]
    try:
        length = response.get("ContentLength")
        if length is not None and length > MAX_BUNDLE_BYTES:
            raise SignatureMalformed(f"s3://{bucket}/{key} is {length} bytes, more than a bundle's {MAX_BUNDLE_BYTES}")
        return body.read(MAX_BUNDLE_BYTES + 1)  # verify_digest refuses anything longer
    finally:
        body.close()


# ---- trust material -----------------------------------------------------------------------


def trust_from_env(env: Mapping[str, str]) -> Trust | None:
    """The trust in ``MODEL_SIGNING_TRUST`` (or the file ``MODEL_SIGNING_TRUST_FILE`` names), or
    None when neither is set."""
    text, path = env.get(TRUST_VARIABLE, "").strip(), env.get(TRUST_FILE_VARIABLE, "").strip()
    if text and path:
        raise TrustConfigError(f"set {TRUST_VARIABLE} or {TRUST_FILE_VARIABLE}, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise TrustConfigError(f"{TRUST_FILE_VARIABLE} {path!r} cannot be read: {exc}") from None
        if not text:
            raise TrustConfigError(f"{TRUST_FILE_VARIABLE} {path!r} is empty")
    return parse_trust(text) if text else None


def parse_trust(text: str) -> Trust:
    """MODEL_SIGNING_TRUST's JSON -> Trust. TrustConfigError names the rule that failed."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _trust_error(f"is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(document, dict):
        raise _trust_error(f"must be a JSON object with a mode, got {type(document).__name__}")
    mode = document.get("mode")
    if mode not in MODES:
        raise _trust_error(f"mode {mode!r} is not one of {', '.join(MODES)}")
    allowed = {"key": {"public_keys"}, "certificate": {"certificate_chain"}, "sigstore": {"identity", "issuer"}}[mode]
    unknown = sorted(set(document) - allowed - {"mode"})
    if unknown:
        raise _trust_error(f"mode {mode!r} takes only {sorted(allowed)}, not {unknown}")
    if mode == "key":
        keys = tuple(_pem_list(document, "public_keys"))
        key_ids = tuple(_check_public_key(index, pem) for index, pem in enumerate(keys))
        return Trust("key", public_keys=keys, key_ids=key_ids)
    if mode == "certificate":
        chain = tuple(_pem_list(document, "certificate_chain"))
        for index, pem in enumerate(chain):
            _check_certificates(index, pem)
        return Trust("certificate", certificate_chain=chain)
    identity, issuer = document.get("identity"), document.get("issuer")
    for name, value in (("identity", identity), ("issuer", issuer)):
        if not isinstance(value, str) or not value.strip():
            raise _trust_error(f"mode 'sigstore' needs {name!r}: a non-empty string")
    return Trust("sigstore", identity=identity, issuer=issuer)


def key_id(public_key_pem: bytes) -> str:
    """The id model-signing writes as the bundle's key hint: sha256 of the key's SubjectPublicKeyInfo PEM."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_key_pem)
    canonical = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(canonical).hexdigest()


def _trust_error(rule: str) -> TrustConfigError:
    return TrustConfigError(f"{TRUST_VARIABLE} {rule}")


def _pem_list(document: dict[str, Any], name: str) -> list[bytes]:
    value = document.get(name)
    if not isinstance(value, list) or not value:
        raise _trust_error(f"mode {document['mode']!r} needs {name!r}: a non-empty list of PEM strings")
    for index, item in enumerate(value):
        if not isinstance(item, str) or "-----BEGIN " not in item:
            raise _trust_error(f"{name}[{index}] is not a PEM string")
    return [item.encode("ascii", errors="replace") for item in value]


def _check_public_key(index: int, pem: bytes) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    where = f"public_keys[{index}]"
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise _trust_error(f"{where} is not a PEM public key ({exc})") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        raise _trust_error(
            f"{where} is an Ed25519 key: model-signing 1.1.1 signs and verifies with ECDSA keys only "
            f"({', '.join(SUPPORTED_CURVES.values())})"
        )
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in SUPPORTED_CURVES:
        kind = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
        raise _trust_error(f"{where} is a {kind} key: use ECDSA {', '.join(SUPPORTED_CURVES.values())}")
    return key_id(pem)


def _check_certificates(index: int, pem: bytes) -> None:
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise _trust_error(f"certificate_chain[{index}] is not a PEM certificate ({exc})") from None
    if not certificates:
        raise _trust_error(f"certificate_chain[{index}] holds no certificate")


def _subjects(pem: bytes) -> list[str]:
    from cryptography import x509

    return [certificate.subject.rfc4514_string() for certificate in x509.load_pem_x509_certificates(pem)]


# ---- verification ---------------------------------------------------------------------------


class _Blob:
    """Bytes where model-signing expects a pathlib.Path it will read.

    model-signing's readers and verifiers take paths and only call ``read_text``/``read_bytes``
    on them; the server holds the bundle and the trust material in memory, so this avoids
    writing them to disk. (Its file-reading entry points are the only public ones.)
    """

    def __init__(self, data: bytes):
        self._data = data

    def read_bytes(self) -> bytes:
        return self._data

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._data.decode(encoding, errors)


def verify_digest(sha256_hex: str, bundle: bytes | None, trust: Trust) -> VerifiedSignature:
    """Check ``bundle`` with ``trust`` and that it signs exactly the bytes with ``sha256_hex``.

    ``bundle`` is the signature object's body, None when there is none. Reads no model bytes.
    Raises a SignatureError subclass naming the reason.
    """
    _check_digest(sha256_hex)
    if bundle is None:
        raise SignatureMissing(f"no signature for sha256 {sha256_hex}")
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise SignatureMalformed(f"the signature is {len(bundle)} bytes, more than a bundle's {MAX_BUNDLE_BYTES}")
    if trust.mode == "key":
        signed, signer = _verify_with_keys(bundle, trust)
    elif trust.mode == "certificate":
        signed, signer = _verify_with_certificates(bundle, trust)
    else:
        signed, signer = _verify_with_sigstore(bundle, trust)
    _check_covers(signed, sha256_hex)
    return VerifiedSignature(sha256_hex, trust.mode, signer, signed.model_name)


def _check_digest(sha256_hex: str) -> None:
    if not isinstance(sha256_hex, str) or not _SHA256_HEX.match(sha256_hex):
        raise ValueError(f"{sha256_hex!r} is not a sha256 digest (64 lower-case hex digits)")


def _read_pb_bundle(bundle: bytes) -> Any:
    """The bundle as model-signing's key/certificate verifiers read it (protobuf-spec models)."""
    from model_signing._signing import sign_sigstore_pb

    try:
        return sign_sigstore_pb.Signature.read(_Blob(bundle))
    except Exception as exc:  # JSON, missing fields, pydantic validation: all "not a bundle"
        raise SignatureMalformed(f"the signature is not a Sigstore bundle: {_short(exc)}") from None


def _open_statement(verifier: Any, signature: Any) -> Any:
    """model-signing's check of the signature and the statement -> its Manifest."""
    from cryptography.exceptions import InvalidSignature

    try:
        return verifier.verify(signature)
    except InvalidSignature:
        raise SignatureInvalid("the signature does not verify: the signed statement was changed") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise SignatureMalformed(f"the signed statement is not a model signing statement: {_short(exc)}") from None


def _verify_with_keys(bundle: bytes, trust: Trust) -> tuple[Any, str]:
    from model_signing._signing import sign_ec_key

    signature = _read_pb_bundle(bundle)
    material = signature.bundle.verification_material
    if getattr(material, "x509_certificate_chain", None) or getattr(material, "certificate", None):
        raise SignerUntrusted("the signature was made with a certificate; the trust names public keys (mode key)")
    hint = material.public_key.hint if material.public_key else None
    if hint:
        candidates = [pem for pem, pem_id in zip(trust.public_keys, trust.key_ids, strict=True) if pem_id == hint]
        if not candidates:
            raise SignerUntrusted(
                f"signed by key sha256:{hint}, which is not one of the {len(trust.public_keys)} trusted key(s)"
            )
    else:
        candidates = list(trust.public_keys)  # a pre-1.0 bundle names no key: try each
    failure: SignatureError | None = None
    for pem in candidates:
        try:
            manifest = _open_statement(sign_ec_key.Verifier(_Blob(pem)), signature)
        except SignatureInvalid as exc:
            failure = exc
            continue
        return manifest, f"key sha256:{key_id(pem)}"
    if hint:
        raise failure or SignatureInvalid("the signature does not verify")
    raise SignerUntrusted("the signature verifies with none of the trusted keys")


def _verify_with_certificates(bundle: bytes, trust: Trust) -> tuple[Any, str]:
    from cryptography import x509
    from model_signing._signing import sign_certificate
    from OpenSSL import crypto

    signature = _read_pb_bundle(bundle)
    chain = signature.bundle.verification_material.x509_certificate_chain
    if not chain or not chain.certificates:
        raise SignerUntrusted("the signature was made with a bare key; the trust is a certificate chain")
    try:
        leaf = x509.load_der_x509_certificate(chain.certificates[0].raw_bytes)
    except ValueError as exc:
        raise SignatureMalformed(f"the signing certificate cannot be read: {_short(exc)}") from None
    verifier = sign_certificate.Verifier([_Blob(b"".join(trust.certificate_chain))])
    try:
        manifest = _open_statement(verifier, signature)
    except crypto.X509StoreContextError as exc:
        raise SignerUntrusted(
            f"the signing certificate {leaf.subject.rfc4514_string()!r} does not chain to the trusted "
            f"certificates: {exc}"
        ) from None
    except SignatureMalformed as exc:
        if "cannot be used for signing" in str(exc):
            raise SignerUntrusted(
                f"the certificate {leaf.subject.rfc4514_string()!r} is not for signing "
                "(no digitalSignature key usage, no codeSigning extended key usage)"
            ) from None
        raise
    return manifest, leaf.subject.rfc4514_string()


def _verify_with_sigstore(bundle: bytes, trust: Trust) -> tuple[Any, str]:
    from model_signing._signing import sign_sigstore

    try:
        signature = sign_sigstore.Signature.read(_Blob(bundle))
    except Exception as exc:
        raise SignatureMalformed(f"the signature is not a Sigstore bundle: {_short(exc)}") from None
    try:
        verifier = sign_sigstore.Verifier(identity=trust.identity, oidc_issuer=trust.issuer)
    except Exception as exc:  # the public trust root (TUF) could not be fetched
        raise SigstoreUnavailable(f"Sigstore's trust root could not be fetched: {_short(exc)}") from None
    try:
        manifest = verifier.verify(signature)
    except Exception as exc:  # sigstore.errors.VerificationError and friends
        raise SignerUntrusted(
            f"the signature does not verify for identity {trust.identity!r} from {trust.issuer!r}: {_short(exc)}"
        ) from None
    return manifest, str(trust.identity)


def _check_covers(signed: Any, sha256_hex: str) -> None:
    """The statement signs one file, with sha256, and that file is the one we downloaded."""
    from model_signing import manifest as ms_manifest
    from model_signing._hashing import hashing as ms_hashing

    serialization = signed.serialization_type
    if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
        raise SignatureUnsupported(
            f"the signature hashes the model as {serialization.get('method')!r} with "
            f"{serialization.get('hash_type')!r}; aurelius checks the sha256 of the whole file it "
            "downloaded, so sign with the default (files, sha256)"
        )
    resources = list(signed.resource_descriptors())
    if len(resources) != 1 or resources[0].identifier != _SINGLE_FILE:
        names = ", ".join(resource.identifier for resource in resources[:5])
        raise SignatureUnsupported(
            f"the signature covers {len(resources)} file(s) of a directory ({names}); a model is one file: "
            "sign the file itself"
        )
    expected = ms_manifest.Manifest(
        signed.model_name,
        [
            ms_manifest.FileManifestItem(
                path=PurePosixPath(_SINGLE_FILE), digest=ms_hashing.Digest("sha256", bytes.fromhex(sha256_hex))
            )
        ],
        ms_manifest.SerializationType.from_args(serialization),
    )
    if signed != expected:
        raise DigestMismatch(
            f"the signature is for sha256 {resources[0].digest.digest_hex}, the downloaded bytes have "
            f"sha256 {sha256_hex}: it signs other bytes (another model, or this one changed after signing)"
        )


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
