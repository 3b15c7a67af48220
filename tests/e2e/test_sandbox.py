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

from aurelius.sandbox.demo import Demo, Timeline
from aurelius.sandbox.environment import local_aws
from tests.helpers import BUCKET, CLUSTER_STACK, ELB_STACK, KEY, REPO, SERVICE_STACK, TRIGGER_STACK

# One worker runs them all, one after the other: every demo writes the same .sandbox/ (the signing
# key pair, the settings copies, the logs), so two at once on two xdist workers would trade keys.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sandbox")]


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
    # Then the service stack pins the current S3 version of the model (the ninth upload)
    current = s3.head_object(Bucket=demo.trigger.bucket, Key=demo.trigger.key)["VersionId"]
    versions = s3.list_object_versions(Bucket=demo.trigger.bucket, Prefix=demo.trigger.key)["Versions"]
    assert len([v for v in versions if v["Key"] == demo.trigger.key]) == 9
    stack = cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["ModelVersionId"] == current and stack["StackStatus"] == "UPDATE_COMPLETE"
    # and it runs revision 9: v1 at create, v2, v4 (v3 was never deployed on its own), the bad
    # v5, the emulated rollback to v4, v6, (the unsigned v7 never), the tampered v8, the
    # emulated rollback to v6, then v9
    resources = cfn.describe_stack_resources(StackName=SERVICE_STACK)["StackResources"]
    task = next(r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == "AWS::ECS::TaskDefinition")
    assert task.endswith(":9")
    family = task.split("/")[-1].split(":")[0]
    inactive = ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    assert len(inactive) == 8
    # and the stack requires signatures from the demo's key, which the task receives
    assert params["SigningRequired"] == "true" and json.loads(params["SigningTrust"])["mode"] == "key"
    # and every stack the demo deploys exists
    stacks = {s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"].endswith("_COMPLETE")}
    assert {CLUSTER_STACK, SERVICE_STACK, ELB_STACK, TRIGGER_STACK} <= stacks
    # and the timeline has one line per step
    assert len(lines) == 19


def test_demo_bad_model_is_refused_rolled_back_marked_failed_and_not_retried(finished_demo):
    aws, demo, lines = finished_demo
    cfn = aws.session().client("cloudformation")
    timeline = "\n".join(lines)
    # Then the real model server refused v5 on its smoke test (its predict raises) ...
    assert "real model server on v5: refused" in timeline and "startup_failed: check 'predict'" in timeline
    # ... the timeline says the rollback was emulated ...
    assert "rollback of v5 (EMULATED)" in timeline
    # ... the stack events record the update to v5 and its rollback under one token, as on AWS ...
    events = cfn.describe_stack_events(StackName=SERVICE_STACK)["StackEvents"]
    stack_level = [
        (e["ResourceStatus"], e.get("ClientRequestToken"))
        for e in events
        if e["ResourceType"] == "AWS::CloudFormation::Stack"
    ]
    assert ("UPDATE_ROLLBACK_COMPLETE", demo.bad_token) in stack_level
    assert ("UPDATE_IN_PROGRESS", demo.bad_token) in stack_level
    # ... the tick after the rollback skipped v5, and no update ever tried v5 again
    tries_of_v5 = [token for status, token in stack_level if status == "UPDATE_IN_PROGRESS" and token == demo.bad_token]
    assert len(tries_of_v5) == 1
    assert "skipped: v5's rollout rolled back; not retried" in timeline
    # ... and the good v6 after it deployed and passed the real server's smoke test
    assert "passes the smoke test and turns healthy" in timeline


def test_demo_unsigned_and_tampered_models_are_refused_and_a_signed_one_is_served(finished_demo):
    aws, demo, lines = finished_demo
    cfn = aws.session().client("cloudformation")
    timeline = "\n".join(lines)
    # Then the unsigned v7 was refused by the redeployer with one alarm: no update ever named it
    assert "upload unsigned v7 -> refused, 1 alarm" in timeline and "alarm 'not signed'" in timeline
    # ... the tampered v8 was deployed (its metadata names a signed digest), refused by the real
    # server (its own hash has no signature) and rolled back under its token ...
    assert "real model server on v8: refused" in timeline and "startup_failed: signature_missing" in timeline
    events = cfn.describe_stack_events(StackName=SERVICE_STACK)["StackEvents"]
    stack_level = {
        (e["ResourceStatus"], e.get("ClientRequestToken"))
        for e in events
        if e["ResourceType"] == "AWS::CloudFormation::Stack"
    }
    assert ("UPDATE_ROLLBACK_COMPLETE", demo.tampered_token) in stack_level
    # ... and the demo ends on the signed v9, verified by the real server and served
    assert "upload signed v9 -> verified and served" in lines[-1] and "signature verified" in lines[-1]


def test_make_demo_entry_point_exits_zero_and_prints_the_timeline():
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "aurelius.sandbox.demo"], cwd=REPO, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The loop worked" in done.stdout
    # The rollback is the one step moto cannot do: the output must say it was emulated.
    assert "EMULATED" in done.stdout
    # make demo's budget is 60 s; the test allows for a loaded machine.
    assert time.monotonic() - started < 120


def test_keep_mode_redeploys_a_manual_upload_and_fires_a_refresh_tick(tmp_path):
    # Given the sandbox left running with --keep
    proc = subprocess.Popen(
        [sys.executable, "-m", "aurelius.sandbox.demo", "--keep"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
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
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
        }
        aws = [str(REPO / ".venv" / "bin" / "aws")] if (REPO / ".venv/bin/aws").exists() else ["aws"]
        model = tmp_path / "model.pkl"
        model.write_bytes(b"\x80\x04K\x05.")  # a pickle of the int 5, written by hand: never loaded here
        # When a person publishes it with the demo's signing key, as the printed help says
        aurelius = str(REPO / ".venv" / "bin" / "aurelius") if (REPO / ".venv/bin/aurelius").exists() else "aurelius"
        key = REPO / ".sandbox/signing/demo-signing.pem"
        subprocess.run(
            [aurelius, "publish", "--environment", "local", "--key", str(key), str(model)],
            env=env,
            check=True,
            capture_output=True,
        )
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1")
        current = s3.head_object(Bucket=BUCKET, Key=KEY)["VersionId"]

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
            f["FunctionName"]
            for f in boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1").list_functions()[
                "Functions"
            ]
            if "ScheduledRefresh" in f["FunctionName"]
        )
        out = tmp_path / "out.json"
        subprocess.run(
            [
                *aws,
                "lambda",
                "invoke",
                "--function-name",
                refresh,
                "--payload",
                f"fileb://{REPO / 'tests/events/schedule.json'}",
                str(out),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        assert json.loads(out.read_text())["action"] == "in-sync"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
