"""`aurelius status / deploy / history` against moto, on the service stack deploy-service.py made.

The CLI runs in-process (plain boto3 inside mock_aws); the console script itself is run as a
subprocess for --help. moto tags UpdateStack's events with the request token only through
aurelius.sandbox.moto_compat (applied by conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from aurelius import cli
from aurelius.core.reconcile import Target, reconcile
from tests.helpers import CallLog
from tests.integration.conftest import BUCKET, KEY, SERVICE_STACK
from tests.integration.signed_uploads import require_signing, upload
from tests.signing.material import make_key

AURELIUS = Path(sys.executable).with_name("aurelius")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def status_of(capsys) -> tuple[int, dict]:
    code, out, _ = run(capsys, "status", "--environment", "local", "--json")
    (env,) = json.loads(out)["environments"]
    return code, env


# ---------------------------------------------------------------------------- status
def test_status_of_a_fresh_deploy_is_in_sync_and_exits_0(deployed, capsys):
    # Given the service stack pins version 1, the current version
    # When
    code, out, _ = run(capsys, "status", "--environment", "local")
    # Then the table shows it in sync on revision 1, created by the deploy script
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["ENVIRONMENT", "STATE", "STACK", "STATUS"]
    assert row.split()[:5] == ["local", "in", "sync", "CREATE_COMPLETE", "1"]
    assert "= deployed" in row and "created" in row


def test_status_after_an_upload_is_behind_and_exits_1(deployed, capsys):
    # Given version 2 is uploaded and nothing deployed it
    v1 = deployed.parameters()["ModelVersionId"]
    v2 = deployed.upload(2)
    # When
    code, env = status_of(capsys)
    # Then
    assert code == 1
    assert env["state"] == "behind"
    assert (env["deployed"]["version_id"], env["newest"]["version_id"]) == (v1, v2)
    assert env["deployed"]["size"] > 0 and env["deployed"]["last_modified"]
    assert env["task_definition"].endswith(":1") and env["revision"] == 1


def test_status_of_every_environment_shows_missing_stacks_instead_of_failing(deployed, capsys):
    # Given only environment local is deployed; dev and prod have no stack (and no bucket)
    # When status runs over the whole settings file
    code, out, _ = run(capsys, "status", "--json")
    # Then each environment has a row, the undeployed ones "missing", and the exit code says so
    states = {e["environment"]: e["state"] for e in json.loads(out)["environments"]}
    assert states == {"local": "in sync", "dev": "missing", "prod": "missing"}
    assert code == 1


# ---------------------------------------------------------------------------- deploy
def test_deploy_latest_moves_the_stack_forward_to_a_new_revision(deployed, capsys):
    # Given version 2 is uploaded
    v2 = deployed.upload(2)
    # When the operator deploys the latest version
    code, out, _ = run(capsys, "deploy", "--environment", "local", "--latest")
    # Then the stack pins v2 on a new task definition revision, and status is in sync
    assert code == 0, out
    assert "forward to a newer version" in out and "stack UPDATE_COMPLETE" in out
    assert deployed.parameters()["ModelVersionId"] == v2
    assert deployed.task_definition_resource().endswith(":2")
    assert status_of(capsys)[0] == 0


def test_deploy_reads_the_model_and_the_stack_once_then_acts_on_that_reading(deployed, capsys):
    # Given version 2 is uploaded, and every AWS call the command makes is logged
    v2 = deployed.upload(2)
    calls = CallLog()
    # When the operator deploys it
    code = cli.main(
        ["deploy", "--environment", "local", "--version-id", v2],
        clients=lambda service, region: calls.watch(boto3.client(service, region_name=region)),
    )
    # Then before its one UpdateStack it made one HeadObject and one DescribeStacks (the stack is
    # healthy, so no events read), plus the version listing the operator is shown
    assert code == 0, capsys.readouterr()
    before = calls.before("UpdateStack")
    assert calls.operations.count("UpdateStack") == 1
    assert sorted(before) == ["DescribeStacks", "HeadObject", "ListObjectVersions"]
    assert deployed.parameters()["ModelVersionId"] == v2


def test_deploy_version_id_rolls_the_service_back_to_an_older_version(deployed, capsys):
    # Given v1 was replaced by v2
    v1 = deployed.parameters()["ModelVersionId"]
    deployed.upload(2)
    assert run(capsys, "deploy", "--environment", "local", "--latest")[0] == 0
    # When the operator deploys v1 again
    code, out, _ = run(capsys, "deploy", "--environment", "local", "--version-id", v1)
    # Then the stack pins v1 (a third revision) and status reports it behind the newest
    assert code == 0, out
    assert "back to an older version" in out
    # and it warns that the redeployer converges on S3's current version, saying how to keep v1
    assert "the redeployer follows S3" in out and f"?versionId={v1}" in out
    assert deployed.parameters()["ModelVersionId"] == v1
    assert deployed.task_definition_resource().endswith(":3")
    code, env = status_of(capsys)
    assert code == 1 and env["state"] == "behind"


def test_deploy_make_current_rolls_back_for_good_by_copying_the_old_version(deployed, capsys):
    # Given v1 was replaced by v2
    v1 = deployed.parameters()["ModelVersionId"]
    v2 = deployed.upload(2)
    assert run(capsys, "deploy", "--environment", "local", "--latest")[0] == 0
    # When the operator rolls back to v1 and makes it current
    code, out, _ = run(capsys, "deploy", "--environment", "local", "--version-id", v1, "--make-current")
    assert code == 0, out
    # Then S3's current version is a new copy with v1's bytes, and it is what the stack pins
    current = deployed.s3.head_object(Bucket=BUCKET, Key=KEY)["VersionId"]
    assert current not in (v1, v2)
    old = deployed.s3.get_object(Bucket=BUCKET, Key=KEY, VersionId=v1)["Body"].read()
    assert deployed.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == old
    assert deployed.parameters()["ModelVersionId"] == current
    # and the redeployer's next reconcile keeps it: status is in sync
    assert reconcile(Target(SERVICE_STACK, BUCKET, KEY), s3=deployed.s3, cfn=deployed.cfn).action.value == "in-sync"
    assert status_of(capsys)[0] == 0


def test_deploy_dry_run_prints_the_parameter_change_and_changes_nothing(deployed, capsys):
    # Given version 2 is uploaded
    before = deployed.parameters()
    v2 = deployed.upload(2)
    # When
    code, out, _ = run(capsys, "deploy", "--environment", "local", "--version-id", v2, "--dry-run")
    # Then the change is shown, and the stack, its revision and its change sets are as before
    assert code == 0, out
    assert f"parameter ModelVersionId: {before['ModelVersionId']} -> {v2}" in out
    assert "nothing deployed" in out
    assert deployed.parameters() == before
    assert deployed.task_definition_resource().endswith(":1")
    # (moto lists every stack's change sets, the scripts' executed ones too: look for ours)
    names = [c["ChangeSetName"] for c in deployed.cfn.list_change_sets(StackName=SERVICE_STACK)["Summaries"]]
    assert names and not [n for n in names if n.startswith("aurelius-dry-run-")]


def test_deploy_of_an_unknown_version_exits_2_before_touching_the_stack(aws, capsys):
    # Given a versioned model (the stack is not even needed: the version is checked first)
    aws.upload(1)
    # When / Then
    code, _, err = run(capsys, "deploy", "--environment", "local", "--version-id", "no-such-version")
    assert code == 2
    assert "unknown model version 'no-such-version'" in err


@pytest.mark.parametrize(
    "argv",
    [["status"], ["history"], ["deploy", "--latest"]],
    ids=["status", "history", "deploy"],
)
def test_unknown_environment_exits_2(aws, capsys, argv):
    code, _, err = run(capsys, argv[0], "--environment", "nowhere", *argv[1:])
    assert code == 2 and "environments.nowhere: unknown environment" in err


def test_deploy_without_a_service_stack_is_refused_with_exit_1(aws, capsys):
    # Given a model but no service stack
    aws.upload(1)
    code, _, err = run(capsys, "deploy", "--environment", "local", "--latest")
    assert code == 1 and "does not exist" in err


# ---------------------------------------------------------------------------- history
def test_history_after_two_deploys_lists_both_newest_first_with_their_outcomes(deployed, capsys):
    # Given the redeployer deployed v2, then the operator rolled back to v1
    v1 = deployed.parameters()["ModelVersionId"]
    v2 = deployed.upload(2)
    assert reconcile(Target(SERVICE_STACK, BUCKET, KEY), s3=deployed.s3, cfn=deployed.cfn).action.value == "started"
    assert run(capsys, "deploy", "--environment", "local", "--version-id", v1)[0] == 0
    # When
    code, out, _ = run(capsys, "history", "--environment", "local", "--json")
    # Then: v1 (force) then v2 (auto), both completed, then the creation
    assert code == 0
    deploys = json.loads(out)["deploys"]
    assert [(d["version_id"], d["kind"], d["outcome"]) for d in deploys[:2]] == [
        (v1, "force", "completed"),
        (v2, "auto", "completed"),
    ]
    assert deploys[0]["started"] >= deploys[1]["ended"]
    assert deploys[-1]["outcome"] == "created"
    # and the table for people says the same
    code, table, _ = run(capsys, "history", "--environment", "local")
    rows = [line for line in table.splitlines() if "completed" in line]
    assert code == 0 and v1 in rows[0] and v2 in rows[1]
    # and --limit keeps the newest
    code, out, _ = run(capsys, "history", "--environment", "local", "--limit", "1", "--json")
    assert code == 0 and [d["version_id"] for d in json.loads(out)["deploys"]] == [v1]


def test_moto_update_events_carry_the_request_token_through_moto_compat(deployed):
    # Given / When: reconcile updates the stack with its ClientRequestToken
    deployed.upload(2)
    outcome = reconcile(Target(SERVICE_STACK, BUCKET, KEY), s3=deployed.s3, cfn=deployed.cfn)
    # Then DescribeStackEvents returns it on that update's events, as AWS does
    events = deployed.cfn.describe_stack_events(StackName=SERVICE_STACK)["StackEvents"]
    assert [e.get("ClientRequestToken") for e in events[:2]] == [outcome.token, outcome.token]
    assert [e["ResourceStatus"] for e in events[:2]] == ["UPDATE_COMPLETE", "UPDATE_IN_PROGRESS"]


# ---------------------------------------------------------------------------- the console script
@pytest.mark.parametrize(
    "argv",
    [[], ["status"], ["deploy"], ["history"], ["publish"], ["sign"]],
    ids=["aurelius", "status", "deploy", "history", "publish", "sign"],
)
def test_console_script_help_works_for_every_command(argv):
    done = subprocess.run([str(AURELIUS), *argv, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: aurelius")
    assert "--help" in done.stdout


# ---------------------------------------------------------------------------- signing (issue 17)
def test_publish_writes_the_signature_then_the_model_and_status_shows_both_signed(deployed, capsys, tmp_path):
    # Given a service that requires signing, a key, and a model file
    require_signing(deployed.cfn)
    key = make_key(tmp_path, "publisher")
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x04K\x2a.")  # pickle of 42
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    # When
    code, out, err = run(capsys, "publish", "-e", "local", str(model), "--key", str(key.private_key))
    # Then the model's new version carries its digest, and its signature is where the layout says
    assert code == 0, err
    # (moto neither stores nor checks ChecksumSHA256: tests/unit/test_publish.py pins that it is sent)
    head = deployed.s3.head_object(Bucket=BUCKET, Key=KEY)
    assert f"as version {head['VersionId']}" in out
    assert head["Metadata"] == {"aurelius-sha256": digest}
    sidecar = deployed.s3.head_object(Bucket=BUCKET, Key=f"{KEY}.sig/{digest}")
    assert sidecar["LastModified"] <= head["LastModified"]  # written first
    # and status shows the newest version signed, the deployed one (uploaded by hand) not, signing required
    code, env = status_of(capsys)
    assert env["signing_required"] is True
    assert env["newest_signature"]["state"] == "signed" and env["deployed_signature"]["state"] == "no-digest"
    # and the service's tasks (moto runs none, but reports the counts)
    assert env["tasks"]["desired"] >= 1 and "running" in env["tasks"]


def test_a_forced_deploy_refuses_an_unsigned_version_where_signing_is_required(deployed, capsys):
    # Given a service that requires signing, and an unsigned upload
    require_signing(deployed.cfn)
    before = deployed.parameters()["ModelVersionId"]
    unsigned = upload(deployed.s3, 2, signed=False)
    # When the operator forces it
    code, _, err = run(capsys, "deploy", "--environment", "local", "--version-id", unsigned)
    # Then it is refused (the server would refuse it anyway), naming why, and nothing moved
    assert code == 1
    assert f"not signed: version {unsigned}" in err and "forced deploy refuses it too" in err
    assert deployed.parameters()["ModelVersionId"] == before


def test_a_signed_version_is_deployed_by_a_forced_deploy_where_signing_is_required(deployed, capsys):
    require_signing(deployed.cfn)
    signed = upload(deployed.s3, 2, signed=True)
    code, out, _ = run(capsys, "deploy", "--environment", "local", "--version-id", signed)
    assert code == 0, out
    assert deployed.parameters()["ModelVersionId"] == signed


def test_history_shows_whether_each_deployed_version_is_signed(deployed, capsys):
    require_signing(deployed.cfn)
    signed = upload(deployed.s3, 2, signed=True)
    assert reconcile(Target(SERVICE_STACK, BUCKET, KEY), s3=deployed.s3, cfn=deployed.cfn).action.value == "started"
    code, out, _ = run(capsys, "history", "--environment", "local", "--json")
    assert code == 0
    record = json.loads(out)
    newest = record["deploys"][0]
    assert record["signing_required"] is True
    assert (newest["version_id"], newest["signature"]["state"]) == (signed, "signed")
