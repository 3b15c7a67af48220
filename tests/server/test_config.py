"""Configuration from the environment."""

from __future__ import annotations

import json

import pytest

from aurelius_server.config import Config, ConfigError, S3Location, parse_s3_uri
from tests.signing.material import public_key_pem

BASE = {"MODEL_S3_URI": "s3://models-bucket/path/to/model v2.pkl", "MODEL_VERSION_ID": "abc.123_X"}


def test_defaults_are_port_8080_on_all_interfaces():
    # Given only the two required variables
    # When the config is read
    config = Config.from_env(BASE)

    # Then the key is taken literally and the defaults apply
    assert config.model == S3Location("models-bucket", "path/to/model v2.pkl")
    assert str(config.model) == BASE["MODEL_S3_URI"]
    assert (config.version_id, config.host, config.port) == ("abc.123_X", "0.0.0.0", 8080)


def test_port_host_and_limits_come_from_the_environment():
    # Given the optional variables
    env = {**BASE, "PORT": "9000", "HOST": "127.0.0.1", "MAX_BODY_BYTES": "10", "SHUTDOWN_TIMEOUT_SECONDS": "2.5"}

    # When the config is read / Then they are used
    config = Config.from_env(env)
    assert (config.port, config.host, config.max_body_bytes, config.shutdown_timeout) == (9000, "127.0.0.1", 10, 2.5)


