"""A pickle opcode scan before loading: the second line of defence for unsigned models.

Why picklescan (1.0.5, pinned): it reads the pickle's opcodes with ``pickletools.genops`` and
never imports or runs anything from the file; it is one small pure-Python package with no
dependencies (the image stays lean); and its list of dangerous imports (``os``, ``posix``,
``subprocess``, ``builtins.eval``/``exec``/``getattr``/``open``, ``runpy``, ``socket``, ...) is
the one Hugging Face Hub scans uploads with. modelscan wraps the same idea for many formats with
far more dependencies; fickling decompiles and symbolically evaluates the pickle, which is a
better tool for investigating a file than for a start-up gate.

What it cannot do (both are why signing, not scanning, is the gate):

- A denylist: an import it does not know is "suspicious" (every scikit-learn class is), only
  the listed ones are "dangerous". A pickle that reaches code through an unlisted callable
  passes.
- joblib files: joblib writes each numpy array's raw bytes INSIDE the pickle stream, so an
  opcode reader stops at the first array; what follows is not scanned (``complete=False``,
  said in the log). Compressed joblib files (zlib, gzip, bz2, xz, lzma, lz4) are decompressed
  with joblib's own reader first (picklescan alone sees compressed bytes, reports "not a
  pickle" and no findings: a silent pass). ``guarded_find_class`` closes the gap at load time:
  installed as the unpickler's ``find_class``, it refuses a dangerous import when the loader
  resolves it, after any array, before the import is used.

Also, picklescan's public ``scan_pickle_bytes`` reports a stream it cannot parse at all as
clean; we call its ``_list_globals`` to see the parse error and refuse instead (fail closed).

Modes (MODEL_PICKLE_SCAN): ``refuse`` (the default, with or without signing) refuses a model
with a dangerous import or a stream that is not a readable pickle; ``warn`` logs the same and
loads. A signature says who published the bytes, not what they do (a compromised training job
signs what it produced), so a signed-and-trusted model is scanned too and the findings logged;
an operator whose signed models legitimately trip the list sets ``warn``.
skops files are not pickles (skops checks the types itself): nothing to scan.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from aurelius_server.config import ConfigError

SCAN_VARIABLE = "MODEL_PICKLE_SCAN"
MODES = ("refuse", "warn")
DEFAULT_MODE = "refuse"

DANGEROUS = "dangerous"
SUSPICIOUS = "suspicious"


class PickleRefused(Exception):
    """The scan found what the mode refuses; ``str()`` names the imports."""

    reason = "pickle_refused"


@dataclass(frozen=True)
class Finding:
    module: str
    name: str
    level: str  # "dangerous" or "suspicious" (picklescan's words)

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...]
    dangerous: bool  # refused under "refuse"
    complete: bool  # False: part of the stream was not read (see notes)
    model_format: str
    notes: tuple[str, ...] = ()

    @property
    def dangerous_imports(self) -> list[str]:
        return sorted(str(finding) for finding in self.findings if finding.level == DANGEROUS)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.model_format,
            "dangerous": self.dangerous,
            "complete": self.complete,
            "dangerous_imports": self.dangerous_imports,
            "suspicious_imports": sorted(str(f) for f in self.findings if f.level == SUSPICIOUS),
            "notes": list(self.notes),
        }


def mode_from_env(env: Mapping[str, str]) -> str:
    """MODEL_PICKLE_SCAN: ``refuse`` (default) or ``warn``. ConfigError names the rule."""
    value = env.get(SCAN_VARIABLE, "").strip().lower() or DEFAULT_MODE
    if value not in MODES:
        raise ConfigError(f"{SCAN_VARIABLE} {env.get(SCAN_VARIABLE)!r} is not one of {', '.join(MODES)}")
    return value


def scan(path: str, model_format: str) -> ScanResult:
    """Scan the model at ``path`` (``pickle``, ``joblib`` or ``skops``) without loading it."""
    if model_format == "skops":
        return ScanResult((), False, True, "skops", ("not a pickle: skops checks the types it loads",))
    with open(path, "rb") as raw:
        if model_format == "joblib":
            with _joblib_stream(raw, path) as (stream, compressor):
                return _scan_stream(stream, "joblib", joblib_compressor=compressor)
        return _scan_stream(raw, model_format)


def enforce(result: ScanResult, mode: str) -> None:
    """Raise PickleRefused when ``mode`` is ``refuse`` and the result is dangerous."""
    if mode == "refuse" and result.dangerous:
        raise PickleRefused(_refusal(result))


def import_checker(mode: str, on_finding: Callable[[Finding], None] = lambda _: None) -> Callable[[str, str], None]:
    """A check for each import an unpickler resolves: PickleRefused for a dangerous one under
    ``refuse``; every non-innocuous one is passed to ``on_finding`` (for the log)."""

    def check(module: str, name: str) -> None:
        level = classify(module, name)
        if level is not None:
            finding = Finding(module, name, level)
            on_finding(finding)
            if level == DANGEROUS and mode == "refuse":
                raise PickleRefused(f"the model imports {finding}, which can run arbitrary code; refused")

    return check


def guarded_find_class(
    find_class: Callable[[str, str], Any], mode: str, on_finding: Callable[[Finding], None] = lambda _: None
) -> Callable[[str, str], Any]:
    """``find_class`` that runs ``import_checker`` first: the import is refused before it is used.

    For joblib's ``NumpyUnpickler`` (it routes the nested pickles of object arrays through the
    outer ``find_class``, so they are checked too).
    """
    check = import_checker(mode, on_finding)

    def checked(module: str, name: str) -> Any:
        check(module, name)
        return find_class(module, name)

    return checked


class _GuardedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], check: Callable[[str, str], None]):
        super().__init__(file)
        self._check = check

    def find_class(self, module: str, name: str) -> Any:
        self._check(module, name)
        return super().find_class(module, name)


def load_pickle_guarded(path: str, mode: str, on_finding: Callable[[Finding], None] = lambda _: None) -> Any:
    """``pickle.load`` of ``path``, every import checked by ``guarded_find_class`` first."""
    with open(path, "rb") as handle:
        return _GuardedUnpickler(handle, import_checker(mode, on_finding)).load()


def load_joblib_guarded(path: str, mode: str, on_finding: Callable[[Finding], None] = lambda _: None) -> Any:
    """``joblib.load(path)`` with ``guarded_find_class``: checks the imports after the arrays too.

    The same steps as ``joblib.numpy_pickle.load`` (its compressor detection, its unpickler, its
    native byte order), with the unpickler's ``find_class`` guarded; no memory mapping.
    """
    from joblib import numpy_pickle, numpy_pickle_utils

    with open(path, "rb") as raw, numpy_pickle_utils._validate_fileobject_and_memmap(raw, path) as (stream, _):
        if isinstance(stream, str):
            raise PickleRefused("a joblib file older than joblib 0.10 cannot be loaded guarded; re-save it")
        unpickler = numpy_pickle.NumpyUnpickler(path, stream, ensure_native_byte_order=True)
        unpickler.find_class = guarded_find_class(unpickler.find_class, mode, on_finding)
        return unpickler.load()


def classify(module: str, name: str) -> str | None:
    """picklescan's verdict on one import: "dangerous", "suspicious" or None (innocuous)."""
    from picklescan import scanner

    result = scanner._build_scan_result_from_raw_globals({(module, name)}, "import")
    return None if result.globals[0].safety is scanner.SafetyLevel.Innocuous else result.globals[0].safety.value


