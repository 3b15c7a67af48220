"""aurelius doctor against moto: an empty account, a half-built one, and the sandbox's whole loop."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import boto3
import pytest

from aurelius import cli
from tests.helpers import REPO


def run(capsys, *args: str) -> tuple[int, dict]:
    code = cli.main(["doctor", "--environment", "local", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def first_problem(report: dict) -> dict:
    return next(c for c in report["checks"] if c["status"] in ("fail", "error"))


def test_empty_account_fails_naming_the_cluster_first(aws, capsys):
    # Given an account with nothing of aurelius in it (the fixture's buckets removed)
    for bucket in ("aurelius-models-local-demo", "aurelius-artifacts-local-demo"):
        aws.s3.delete_bucket(Bucket=bucket)
    # When doctor runs
    code = cli.main(["doctor", "--environment", "local"])
    out = capsys.readouterr().out
    # Then it exits 1 and names the first missing link of the first deploy, with the command that makes it
    assert code == 1
    assert "start with the first missing link: cluster" in out
    assert "fix: python infra/ecs-cluster/management-scripts/create-cluster.py --environment local" in out
    # and the JSON form says the same, one object per check
    code, report = run(capsys)
    assert code == 1 and report["ok"] is False
    assert first_problem(report)["name"] == "cluster"
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in report["checks"])
    assert {c["status"] for c in report["checks"]} <= {"ok", "fail", "error", "skipped", "not checkable here"}


def test_aurelius_doctor_on_an_empty_account_exits_1_naming_the_first_missing_link(aws, capsys):
    # Given an account with nothing of aurelius in it (the fixture's buckets removed)
    for bucket in ("aurelius-models-local-demo", "aurelius-artifacts-local-demo"):
        aws.s3.delete_bucket(Bucket=bucket)
    # When an operator runs the CLI's doctor command (its default boto3 clients, against moto)
    code = cli.main(["doctor", "--environment", "local"])
    out = capsys.readouterr().out
    # Then it exits 1 and names the cluster, the first link of the first deploy, with its fix
    assert code == 1
    assert "start with the first missing link: cluster" in out
    assert "fix: python infra/ecs-cluster/management-scripts/create-cluster.py --environment local" in out
    # and --json through the CLI gives the same verdict
    code = cli.main(["doctor", "--environment", "local", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and first_problem(report)["name"] == "cluster"


def test_aurelius_doctor_with_an_unknown_environment_exits_2_before_any_aws_call(aws, capsys):
    # Given a client factory that fails the test if doctor asks it for any AWS client
    def no_aws(service, region):
        raise AssertionError(f"a bad environment must stop before any AWS call (asked for {service})")

    # When the CLI's doctor is asked about an environment the settings do not have
    code = cli.main(["doctor", "--environment", "staging"], clients=no_aws)
    err = capsys.readouterr().err
    # Then it exits 2 and names the unknown environment
    assert code == 2
    assert "aurelius doctor: error:" in err and "environments.staging: unknown environment" in err


def test_after_the_cluster_the_trigger_stack_is_the_first_missing_link(aws, scripts, capsys):
    # Given the cluster of the first deploy's step 1
    assert scripts["cluster"].main(["--environment", "local"]) == 0
    capsys.readouterr()
    # When doctor runs
    code, report = run(capsys)
    # Then the cluster passes and the next link, the trigger stack, is named with its command
    checks = {c["name"]: c for c in report["checks"]}
    assert code == 1
    assert checks["cluster"]["status"] == "ok"
    # moto skips capacity providers: not a pass, not a failure
    assert checks["cluster capacity providers"]["status"] == "not checkable here"
    assert first_problem(report)["name"] == "trigger stack"
    assert first_problem(report)["fix"] == "sam build && sam deploy --config-env local"


def test_doctor_reads_only(aws, capsys):
    # Given a recorder of every AWS operation doctor's clients send
    sent: list[str] = []
    session = boto3.session.Session()
    session.events.register("before-call.*.*", lambda model, **kwargs: sent.append(model.name))
    # When doctor runs
    cli.main(
        ["doctor", "--environment", "local"],
        clients=lambda service, region: session.client(service, region_name=region),
    )
    capsys.readouterr()
    # Then every call was a read
    assert sent
    assert all(name.startswith(("Describe", "Get", "Head", "List", "Simulate")) for name in sent), sent


@pytest.mark.e2e
def test_against_the_sandbox_loop_doctor_passes_and_then_catches_broken_links(capsys):
    from aurelius.sandbox.demo import SERVICE_STACK, Demo, Timeline
    from aurelius.sandbox.environment import local_aws

    # Given the sandbox after the whole loop (what `make demo ARGS=--keep` leaves running)
    with local_aws(lambda_log=io.StringIO()) as sandbox:
        Demo(sandbox, Timeline(out=lambda line: None)).run()
        capsys.readouterr()
        # When doctor checks environment local
        code, report = run(capsys)
        checks = {c["name"]: c["status"] for c in report["checks"]}
        # Then nothing is to fix ...
        assert code == 0, report
        for name in (
            "cluster",
            "trigger stack",
            "trigger functions",
            "model bucket",
            "model bucket versioning",
            "model bucket notifications",
            "model object",
            "service stack",
            "service stack role",
        ):
            assert checks[name] == "ok", (name, report)
        # ... and what moto cannot answer is said so, never passed
        assert checks["cluster capacity providers"] == "not checkable here"
        assert checks["service role"] == "not checkable here"
        assert [s for n, s in checks.items() if n.startswith("role of ")] == ["not checkable here"] * 2

        # and the module's own entry point, as a person runs it with the sandbox's exports, agrees
        done = subprocess.run(
            [sys.executable, "-m", "aurelius.doctor", "--environment", "local"],
            cwd=REPO,
            env={**os.environ, **sandbox.environment},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "all checks passed (4 not checkable here" in done.stdout

        session = sandbox.session()
        cfn, s3 = session.client("cloudformation"), session.client("s3")
        # When a person's update binds the service stack to another role (moto, like AWS, records
        # RoleARN; it refuses an update that changes nothing, so DesiredCount moves too) ...
        stack = cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]
        params = [
            {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
            for p in stack["Parameters"]
            if p["ParameterKey"] != "DesiredCount"
        ] + [{"ParameterKey": "DesiredCount", "ParameterValue": "3"}]
        cfn.update_stack(
            StackName=SERVICE_STACK,
            UsePreviousTemplate=True,
            Parameters=params,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            RoleARN="arn:aws:iam::123456789012:role/someone-admin",
        )
        # ... and versioning is suspended on the model bucket
        s3.put_bucket_versioning(Bucket="aurelius-models-local-demo", VersioningConfiguration={"Status": "Suspended"})
        code, report = run(capsys)
        problems = [c for c in report["checks"] if c["status"] == "fail"]
        # Then doctor names both, first the one earlier in the chain
        assert code == 1
        assert [c["name"] for c in problems] == ["model bucket versioning", "service stack role"]
        assert "someone-admin" in problems[1]["detail"]
        trigger = cfn.describe_stacks(StackName="aurelius-trigger-stack-local-demo")["Stacks"][0]
        service_role = {o["OutputKey"]: o["OutputValue"] for o in trigger["Outputs"]}["CloudFormationServiceRoleArn"]
        assert problems[1]["fix"].endswith(f"--environment local --role-arn {service_role}")
