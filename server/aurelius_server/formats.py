"""Which format a downloaded model file is in, decided by its content, and how to deserialise it.

The object key keeps its name (``model.pkl``) whatever the format: the first bytes decide.

- ``skops``: a zip archive (``PK\\x03\\x04``). Loaded with ``skops.io.load`` and the trusted
  types of MODEL_SKOPS_TRUSTED_TYPES on top of skops' own defaults: no pickle, no arbitrary
  code. A type that is not trusted is refused, named in the error.
- ``joblib``: a compressed joblib file (zlib, gzip, bz2, xz, lzma or lz4 magic: what
  ``joblib.dump(model, path, compress=N)`` writes), or an uncompressed one: a pickle whose
  numpy arrays follow the pickle stream, recognised by joblib's ``NumpyArrayWrapper`` class
  named inside it. ``joblib.load`` reads both (and plain pickles).
- ``pickle``: protocol 2 or later (starts with ``\\x80``). Protocols 0 and 1 have no magic:
  set MODEL_FORMAT=pickle to load one.

SECURITY: ``pickle`` and ``joblib`` run code while loading (joblib files are pickles). Only
``skops`` does not. Both are loaded through ``pickle_scan``'s guarded unpicklers: every import
the stream resolves is checked against picklescan's list before it is used, so a dangerous one
is refused (MODEL_PICKLE_SCAN=refuse) even where the static scan could not reach it (after a
numpy array in a joblib file).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence
from typing import Any

from aurelius_server.pickle_scan import DEFAULT_MODE, Finding, PickleRefused, load_joblib_guarded, load_pickle_guarded

FORMATS = ("pickle", "joblib", "skops")
AUTO = "auto"

_ZIP = b"PK\x03\x04"
_PICKLE_PROTOCOL_2_PLUS = b"\x80"
# joblib.compressor's prefixes (ZF: files written before joblib 0.9.3)
_JOBLIB_COMPRESSED = (b"\x78", b"\x1f\x8b", b"BZ", b"\xfd\x37\x7a\x58\x5a", b"\x5d\x00", b"\x04\x22\x4d\x18", b"ZF")
_JOBLIB_ARRAY_WRAPPER = b"joblib.numpy_pickle"  # the module of NumpyArrayWrapper, named in the pickle
MODEL_REQUIREMENTS_HINT = (
    "add it to server/model-requirements.txt (or the file MODEL_REQUIREMENTS points to), "
    "then rebuild the image or re-run the install"
)


class FormatError(Exception):
    """The file cannot be deserialised; ``str()`` says why, in words an operator can act on."""


def detect(path: str) -> str:
    """``pickle``, ``joblib`` or ``skops`` from the file's content. Raises FormatError."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if head.startswith(_ZIP):
            return "skops"
        if head.startswith(_JOBLIB_COMPRESSED):
            return "joblib"
        if head.startswith(_PICKLE_PROTOCOL_2_PLUS):
            return "joblib" if _names_joblib_arrays(handle) else "pickle"
    raise FormatError(
        f"not a recognised model format (first bytes {head!r}): expected a pickle (protocol 2+), a joblib file "
        "or a skops file; set MODEL_FORMAT=pickle for a protocol 0/1 pickle"
    )


def _names_joblib_arrays(handle: Any) -> bool:
    try:
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return view.find(_JOBLIB_ARRAY_WRAPPER) != -1
    except ValueError:  # an empty file cannot be mapped
        return False


def deserialise(
    path: str,
    model_format: str,
    trusted_types: Sequence[str] = (),
    scan_mode: str = DEFAULT_MODE,
    on_finding: Callable[[Finding], None] = lambda _: None,
) -> Any:
    """The object in ``path``. Raises FormatError (ModuleNotFoundError named with what to do), or
    PickleRefused when a dangerous import is resolved under ``scan_mode`` refuse."""
    try:
        if model_format == "skops":
            return _skops(path, trusted_types)
        if model_format == "joblib":
            return load_joblib_guarded(path, scan_mode, on_finding)  # runs code: see the module docstring
        return load_pickle_guarded(path, scan_mode, on_finding)  # runs code: see the module docstring
    except PickleRefused:
        raise
    except ModuleNotFoundError as exc:
        raise FormatError(
            f"the {model_format} file needs the module {exc.name!r}, which is not installed: {MODEL_REQUIREMENTS_HINT}"
        ) from exc
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(f"loading the {model_format} file failed: {type(exc).__name__}: {exc}") from exc


def _skops(path: str, trusted_types: Sequence[str]) -> Any:
    from skops.io import get_untrusted_types, load

    untrusted = sorted(set(get_untrusted_types(file=path)) - set(trusted_types))
    if untrusted:
        raise FormatError(
            f"the skops file holds types that are not trusted: {', '.join(untrusted)}; review them, then list "
            "them in MODEL_SKOPS_TRUSTED_TYPES (comma-separated)"
        )
    return load(path, trusted=list(trusted_types) or None)
