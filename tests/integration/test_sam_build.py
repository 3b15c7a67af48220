"""The shipped artifact: `sam validate --lint` and `sam build` work offline, each built artifact is
exactly the code its handler imports, and it runs with only what Lambda provides.

"What Lambda provides" is built the way bench/cold_start.py builds it (one definition): an
interpreter with no site-packages (`python -I -S`), whose sys.path is the artifact, then the
powertools layer (aws-lambda-powertools at the version requirements.lock pins, and its own
dependencies), then the runtime's packages (boto3 and its dependencies), each linked from this
virtual environment distribution by distribution. The AWS X-Ray SDK is in neither.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

from bench.cold_start import clean_interpreter, lambda_environment, lambda_paths, locked_version
from tests.helpers import BUCKET, EVENTS, KEY, REPO, SERVICE_STACK

BIN = Path(sys.executable).parent
SAM_ENV = {
    **os.environ,
    "SAM_CLI_TELEMETRY": "0",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PATH": f"{BIN}:{os.environ['PATH']}",
}
FUNCTIONS = {"RedeployServiceFunction": "redeploy_service", "ScheduledRefreshFunction": "scheduled_refresh"}
# Powertools' public SSM parameter holding its layer's ARN (Powertools for AWS Lambda (Python),
# "Lambda Layer": https://docs.aws.amazon.com/powertools/python/latest/#lambda-layer).
POWERTOOLS_LAYER = re.compile(
    r"^\{\{resolve:ssm:/aws/service/powertools/python/(?P<arch>x86_64|arm64)/(?P<python>python3\.\d+)/(?P<version>[0-9][^/}]*)\}\}$"
)

# In the clean interpreter: import the handler, build every client it uses, call it once with an
# event it must reject (no AWS call: the logger and metrics decorators run, the clients don't),
# then report which files of the artifact were imported.
PROBE = """
import json, os, sys, types
artifact, paths, event = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path[:0] = paths
import app
for service in ("s3", "cloudformation", "sns"):
    app.runtime.clients.get(service)
