"""The smoke test: the loaded model proves itself on known input before it takes traffic.

Configuration (environment; no SMOKE_TEST_INSTANCES = no smoke test):
  SMOKE_TEST_INSTANCES  JSON array of instances, any shape /predict takes (``payload``): rows
                        [[5.1, 3.5, "red"], ...], named features [{"color": "red", ...}, ...]
                        or scalars ["free money", ...]
  SMOKE_TEST_EXPECTED   optional JSON array, one value per instance: a number (compared within
                        the tolerance), a string or a boolean (compared exactly, e.g. a label)
  SMOKE_TEST_TOLERANCE  optional absolute tolerance, default 1e-6

The model object's S3 user metadata ``aurelius-smoke-expected`` / ``aurelius-smoke-tolerance``
(same formats) override the two optional values, so expectations travel with the version
that must meet them.

The instances are checked for their shape when the configuration is read (exit 2), and against
the loaded model's columns and width before ``predict`` (check ``instances``).

Checks, in order (the first that fails is named): the instances fit the model
(``instances``), ``predict`` does not raise (``predict``), one result per row (``count``),
every result a finite number, a string or a boolean, or a list of them (``finite``), each
result equal to its expected value, numbers within the tolerance (``expected``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aurelius_server.config import ConfigError, non_negative_number
from aurelius_server.payload import ModelInputs, PayloadError, plain, validate_instances

if TYPE_CHECKING:
    from aurelius_server.pinned_model import LoadedModel

Expected = float | str | bool

DEFAULT_TOLERANCE = 1e-6
METADATA_EXPECTED = "aurelius-smoke-expected"
METADATA_TOLERANCE = "aurelius-smoke-tolerance"


class SmokeTestFailed(Exception):
    """The model failed its smoke test. ``check`` names the check; ``str()`` names URI and version."""

    def __init__(self, loaded: LoadedModel, check: str, detail: str):
        self.check, self.detail = check, detail
        super().__init__(
            f"smoke test failed for model {loaded.location} version {loaded.version_id}: check {check!r}: {detail}"
        )


@dataclass(frozen=True)
class SmokeTest:
    instances: list[Any]
    expected: list[Expected] | None = None
    tolerance: float = DEFAULT_TOLERANCE
    source: str = "environment"  # where expected/tolerance came from, for the log

    def with_metadata(self, metadata: Mapping[str, str]) -> SmokeTest:
        """Expected values / tolerance from the model object's user metadata, when it has them.

        A malformed value is the version's problem: ValueError, reported as check "metadata".
        """
        lowered = {key.lower(): value for key, value in (metadata or {}).items()}
        result = self
        if METADATA_EXPECTED in lowered:
            result = replace(
                result,
                expected=_expected(METADATA_EXPECTED, lowered[METADATA_EXPECTED], len(self.instances)),
                source="S3 metadata",
            )
        if METADATA_TOLERANCE in lowered:
            result = replace(
                result,
                tolerance=non_negative_number(METADATA_TOLERANCE, lowered[METADATA_TOLERANCE]),
                source="S3 metadata",
            )
        return result

    def run(self, loaded: LoadedModel) -> None:
        """Raises SmokeTestFailed naming the first check that fails."""
        try:
            batch = validate_instances(self.instances, loaded.inputs)
        except PayloadError as exc:
            raise SmokeTestFailed(loaded, "instances", str(exc)) from None
        try:
            raw = loaded.model.predict(batch.data)
        except Exception as exc:
            raise SmokeTestFailed(loaded, "predict", f"predict() raised {type(exc).__name__}: {exc}") from None
        results = plain(raw)
        if not isinstance(results, list) or len(results) != len(self.instances):
            got = f"{len(results)} results" if isinstance(results, list) else f"a {type(raw).__name__}"
            raise SmokeTestFailed(loaded, "count", f"predict() returned {got} for {len(self.instances)} rows")
        for i, value in enumerate(results):
            if not _finite(value):
                raise SmokeTestFailed(
                    loaded, "finite", f"result {i} is {value!r}, not a finite number, a string or a boolean"
                )
        if self.expected is None:
            return
        for i, (value, expected) in enumerate(zip(results, self.expected, strict=True)):
            if not _matches(value, expected, self.tolerance):
                raise SmokeTestFailed(
                    loaded,
                    "expected",
                    f"result {i} is {value!r}, expected {expected!r} within {self.tolerance:g} ({self.source})",
                )


def smoke_test_from_env(env: Mapping[str, str]) -> SmokeTest | None:
    """The configured smoke test, None when there is none. Raises ConfigError naming the variable."""
    raw_instances = env.get("SMOKE_TEST_INSTANCES") or ""
    raw_expected, raw_tolerance = env.get("SMOKE_TEST_EXPECTED") or "", env.get("SMOKE_TEST_TOLERANCE") or ""
    if not raw_instances:
        for name, value in (("SMOKE_TEST_EXPECTED", raw_expected), ("SMOKE_TEST_TOLERANCE", raw_tolerance)):
            if value:
                raise ConfigError(f"{name} is set but SMOKE_TEST_INSTANCES is not (the rows to predict)")
        return None
    instances = _json("SMOKE_TEST_INSTANCES", raw_instances)
    try:
        validate_instances(instances, ModelInputs(), build=False)  # the shape; the model's columns once it loads
    except PayloadError as exc:
        raise ConfigError(f"SMOKE_TEST_INSTANCES {raw_instances!r}: {exc}") from None
    try:
        expected = _expected("SMOKE_TEST_EXPECTED", raw_expected, len(instances)) if raw_expected else None
        tolerance = non_negative_number("SMOKE_TEST_TOLERANCE", raw_tolerance) if raw_tolerance else DEFAULT_TOLERANCE
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return SmokeTest(instances, expected, tolerance)


def _json(name: str, raw: str) -> Any:
    try:
        return json.loads(raw, parse_constant=lambda constant: _reject(name, raw, constant))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} {raw!r} is not valid JSON: {exc}") from None


def _reject(name: str, raw: str, constant: str) -> Any:
    raise ConfigError(f"{name} {raw!r}: {constant} is not a finite number")


def _expected(name: str, raw: str, rows: int) -> list[Expected]:
    try:
        values = json.loads(raw, parse_constant=lambda constant: float("nan"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} {raw!r} is not valid JSON: {exc}") from None
    if not isinstance(values, list) or not all(_scalar(v) for v in values):
        raise ValueError(
            f"{name} {raw!r} must be a JSON array of finite numbers, strings or booleans, one per smoke test row"
        )
    if len(values) != rows:
        raise ValueError(f"{name} {raw!r} has {len(values)} values for {rows} smoke test rows")
    return [float(v) if _number(v) else v for v in values]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or (_number(value) and math.isfinite(value))


def _finite(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_finite(item) for item in value)
    return _scalar(value)


def _matches(value: Any, expected: Expected, tolerance: float) -> bool:
    if _number(expected):
        return _number(value) and abs(value - expected) <= tolerance
    return type(value) is type(expected) and value == expected