@pytest.mark.parametrize(
    "name, value, rule",
    [
        ("PORT", "http", "is not an integer"),
        ("PORT", "70000", "outside 0..65535"),
        ("MAX_BODY_BYTES", "0", "outside"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "-1", ">= 0"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "nan", "finite"),
        ("MODEL_VERSION_ID", "v 1", "whitespace"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name, value, rule):
    # Given one bad variable
    # When the config is read / Then the error names the variable, the value and the rule
    with pytest.raises(ConfigError, match=name) as raised:
        Config.from_env({**BASE, name: value})
    assert rule in str(raised.value) and repr(value) in str(raised.value)


def test_an_overlong_key_is_refused():
    # Given a key longer than S3 allows (1024 bytes)
    # When parsed / Then refused
    with pytest.raises(ConfigError, match="longer than 1024 bytes"):
        parse_s3_uri("s3://models-bucket/" + "k" * 1025)


def test_serving_defaults_keep_alive_longer_than_the_load_balancer_idle_timeout():
    # Given only the two required variables
    config = Config.from_env(BASE)

    # Then keep-alive outlasts the ALB / classic ELB idle timeout (60 s default), workers are
    # derived from the CPUs (None here), and metrics carry the default service name
    assert config.keepalive == 75 and config.keepalive > 60
    assert (config.workers, config.read_timeout) == (None, 10.0)
    assert config.service_name == "aurelius-model-server"


def test_serving_settings_come_from_the_environment():
    # Given the serving variables
    env = {
        **BASE,
        "WORKERS": "3",
        "KEEPALIVE_SECONDS": "120",
        "READ_TIMEOUT_SECONDS": "2.5",
        "SERVICE_NAME": "fraud-model",
    }

    # When the config is read / Then they are used
    config = Config.from_env(env)
    assert (config.workers, config.keepalive, config.read_timeout, config.service_name) == (
        3,
        120,
        2.5,
        "fraud-model",
    )


@pytest.mark.parametrize(
    "name, value, rule",
    [
        ("WORKERS", "0", "outside 1..256"),
        ("WORKERS", "two", "is not an integer"),
        ("KEEPALIVE_SECONDS", "0", "outside 1..3600"),
        ("READ_TIMEOUT_SECONDS", "0", "> 0"),
    ],
)
def test_bad_serving_settings_are_refused_naming_the_variable(name, value, rule):
    # Given one bad serving variable / When read / Then the error names it, its value and the rule
    with pytest.raises(ConfigError, match=name) as raised:
        Config.from_env({**BASE, name: value})
    assert rule in str(raised.value) and repr(value) in str(raised.value)


def test_the_model_format_and_skops_trusted_types_come_from_the_environment():
    # Given no format settings, then both of them
    default = Config.from_env(BASE)
    env = {**BASE, "MODEL_FORMAT": "Skops", "MODEL_SKOPS_TRUSTED_TYPES": " numpy.dtype, sklearn.foo._bar.Baz ,"}

    # When read / Then auto-detection is the default, and the settings are normalised
    assert (default.model_format, default.skops_trusted_types) == ("auto", ())
    config = Config.from_env(env)
    assert (config.model_format, config.skops_trusted_types) == ("skops", ("numpy.dtype", "sklearn.foo._bar.Baz"))


@pytest.mark.parametrize(
    "name, value, rule",
    [
        ("MODEL_FORMAT", "onnx", "is not one of auto, pickle, joblib, skops"),
        ("MODEL_SKOPS_TRUSTED_TYPES", "numpy.dtype,dtype", "'dtype' is not a fully qualified type name"),
        ("MODEL_SKOPS_TRUSTED_TYPES", "os.system; rm", "'os.system; rm' is not a fully qualified type name"),
    ],
)
def test_bad_format_settings_are_refused_naming_the_variable(name, value, rule):
    # Given a bad format setting / When read / Then a ConfigError names the variable and the rule
    with pytest.raises(ConfigError, match=name) as raised:
        Config.from_env({**BASE, name: value})
    assert rule in str(raised.value)


def test_threads_is_ignored_now_that_each_worker_is_one_event_loop():
    # Given THREADS from an older task definition, even a value the old rule refused
    # When the config is read / Then it starts, and the config has no threads setting at all
    config = Config.from_env({**BASE, "THREADS": "0"})
    assert not hasattr(config, "threads")


def test_signing_is_off_by_default_and_the_scan_refuses():
    # Given no signing or scan variables / When read
    config = Config.from_env(BASE)

    # Then no trust, not required, and the pickle scan refuses dangerous imports
    assert (config.signing_trust, config.signing_required, config.pickle_scan) == (None, False, "refuse")


def test_signing_trust_required_and_scan_mode_come_from_the_environment(tmp_path):
    # Given a trusted public key, signing required and the scan in warn mode
    pem = public_key_pem()
    env = {
        **BASE,
        "MODEL_SIGNING_TRUST": json.dumps({"mode": "key", "public_keys": [pem]}),
        "MODEL_SIGNING_REQUIRED": "TRUE",
        "MODEL_PICKLE_SCAN": "warn",
    }

    # When read / Then all three are in the config
    config = Config.from_env(env)
    assert config.signing_trust is not None and config.signing_trust.mode == "key"
    assert config.signing_trust.public_keys == (pem.encode(),)
    assert (config.signing_required, config.pickle_scan) == (True, "warn")


@pytest.mark.parametrize(
    "env, rule",
    [
        ({"MODEL_SIGNING_REQUIRED": "true"}, "MODEL_SIGNING_TRUST is not set"),
        ({"MODEL_SIGNING_REQUIRED": "yes"}, "is not true or false"),
        ({"MODEL_SIGNING_TRUST": "{not json"}, "is not JSON"),
        ({"MODEL_PICKLE_SCAN": "ignore"}, "is not one of refuse, warn"),
    ],
)
def test_bad_signing_settings_are_refused_naming_the_variable(env, rule):
    # Given one bad signing or scan variable / When read / Then a ConfigError names the rule
    with pytest.raises(ConfigError, match=rule):
        Config.from_env({**BASE, **env})


def test_the_trust_may_come_from_a_file_as_the_elb_install_writes_it(tmp_path):
    # Given the trust JSON in a file (a systemd environment file cannot hold its quotes)
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = public_key_pem(ec.SECP384R1())
    path = tmp_path / "signing-trust.json"
    path.write_text(json.dumps({"mode": "key", "public_keys": [pem]}))

    # When the config names the file / Then the trust is read from it
    config = Config.from_env({**BASE, "MODEL_SIGNING_TRUST_FILE": str(path), "MODEL_SIGNING_REQUIRED": "true"})
    assert config.signing_trust is not None and config.signing_trust.public_keys == (pem.encode(),)

    # And a missing file, or both variables, is a ConfigError naming the rule
    with pytest.raises(ConfigError, match="cannot be read"):
        Config.from_env({**BASE, "MODEL_SIGNING_TRUST_FILE": str(tmp_path / "absent.json")})
    with pytest.raises(ConfigError, match="not both"):
        Config.from_env({**BASE, "MODEL_SIGNING_TRUST_FILE": str(path), "MODEL_SIGNING_TRUST": path.read_text()})
