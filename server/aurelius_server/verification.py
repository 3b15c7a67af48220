"""The verify slot of ``pinned_model``: the model's signature, checked before a byte is deserialised.

``SignatureGate(config, s3)`` is called with the ``Downloaded`` version, after the download
hashed it and before the format is even detected:

- no trust configured (MODEL_SIGNING_TRUST unset, MODEL_SIGNING_REQUIRED false): nothing is
  checked; one INFO line says so. The pickle scan still runs (``pickle_scan``).
- trust configured: the signature object is looked up under the digest the download computed
  (``signature.read_bundle``: ``{model_key}.sig/{sha256}``), never under a digest someone wrote
  in the metadata, and checked with ``signature.verify_digest``. No second read of the model.
  Success logs ``model_verified``. A missing signature is refused when MODEL_SIGNING_REQUIRED
  is true, and only logged (``model_unsigned``, WARNING) when it is false: "not required" lets
  unsigned models through while an environment moves to signing. A signature that is there but
  invalid, untrusted or for other bytes is refused either way: that is a forgery or a mistake,
  never a model in transition.

A refusal is a ``ModelLoadError`` whose ``code`` is the ``SignatureError.reason``
(``signature_missing``, ``signature_invalid``, ``signer_untrusted``, ``digest_mismatch``, ...):
the server's one ``startup_failed`` line carries it as ``reason``.

Start-up cost: importing ``model_signing`` takes about 2 s (it pulls in sigstore and its
models). It is imported only when trust is configured, in a thread started with the gate, so
it overlaps the download instead of following it; the check waits for it.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from aurelius_server.config import Config
from aurelius_server.logs import LOGGER_NAME, log_event
from aurelius_server.s3_download import Downloaded, ModelLoadError
from aurelius_server.signature import SignatureError, SignatureUnreadable, read_bundle, signature_key, verify_digest

logger = logging.getLogger(LOGGER_NAME)

# What verify_digest imports for each trust mode (each one imports the model_signing package).
_MODULES = {
    "key": ("model_signing._signing.sign_ec_key", "model_signing._signing.sign_sigstore_pb"),
    "certificate": ("model_signing._signing.sign_certificate", "model_signing._signing.sign_sigstore_pb", "OpenSSL"),
    "sigstore": ("model_signing._signing.sign_sigstore",),
}


class SignatureGate:
    """The verify slot: ``gate(downloaded)`` returns the verified signature (JSON) or None when
    nothing was checked; raises ModelLoadError when the signature does not allow loading."""

    def __init__(self, config: Config, s3: Any):
        self.trust, self.required, self.s3 = config.signing_trust, config.signing_required, s3
        self._imports = _import_in_background(_MODULES[self.trust.mode]) if self.trust is not None else None

    def __call__(self, downloaded: Downloaded) -> dict[str, str] | None:
        if self.trust is None:
            log_event(
                logger,
                logging.INFO,
                "signature_not_checked",
                f"model {downloaded.location} version {downloaded.version_id}: no MODEL_SIGNING_TRUST, "
                "the signature is not checked",
                model_version_id=downloaded.version_id,
                sha256=downloaded.sha256,
            )
            return None
        location, sha256 = downloaded.location, downloaded.sha256
        where = f"s3://{location.bucket}/{signature_key(location.key, sha256)}"
        try:
            bundle = _read(self.s3, location.bucket, location.key, sha256)
            if bundle is not None or not self.required:
                # Also before returning unverified: no thread of ours may be left when gunicorn forks.
                self._imports.join()
            if bundle is None and not self.required:
                log_event(
                    logger,
                    logging.WARNING,
                    "model_unsigned",
                    f"model {location} version {downloaded.version_id} has no signature at {where}; "
                    "loaded because MODEL_SIGNING_REQUIRED is false",
                    model_version_id=downloaded.version_id,
                    sha256=sha256,
                    signature=where,
                )
                return None
            verified = verify_digest(sha256, bundle, self.trust)
        except SignatureError as exc:
            detail = f"{exc}, looked for {where}" if exc.reason == "signature_missing" else str(exc)
            raise ModelLoadError(
                location, downloaded.version_id, f"signature refused ({exc.reason}): {detail}", code=exc.reason
            ) from None
        log_event(
            logger,
            logging.INFO,
            "model_verified",
            f"model {location} version {downloaded.version_id}: signature verified ({verified.signer})",
            model_version_id=downloaded.version_id,
            signature=where,
            trust=self.trust.describe(),
            **verified.as_json(),
        )
        return verified.as_json()


def _read(s3: Any, bucket: str, model_key: str, sha256: str) -> bytes | None:
    from botocore.exceptions import BotoCoreError

    try:
        return read_bundle(s3, bucket, model_key, sha256)
    except BotoCoreError as exc:  # endpoint unreachable, retries exhausted: not the signature's fault
        raise SignatureUnreadable(f"reading the signature failed: {type(exc).__name__}: {exc}") from None


def _import_in_background(modules: tuple[str, ...]) -> threading.Thread:
    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: S112 - verify_digest imports it again and reports the failure
                continue

    thread = threading.Thread(target=run, name="model-signing-import", daemon=True)
    thread.start()
    return thread