context = types.SimpleNamespace(function_name="probe", memory_limit_in_mb=256, aws_request_id="probe-request",
                                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:probe")
result = app.lambda_handler(event, context)
imported = sorted(
    os.path.relpath(module.__file__, artifact)
    for module in list(sys.modules.values())
    if getattr(module, "__file__", None) and os.path.abspath(module.__file__).startswith(artifact + os.sep)
)
event_classes = sorted(m for m in sys.modules if m.startswith("aws_lambda_powertools.utilities.data_classes"))
print("PROBE " + json.dumps({"result": result, "imported": imported, "xray": sorted(m for m in sys.modules if "xray" in m),
                             "event_classes": event_classes}))
"""


def sam(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "sam"), *args], check=False, cwd=cwd, env=SAM_ENV, capture_output=True, text=True, timeout=300
    )


def template() -> dict:
    return yaml_parse((REPO / "template.yaml").read_text(encoding="utf-8"))


def test_powertools_layer_is_the_locked_version_for_the_functions_runtime_and_architecture():
    # Given template.yaml and requirements.lock
    resources, function_globals = template()["Resources"], template()["Globals"]["Function"]
    # When the functions' layer reference is read
    (layer,) = function_globals["Layers"]
    match = POWERTOOLS_LAYER.match(layer)
    # Then it is powertools' public parameter for the functions' runtime and architecture, at the
    # version the lock pins (what the sandbox and the tests run), and no function overrides them
    assert match, f"template.yaml Globals.Function.Layers: {layer!r} is not a powertools SSM layer reference"
    assert match["version"] == locked_version("aws-lambda-powertools")
    assert match["python"] == function_globals["Runtime"]
    assert [match["arch"]] == function_globals["Architectures"]
    for logical_id in FUNCTIONS:
        overridden = {"Runtime", "Layers", "Architectures"} & resources[logical_id]["Properties"].keys()
        assert not overridden, f"{logical_id} overrides {overridden}"


def test_runtime_is_the_newest_python_the_pinned_sam_cli_supports():
    from samcli.lib.utils.architecture import SUPPORTED_RUNTIMES

    # Given the Python runtimes the pinned SAM CLI knows
    pythons = [runtime for runtime in SUPPORTED_RUNTIMES if re.fullmatch(r"python3\.\d+", runtime)]
    newest = max(pythons, key=lambda runtime: int(runtime.split(".")[1]))
    # Then the functions run on the newest (an upgrade of aws-sam-cli that adds one fails here)
    assert template()["Globals"]["Function"]["Runtime"] == newest


def test_functions_keep_active_tracing_without_an_sdk():
    # Given the functions' globals; Then Lambda records the traces (no X-Ray SDK in the code)
    assert template()["Globals"]["Function"]["Tracing"] == "Active"


@pytest.mark.slow
def test_sam_validate_lint_passes():
    done = sam("validate", "--lint", "--template-file", "template.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("sam-build")
    # Own build and cache directories: xdist workers may build at the same time.
    done = sam(
        "build",
        "--template-file",
        "template.yaml",
        "--build-dir",
        str(target / "build"),
        "--no-cached",
        "--cache-dir",
        str(target / "cache"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return target / "build"


@pytest.fixture(scope="module")
def lambda_like(tmp_path_factory):
    return lambda_paths(tmp_path_factory.mktemp("lambda"))


def rejected_event(logical_id: str) -> tuple[dict, dict[str, str]]:
    """An event the function must reject, and its environment (nothing reaches AWS)."""
    environment = {"SERVICE_STACK_NAME": SERVICE_STACK, "MODEL_BUCKET": BUCKET, "MODEL_KEY": KEY}
    if logical_id == "RedeployServiceFunction":
        event = json.loads((EVENTS / "s3_put.json").read_text())
        environment["MODEL_KEY"] = "models/another-model.pkl"
    else:
        event = json.loads((EVENTS / "stack_status_update_complete.json").read_text())
        environment["SERVICE_STACK_NAME"] = "another-stack"
    return event, environment


def probe(artifact: Path, lambda_like, logical_id: str) -> dict:
    event, environment = rejected_event(logical_id)
    done = subprocess.run(
        [
            *clean_interpreter(),
            "-c",
            PROBE,
            str(artifact),
            json.dumps(lambda_like.sys_path(artifact)),
            json.dumps(event),
        ],
        check=False,
        cwd=artifact.parent,
        env=lambda_environment(POWERTOOLS_SERVICE_NAME=FUNCTIONS[logical_id], **environment),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    return json.loads(line.removeprefix("PROBE "))


@pytest.mark.slow
@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_artifact_holds_exactly_the_modules_its_handler_imports(build_dir, lambda_like, logical_id):
    # Given the function's `sam build` output
    artifact = build_dir / logical_id
    shipped = sorted(str(path.relative_to(artifact)) for path in artifact.rglob("*") if path.is_file())
    # When its handler is imported in a Lambda-like interpreter (artifact + layer + runtime)
    imported = probe(artifact, lambda_like, logical_id)["imported"]
    # Then every shipped file is a module the handler imports, and nothing else is shipped: no
    # operator code, no sandbox, no third-party package (powertools is the layer's, boto3 the runtime's)
    assert shipped == imported
    assert "app.py" in shipped and "aurelius/core/reconcile.py" in shipped
    assert not (REPO / "functions" / FUNCTIONS[logical_id] / "requirements.txt").exists(), (
        "the function declares no dependency of its own"
    )


@pytest.mark.slow
@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_built_handler_runs_with_only_the_runtime_the_layer_and_its_artifact(build_dir, lambda_like, logical_id):
    # Given the built artifact, the pinned powertools as the layer and boto3 as the runtime
    # When the handler is imported, its S3, CloudFormation and SNS clients are built and it is
    # called with an event for another model key / another stack
    report = probe(build_dir / logical_id, lambda_like, logical_id)
    # Then it answers (the powertools decorators work from the layer), no X-Ray SDK was needed, and
    # powertools' event data classes stayed unloaded: importing one imports all ~40 event sources,
    # a third of the cold start beyond boto3 (aurelius/core/events.py, bench row 1)
    assert report["result"]["action"] == "rejected", report
    assert report["xray"] == []
    assert report["event_classes"] == []
