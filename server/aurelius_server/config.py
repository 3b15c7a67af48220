"""Server settings from the environment, checked before the server binds or calls S3.

A bad value raises ``ConfigError`` whose message names the variable, the value and the rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aurelius_server.signature import Trust

DEFAULT_PORT = 8080
DEFAULT_HOST = "0.0.0.0"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 20.0
# Longer than the load balancer's idle timeout (ALB and classic ELB default: 60 s), so the load
# balancer, not the target, closes idle connections: "we recommend that you configure the idle
# timeout of your application to be larger than the idle timeout configured for the load
# balancer" (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout).
DEFAULT_KEEPALIVE_SECONDS = 75
DEFAULT_READ_TIMEOUT_SECONDS = 10.0
DEFAULT_SERVICE_NAME = "aurelius-model-server"
# What MODEL_FORMAT may say (``formats`` detects the format from the content when it is auto).
MODEL_FORMATS = ("auto", "pickle", "joblib", "skops")
# A fully qualified Python name, as skops.io.get_untrusted_types reports them.
_QUALIFIED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")

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
    bucket, slash, key = uri[len("s3://") :].partition("/")
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
    workers: int | None = None  # None: derived from the CPU quota or the cores (see ``cpus``)
    keepalive: int = DEFAULT_KEEPALIVE_SECONDS
    read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS
    service_name: str = DEFAULT_SERVICE_NAME
    model_format: str = "auto"
    skops_trusted_types: tuple[str, ...] = ()
    signing_trust: Trust | None = None  # MODEL_SIGNING_TRUST (``signature``); None: no trust configured
    signing_required: bool = False  # MODEL_SIGNING_REQUIRED: a model without a trusted signature is refused
    pickle_scan: str = "refuse"  # MODEL_PICKLE_SCAN (``pickle_scan``)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        uri = _required(env, "MODEL_S3_URI")
        version_id = _required(env, "MODEL_VERSION_ID")
        if any(ch.isspace() for ch in version_id):
            raise ConfigError(f"MODEL_VERSION_ID {version_id!r} contains whitespace")
        # Imported here: both modules raise this module's ConfigError.
        from aurelius_server.pickle_scan import mode_from_env
        from aurelius_server.signature import trust_from_env

        trust, required = trust_from_env(env), _boolean(env, "MODEL_SIGNING_REQUIRED", False)
        if required and trust is None:
            raise ConfigError(
                "MODEL_SIGNING_REQUIRED is true but MODEL_SIGNING_TRUST is not set: a required signature "
                "needs the trusted keys, certificates or Sigstore identity to check it against"
            )
        return cls(
            model=parse_s3_uri(uri),
            version_id=version_id,
            host=env.get("HOST") or DEFAULT_HOST,
            port=_integer(env, "PORT", DEFAULT_PORT, 0, 65535),
            max_body_bytes=_integer(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1, 1 << 31),
            shutdown_timeout=_seconds(env, "SHUTDOWN_TIMEOUT_SECONDS", DEFAULT_SHUTDOWN_TIMEOUT_SECONDS),
            workers=_integer(env, "WORKERS", None, 1, 256),
            keepalive=_integer(env, "KEEPALIVE_SECONDS", DEFAULT_KEEPALIVE_SECONDS, 1, 3600),
            read_timeout=_positive_seconds(env, "READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS),
            service_name=env.get("SERVICE_NAME") or DEFAULT_SERVICE_NAME,
            model_format=_model_format(env),
            skops_trusted_types=_trusted_types(env),
            signing_trust=trust,
            signing_required=required,
            pickle_scan=mode_from_env(env),
        )


def _model_format(env: Mapping[str, str]) -> str:
    raw = env.get("MODEL_FORMAT") or "auto"
    value = raw.strip().lower()
    if value not in MODEL_FORMATS:
        raise ConfigError(f"MODEL_FORMAT {raw!r} is not one of {', '.join(MODEL_FORMATS)}")
    return value


def _trusted_types(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("MODEL_SKOPS_TRUSTED_TYPES") or ""
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    for name in names:
        if not _QUALIFIED_NAME.match(name):
            raise ConfigError(
                f"MODEL_SKOPS_TRUSTED_TYPES {raw!r}: {name!r} is not a fully qualified type name "
                "(module.Name, e.g. sklearn.linear_model._logistic.LogisticRegression)"
            )
    return names


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"{name} {raw!r} is not true or false")
    return value == "true"


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set (required)")
    return value


def _integer(env: Mapping[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
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


def non_negative_number(name: str, raw: str, what: str = "a number") -> float:
    """``raw`` as a finite float >= 0, or a ConfigError (a ValueError) naming ``name``."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} {raw!r} is not {what}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} {raw!r} must be a finite number >= 0")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return non_negative_number(name, raw, "a number of seconds")


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = _seconds(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} {env.get(name)!r} must be a number of seconds > 0")
    return value
