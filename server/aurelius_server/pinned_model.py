"""The pinned model version, from S3 to a Python object: download -> verify -> scan -> deserialise.

1. ``s3_download.download``: HeadObject, ranged download of exactly that VersionId, length,
   sha256 and S3's stored checksum in one pass -> ``Downloaded`` (path, sha256, size, metadata).
2. The verify slot (``verify``, a callable taking the ``Downloaded``): runs before a single
   byte is deserialised and refuses by raising ``ModelLoadError``. The server passes
   ``verification.SignatureGate`` (the OpenSSF model signature over ``Downloaded.sha256``);
   the default, ``accept_unverified``, checks nothing.
3. ``formats.detect`` (or MODEL_FORMAT), then ``pickle_scan.scan`` of a pickle or joblib file
   (reported to ``on_scan``, refused under MODEL_PICKLE_SCAN=refuse when it names a dangerous
   import or cannot be read), then ``formats.deserialise`` through the guarded unpicklers, and a
   callable ``predict`` is required. The file is deleted whatever happens.

SECURITY: a pickle or joblib file runs code while it loads. This module loads only the
configured bucket, key and VersionId (never "latest"); the signature check makes "who can run
code on the service" "who holds the signing key" (docs/threat-model.md). Without it, the scan is
a denylist, not a proof. A skops file loads without running code (trusted types only).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from boto3.s3.transfer import TransferConfig

from aurelius_server import formats, pickle_scan
from aurelius_server.checksum import StoredChecksum
from aurelius_server.config import S3Location
from aurelius_server.payload import ModelInputs
from aurelius_server.pickle_scan import Finding, PickleRefused, ScanResult
from aurelius_server.s3_download import TRANSFER, Downloaded, ModelLoadError, download

# Methods a client may ask for (POST /<method>), in the order /version and errors list them.
SERVED_METHODS = ("predict", "predict_proba")


def accept_unverified(_downloaded: Downloaded) -> None:
    """The verify slot's default: checks nothing (the server passes ``verification.SignatureGate``)."""


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    location: S3Location
    version_id: str
    sha256: str
    s3_checksum: StoredChecksum | None
    loaded_at: str
    size_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)  # the object's S3 user metadata
    format: str = "pickle"
    inputs: ModelInputs = field(default_factory=ModelInputs)
    signature: dict[str, str] | None = None  # what the verify slot verified (None: nothing)

    @functools.cached_property
    def methods(self) -> tuple[str, ...]:
        """The served methods this model has (read once: every request asks)."""
        return tuple(name for name in SERVED_METHODS if callable(getattr(self.model, name, None)))

    def describe(self) -> dict[str, Any]:
        """The GET /version document."""
        return {
            "model_s3_uri": str(self.location),
            "model_version_id": self.version_id,
            "sha256": self.sha256,
            "s3_checksum": self.s3_checksum.as_json() if self.s3_checksum else None,
            "loaded_at": self.loaded_at,
            "format": self.format,
            "methods": list(self.methods),
            "signature": self.signature,
        }


def load_model(
    location: S3Location,
    version_id: str,
    s3: Any = None,
    *,
    model_format: str = formats.AUTO,
    trusted_types: Sequence[str] = (),
    verify: Callable[[Downloaded], dict[str, str] | None] = accept_unverified,
    scan_mode: str = pickle_scan.DEFAULT_MODE,
    on_scan: Callable[[ScanResult], None] = lambda _: None,
    on_finding: Callable[[Finding], None] = lambda _: None,
    transfer: TransferConfig = TRANSFER,
    directory: str | None = None,
) -> LoadedModel:
    """Download, verify, scan and deserialise the pinned version. Raises ModelLoadError.

    ``on_scan`` gets the static scan's result before anything is deserialised; ``on_finding``
    each non-innocuous import the guarded unpickler resolves while loading.
    """
    with download(location, version_id, s3, transfer, directory) as downloaded:
        signature = verify(downloaded)
        try:
            detected = formats.detect(downloaded.path) if model_format == formats.AUTO else model_format
            scanned = _scan(downloaded, detected)
            on_scan(scanned)
            pickle_scan.enforce(scanned, scan_mode)
            model = formats.deserialise(downloaded.path, detected, trusted_types, scan_mode, on_finding)
        except formats.FormatError as exc:
            raise ModelLoadError(location, version_id, str(exc)) from exc
        except PickleRefused as exc:
            raise ModelLoadError(location, version_id, str(exc), code=exc.reason) from exc
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(
            location, version_id, f"the loaded {type(model).__name__} object ({detected}) has no callable predict()"
        )
    inputs = ModelInputs.of(model)
    if inputs.feature_names is not None and importlib.util.find_spec("pandas") is None:
        raise ModelLoadError(
            location,
            version_id,
            f"the model was fitted on a DataFrame (feature_names_in_) and its requests become DataFrames: "
            f"pandas is not installed: {formats.MODEL_REQUIREMENTS_HINT}",
        )
    loaded_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return LoadedModel(
        model,
        location,
        version_id,
        downloaded.sha256,
        downloaded.s3_checksum,
        loaded_at,
        downloaded.size_bytes,
        downloaded.metadata,
        detected,
        inputs,
        signature,
    )


def _scan(downloaded: Downloaded, model_format: str) -> ScanResult:
    try:
        return pickle_scan.scan(downloaded.path, model_format)
    except Exception as exc:  # the scanner itself failed: treated as unreadable (refused under "refuse")
        return ScanResult((), True, False, model_format, (f"the scanner failed: {type(exc).__name__}: {exc}",))
