"""The smoke test: a model that fails it never turns healthy; one line names the version and
the check; exit 1. Without SMOKE_TEST_INSTANCES, nothing changes."""

from __future__ import annotations

import json
import os

import pytest

from aurelius_server.app import main
from aurelius_server.config import ConfigError
from aurelius_server.smoke import SmokeTest, smoke_test_from_env

from .helpers import call, log_lines, refuses_connections
from .toy_model import ArrayModel, FailingModel, LinearModel, WrongCountModel

ROWS = json.dumps([[1.0, 2.0], [3.0, 4.0]])


class NanModel:
    def predict(self, instances):
        return [float("nan") for _ in instances]


def run_main(published, capsys, **smoke: str) -> tuple[int, list[dict]]:
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "MODEL_S3_URI": published.uri,
        "MODEL_VERSION_ID": published.version_id,
        **smoke,
    }
    code = main(env)
    return code, log_lines(capsys.readouterr().out)


@pytest.mark.parametrize(
    "model, smoke, check, detail",
    [
        (FailingModel(), {}, "predict", "predict() raised RuntimeError"),
        (WrongCountModel(), {}, "count", "returned 3 results for 2 rows"),
        (NanModel(), {}, "finite", "not a finite number"),
        (LinearModel([1.0, 1.0]), {"SMOKE_TEST_EXPECTED": "[3.0, 8.0]"}, "expected", "result 1 is 7.0, expected 8.0"),
        (
            LinearModel([1.0, 1.0]),
            {"SMOKE_TEST_EXPECTED": "[3.0, 7.01]", "SMOKE_TEST_TOLERANCE": "0.001"},
            "expected",
            "within 0.001",
        ),
    ],
    ids=["raises", "wrong-count", "not-finite", "outside-expected", "outside-tolerance"],
)
def test_a_model_that_fails_its_smoke_test_exits_1_naming_the_version_and_the_check(
    publish, capsys, restore_logging, model, smoke, check, detail
):
    # Given a model and a smoke test it fails
    published = publish(model)

    # When the server starts
    code, lines = run_main(published, capsys, SMOKE_TEST_INSTANCES=ROWS, **smoke)

    # Then it exits 1 with one startup_failed line naming URI, version and the failed check
    assert code == 1
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert [line["event"] for line in errors] == ["startup_failed"]
    assert f"smoke test failed for model {published.uri} version {published.version_id}" in errors[0]["message"]
    assert errors[0]["check"] == check and detail in errors[0]["message"]
    assert errors[0]["model_version_id"] == published.version_id
    # And it never served: no "serving" line, and the port it had bound is closed
    assert not [line for line in lines if line["event"] in ("serving", "smoke_test_passed")]
    assert refuses_connections(next(line for line in lines if line["event"] == "listening")["port"])


def test_expected_values_in_the_object_metadata_override_the_environment(publish, capsys, restore_logging):
    # Given the environment expects what the model returns, but the version's own metadata expects otherwise
    published = publish(LinearModel([1.0, 1.0]), Metadata={"aurelius-smoke-expected": "[3.0, 70.0]"})

    # When the server starts
    code, lines = run_main(published, capsys, SMOKE_TEST_INSTANCES=ROWS, SMOKE_TEST_EXPECTED="[3.0, 7.0]")

    # Then the metadata wins: the check fails and says where the expectation came from
    assert code == 1
    error = next(line for line in lines if line["event"] == "startup_failed")
    assert error["check"] == "expected" and "S3 metadata" in error["message"]


def test_malformed_metadata_fails_the_version_not_the_configuration(publish, capsys, restore_logging):
    # Given a version whose metadata tolerance is not a number
    published = publish(LinearModel([1.0, 1.0]), Metadata={"aurelius-smoke-tolerance": "loose"})

    # When the server starts / Then exit 1 (another version can fix it), check "metadata"
    code, lines = run_main(published, capsys, SMOKE_TEST_INSTANCES=ROWS)
    assert code == 1
    error = next(line for line in lines if line["event"] == "startup_failed")
    assert error["check"] == "metadata" and "aurelius-smoke-tolerance" in error["message"]


def test_a_model_that_passes_its_smoke_test_turns_healthy(publish, start_server):
    # Given a model, its smoke test in the environment and a tolerance in the version's metadata
    published = publish(ArrayModel(), Metadata={"aurelius-smoke-tolerance": "0.5"})

    # When the server starts (it waits for /health 200)
    server = start_server(published, SMOKE_TEST_INSTANCES=ROWS)

    # Then the smoke test passed before it served, and it serves
    order = [line["event"] for line in server.lines]
    assert order.index("model_loaded") < order.index("smoke_test_passed") < order.index("serving")
    assert server.events("smoke_test_passed")[0]["tolerance"] == 0.5
    assert call(server.port, "POST", "/predict", {"instances": [[1, 2]]}).json == {"predictions": [[3, 2]]}


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SMOKE_TEST_INSTANCES": "[[1, 2], [3]]"}, "SMOKE_TEST_INSTANCES"),
        ({"SMOKE_TEST_INSTANCES": "not json"}, "is not valid JSON"),
        ({"SMOKE_TEST_INSTANCES": "[]"}, "instances is an empty array"),
        ({"SMOKE_TEST_INSTANCES": ROWS, "SMOKE_TEST_EXPECTED": "[1.0]"}, "has 1 values for 2 smoke test rows"),
        ({"SMOKE_TEST_INSTANCES": ROWS, "SMOKE_TEST_EXPECTED": "[1.0, null]"}, "finite numbers, strings or booleans"),
        ({"SMOKE_TEST_INSTANCES": ROWS, "SMOKE_TEST_TOLERANCE": "-1"}, "SMOKE_TEST_TOLERANCE '-1' must be"),
        ({"SMOKE_TEST_EXPECTED": "[1.0]"}, "SMOKE_TEST_INSTANCES is not"),
    ],
)
def test_a_malformed_smoke_test_is_a_configuration_error_naming_the_variable(env, message):
    # Given a malformed smoke test variable / When read / Then a ConfigError names it (exit 2 in main)
    with pytest.raises(ConfigError, match="SMOKE_TEST") as raised:
        smoke_test_from_env(env)
    assert message in str(raised.value)


def test_malformed_smoke_configuration_exits_2_before_binding(capsys, restore_logging):
    # Given a bad SMOKE_TEST_EXPECTED / When the server starts / Then exit 2, never listening
    code = main(
        {
            **os.environ,
            "MODEL_S3_URI": "s3://models-bucket/m.pkl",
            "MODEL_VERSION_ID": "v1",
            "SMOKE_TEST_INSTANCES": ROWS,
            "SMOKE_TEST_EXPECTED": "[1.0]",
        }
    )
    lines = log_lines(capsys.readouterr().out)
    assert code == 2
    assert [line["event"] for line in lines] == ["startup_failed"]


def test_no_smoke_test_configured_is_none_and_defaults_apply():
    # Given no smoke variables / Then there is no smoke test
    assert smoke_test_from_env({}) is None
    # And with rows only, the tolerance defaults to 1e-6 and no expected values are checked
    assert smoke_test_from_env({"SMOKE_TEST_INSTANCES": ROWS}) == SmokeTest([[1.0, 2.0], [3.0, 4.0]], None, 1e-6)
