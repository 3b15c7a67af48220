"""Every test talks only to moto (in-process or on 127.0.0.1) with fake credentials."""

import os

import pytest

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "aurelius-tests",
    "POWERTOOLS_SERVICE_NAME": "aurelius-tests",
    "SAM_CLI_TELEMETRY": "0",
}


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch):
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    yield


# Set at import too: some libraries read the environment when first imported.
for _key, _value in FAKE_ENV.items():
    os.environ.setdefault(_key, _value)
