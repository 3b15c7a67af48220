"""The sandbox end to end: the same path as `make demo`, checked through the AWS API."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import boto3
import pytest

from aurelius.sandbox.demo import SERVICE_STACK, Demo, Timeline
from aurelius.sandbox.environment import local_aws
from tests.helpers import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture
def finished_demo():
    # The demo's own checks raise StepFailed; the assertions below re-check through the API.
    with local_aws(lambda_log=io.StringIO()) as aws:
        lines: list[str] = []
        demo = Demo(aws, Timeline(out=lines.append))
        demo.run()
        yield aws, demo, lines


def test_demo_loop_ends_with_newest_model_on_a_new_revision(finished_demo):
    aws, demo, lines = finished_demo
    session = aws.session()
    s3, cfn, ecs = session.client("s3"), session.client("cloudformation"), session.client("ecs")
    # Then the service stack pins the current S3 version of the model (the fourth upload)
    current = s3.head_object(Bucket=demo.trigger.bucket, Key=demo.trigger.key)["VersionId"]
    versions = s3.list_object_versions(Bucket=demo.trigger.bucket, Prefix=demo.trigger.key)["Versions"]
    assert len(versions) == 4
    params = {p["ParameterKey"]: p["ParameterValue"] for p in cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]["Parameters"]}
    assert params["ModelVersionId"] == current
    # and it runs revision 3: v1 at create, v2, then v4 (v3 was never deployed on its own)
    resources = cfn.describe_stack_resources(StackName=SERVICE_STACK)["StackResources"]
    task = next(r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == "AWS::ECS::TaskDefinition")
    assert task.endswith(":3")
    family = task.split("/")[-1].split(":")[0]
    inactive = ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    assert len(inactive) == 2
    # and every stack the demo deploys exists
    stacks = {s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"].endswith("_COMPLETE")}
    assert {"aurelius-cluster-stack-local-demo", SERVICE_STACK, "aurelius-elb-stack-local-vm", "aurelius-trigger-stack-local-demo"} <= stacks
    # and the timeline has one line per step
    assert len(lines) == 8


def test_make_demo_entry_point_exits_zero_and_prints_the_timeline():
    done = subprocess.run([sys.executable, "-m", "aurelius.sandbox.demo"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The loop worked" in done.stdout


def test_keep_mode_redeploys_a_manual_upload_and_fires_a_refresh_tick(tmp_path):
    # Given the sandbox left running with --keep
    proc = subprocess.Popen(
        [sys.executable, "-m", "aurelius.sandbox.demo", "--keep"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        env_line = ""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the demo ended before it was ready"
            if line.strip().startswith("export AWS_ENDPOINT_URL="):
                env_line = line.strip()
                break
        endpoint = env_line.split()[1].split("=", 1)[1]
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}
        aws = [str(REPO / ".venv" / "bin" / "aws")] if (REPO / ".venv/bin/aws").exists() else ["aws"]
        model = tmp_path / "model.pkl"
        model.write_bytes(b"\x80\x04K\x05.")  # a pickle of the int 5, written by hand: never loaded here
        # When a person uploads by hand with the AWS CLI, as the printed help says
        subprocess.run([*aws, "s3", "cp", str(model), "s3://aurelius-models-local-demo/models/model.pkl"], env=env, check=True, capture_output=True)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1")
        current = s3.head_object(Bucket="aurelius-models-local-demo", Key="models/model.pkl")["VersionId"]

        def deployed() -> str:
            stack = cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]
            return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["ModelVersionId"]

        deadline = time.monotonic() + 30
        while deployed() != current and time.monotonic() < deadline:
            time.sleep(0.2)
        # Then it is redeployed the same way
        assert deployed() == current
        # And the documented refresh command answers "in sync"
        refresh = next(
            f["FunctionName"] for f in boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1").list_functions()["Functions"] if "ScheduledRefresh" in f["FunctionName"]
        )
        out = tmp_path / "out.json"
        subprocess.run(
            [*aws, "lambda", "invoke", "--function-name", refresh, "--payload", f"fileb://{REPO / 'tests/events/schedule.json'}", str(out)],
            env=env,
            check=True,
            capture_output=True,
        )
        assert json.loads(out.read_text())["action"] == "in-sync"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