@contextlib.contextmanager
def _joblib_stream(raw: IO[bytes], path: str) -> Iterator[tuple[IO[bytes], str]]:
    """The decompressed pickle stream of a joblib file, with joblib's own detection and readers."""
    from joblib import numpy_pickle_utils

    compressor = numpy_pickle_utils._detect_compressor(raw)
    if compressor == "not-compressed":
        yield raw, compressor
    elif compressor in numpy_pickle_utils._COMPRESSORS:
        decompressed = numpy_pickle_utils._COMPRESSORS[compressor].decompressor_file(raw)
        with io.BufferedReader(decompressed, buffer_size=1024 * 1024) as stream:
            yield stream, compressor
    else:  # "compat": joblib < 0.10 wrote a different container
        yield io.BytesIO(b""), compressor


def _scan_stream(stream: IO[bytes], model_format: str, joblib_compressor: str | None = None) -> ScanResult:
    from picklescan import scanner

    notes = (
        [f"decompressed ({joblib_compressor}) with joblib's reader"]
        if joblib_compressor not in (None, "not-compressed")
        else []
    )
    if joblib_compressor == "compat":
        return ScanResult((), True, False, model_format, ("a joblib file older than joblib 0.10: cannot be scanned",))
    parse_error = None
    try:
        raw_globals = scanner._list_globals(stream)
    except scanner.GenOpsError as exc:
        raw_globals, parse_error = exc.globals or set(), str(exc)
    except ValueError as exc:  # picklescan's own "cannot resolve STACK_GLOBAL": treat as unreadable
        raw_globals, parse_error = set(), str(exc)
    findings = tuple(
        sorted(
            (Finding(m, n, level) for m, n in raw_globals if (level := classify(m, n)) is not None),
            key=lambda f: (f.level, f.module, f.name),
        )
    )
    dangerous = any(finding.level == DANGEROUS for finding in findings)
    complete = parse_error is None
    if parse_error is not None and not raw_globals:
        dangerous = True  # nothing readable: never load what could not be inspected
        notes.append(f"not a readable pickle stream ({parse_error})")
    elif parse_error is not None and model_format == "joblib":
        notes.append(
            "scanned up to the first numpy array written inside the stream; the rest is checked while loading "
            f"({parse_error})"
        )
    elif parse_error is not None:
        complete = True  # pickle.load reads one pickle; bytes after its STOP are never loaded
        notes.append(f"bytes after the pickle are not a pickle and are not loaded ({parse_error})")
    return ScanResult(findings, dangerous, complete, model_format, tuple(notes))


def _refusal(result: ScanResult) -> str:
    if result.dangerous_imports:
        return (
            f"the {result.model_format} file imports {', '.join(result.dangerous_imports)}, which can run arbitrary "
            f"code; refused ({SCAN_VARIABLE}=refuse)"
        )
    return f"the {result.model_format} file could not be scanned: {'; '.join(result.notes)}; refused ({SCAN_VARIABLE}=refuse)"
