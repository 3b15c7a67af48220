"""Server settings from the environment, checked before the server binds or calls S3.

A bad value raises ``ConfigError`` whose message names the variable, the value and the rule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

DEFAULT_PORT = 8080
DEFAULT_HOST = "0.0.0.0"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 20.0

# S3 bucket naming rules (general purpose buckets): 3-63 characters, lower-case letters,
# digits, dots and hyphens, starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MAX_KEY_BYTES = 1024


class ConfigError(ValueError):
    """The environment does not describe a usable server."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://bucket/key`` -> S3Location. The key is taken literally (no URL decoding)."""
    expected = "expected s3://bucket/key"
    if not uri.startswith("s3://"):
        raise ConfigError(f"MODEL_S3_URI {uri!r} is not an S3 URI: {expected}")
    bucket, slash, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ConfigError(f"MODEL_S3_URI {uri!r} has no bucket: {expected}")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ConfigError(
            f"MODEL_S3_URI {uri!r}: {bucket!r} is not a valid bucket name "
            "(3-63 lower-case letters, digits, dots, hyphens)"
        )
    if not slash or not key:
        raise ConfigError(f"MODEL_S3_URI {uri!r} has no object key: {expected}")
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise ConfigError(f"MODEL_S3_URI {uri!r}: the key is longer than {_MAX_KEY_BYTES} bytes")
    return S3Location(bucket, key)


@dataclass(frozen=True)
class Config:
    model: S3Location
    version_id: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Config":
        uri = _required(env, "MODEL_S3_URI")
        version_id = _required(env, "MODEL_VERSION_ID")
        if any(ch.isspace() for ch in version_id):
            raise ConfigError(f"MODEL_VERSION_ID {version_id!r} contains whitespace")
        return cls(
            model=parse_s3_uri(uri),
            version_id=version_id,
            host=env.get("HOST") or DEFAULT_HOST,
            port=_integer(env, "PORT", DEFAULT_PORT, 0, 65535),
            max_body_bytes=_integer(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1, 1 << 31),
            shutdown_timeout=_seconds(env, "SHUTDOWN_TIMEOUT_SECONDS", DEFAULT_SHUTDOWN_TIMEOUT_SECONDS),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set (required)")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} {raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} {raw!r} is outside {low}..{high}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} {raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} {raw!r} must be a finite number >= 0")
    return value
