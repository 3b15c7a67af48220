"""The three management scripts against moto: create, update, dry run, outputs, bad settings."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.helpers import ARTIFACTS, BUCKET, CLUSTER, CLUSTER_STACK, ELB_STACK, KEY, SERVICE_STACK
from tests.signing.material import public_key_pem


def test_cluster_script_creates_then_updates_its_stack_and_prints_outputs(aws, scripts, capsys):
    # When the cluster is created
    assert scripts["cluster"].main(["--environment", "local"]) == 0
    out = capsys.readouterr().out
    # Then the stack exists with a cluster named by convention, and the outputs were printed
    assert aws.stack(CLUSTER_STACK)["StackStatus"] == "CREATE_COMPLETE"
    assert aws.ecs.describe_clusters(clusters=["aurelius-cluster-local-demo"])["clusters"][0]["status"] == "ACTIVE"
    assert "output ClusterName = aurelius-cluster-local-demo" in out
    assert "CREATE_COMPLETE" in out  # streamed events

    # When it runs again with other settings, the stack is updated
    settings = (
        scripts["cluster"]
        .SETTINGS.read_text()
        .replace("capacity: {min: 1, max: 4, desired: 2}", "capacity: {min: 1, max: 5, desired: 3}", 1)
    )
    path = aws_tmp_settings(settings)
    assert scripts["cluster"].main(["--environment", "local", "--settings", str(path)]) == 0
    assert aws.stack(CLUSTER_STACK)["StackStatus"] == "UPDATE_COMPLETE"
    assert aws.parameters(CLUSTER_STACK)["DesiredCapacity"] == "3"


def aws_tmp_settings(text: str):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "service-settings.yml"
    path.write_text(text)
    return path


def test_service_script_creates_stack_pinned_to_current_model_version(aws, scripts, capsys):
    # Given a cluster and a model with one version
    version = aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    # When the service is deployed for the first time
    assert scripts["service"].main(["--environment", "local"]) == 0
    # Then it pins exactly that version, in the parameters and the container environment
    params = aws.parameters()
    assert params["ModelS3Uri"] == f"s3://{BUCKET}/{KEY}"
    assert params["ModelVersionId"] == version
    task = aws.ecs.describe_task_definition(taskDefinition=aws.task_definition_resource())["taskDefinition"]
    env = {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]}
    assert env["MODEL_S3_URI"] == f"s3://{BUCKET}/{KEY}" and env["MODEL_VERSION_ID"] == version
    assert "output ServiceUrl = http://" in capsys.readouterr().out


def test_service_script_update_keeps_the_deployed_model_version(deployed, scripts):
    # Given version 1 deployed and a newer upload the redeployer has not handled yet
    before = deployed.parameters()["ModelVersionId"]
    deployed.upload(2)
    # When a person redeploys the service (for an image change)
    settings = (
        scripts["service"].SETTINGS.read_text().replace("aurelius/model-server:0.1.0", "aurelius/model-server:0.2.0", 1)
    )
    assert scripts["service"].main(["--environment", "local", "--settings", str(aws_tmp_settings(settings))]) == 0
    # Then the image changed and the model did not move
    params = deployed.parameters()
    assert params["ContainerImage"] == "aurelius/model-server:0.2.0"
    assert params["ModelVersionId"] == before


def test_service_script_pins_a_named_model_version(deployed, scripts):
    v2 = deployed.upload(2)
    assert scripts["service"].main(["--environment", "local", "--model-version-id", v2]) == 0
    assert deployed.parameters()["ModelVersionId"] == v2


def test_service_script_without_a_model_fails_clearly_and_creates_nothing(aws, scripts, capsys):
    aws.ecs.create_cluster(clusterName=CLUSTER)
    assert scripts["service"].main(["--environment", "local"]) == 1
    assert "upload the model" in capsys.readouterr().err
    assert SERVICE_STACK not in aws.stack_names()


@pytest.mark.parametrize("which, stack", [("cluster", CLUSTER_STACK), ("service", SERVICE_STACK), ("elb", ELB_STACK)])
def test_dry_run_prints_the_change_set_and_changes_nothing(aws, scripts, capsys, which, stack):
    aws.upload(1)
    assert scripts[which].main(["--environment", "local", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Add" in out and "dry run" in out
    assert stack not in aws.stack_names()
    assert aws.cfn.list_stacks()["StackSummaries"] == [] or all(
        s["StackStatus"] == "DELETE_COMPLETE" for s in aws.cfn.list_stacks()["StackSummaries"]
    )


def test_dry_run_of_an_update_leaves_the_stack_as_it_was(deployed, scripts):
    v2 = deployed.upload(2)
    before = deployed.parameters()
    assert scripts["service"].main(["--environment", "local", "--model-version-id", v2, "--dry-run"]) == 0
    assert deployed.parameters() == before
    assert deployed.stack()["StackStatus"] == "CREATE_COMPLETE"


def test_rerun_with_no_change_is_success(deployed, scripts, capsys):
    assert scripts["cluster"].main(["--environment", "local"]) == 0
    # moto echoes List<Subnet::Id> parameters back in another form (docs/moto.md#cloudformation), so it may see a
    # parameter change where AWS sees none; either way the script succeeds and nothing moves.
    assert deployed.stack(CLUSTER_STACK)["StackStatus"] in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


def test_elb_script_uploads_the_server_bundle_and_creates_its_stack(aws, scripts):
    aws.upload(1)
    assert scripts["elb"].main(["--environment", "local"]) == 0
    params = aws.parameters(ELB_STACK)
    bundle_uri = params["ServerBundleS3Uri"]
    assert bundle_uri.startswith(f"s3://{ARTIFACTS}/aurelius/server-bundle-")
    key = bundle_uri.removeprefix(f"s3://{ARTIFACTS}/")
    assert aws.s3.head_object(Bucket=ARTIFACTS, Key=key)["ContentLength"] > 0
    elb = boto3.client("elb").describe_load_balancers(LoadBalancerNames=["aurelius-elb-local-vm"])
    assert elb["LoadBalancerDescriptions"]
    # The bundle holds everything install-server.sh checks for
    import io
    import tarfile

    bundle = scripts["elb"].server_bundle()
    names = set(tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz").getnames())
    assert {
        "install-server.sh",
        "aurelius-model-server.service",
        "server/requirements.txt",
        "server/aurelius_server/__main__.py",
    } <= names
    # The same sources give the same bundle: an unchanged server replaces no instance.
    assert scripts["elb"].server_bundle() == scripts["elb"].server_bundle()


def test_elb_script_updates_its_stack_and_keeps_the_model_version(aws, scripts):
    # Given the elb stack serving version 1, and a newer upload
    v1 = aws.upload(1)
    assert scripts["elb"].main(["--environment", "local"]) == 0
    aws.upload(2)
    # When a person changes the capacity and redeploys
    settings = (
        scripts["elb"]
        .SETTINGS.read_text()
        .replace("capacity: {min: 1, max: 3, desired: 2}", "capacity: {min: 1, max: 4, desired: 3}", 1)
    )
    assert scripts["elb"].main(["--environment", "local", "--settings", str(aws_tmp_settings(settings))]) == 0
    # Then the stack is updated and the model did not move
    params = aws.parameters(ELB_STACK)
    assert aws.stack(ELB_STACK)["StackStatus"] == "UPDATE_COMPLETE"
    assert (params["DesiredCapacity"], params["ModelVersionId"]) == ("3", v1)


@pytest.mark.parametrize("which", ["cluster", "service", "elb"])
@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("    base_name: aurelius\n", "", "base_name: Field required"),
        ("    base_name: aurelius\n", "    base_name: 42\n", "base_name: Input should be a valid string"),
        # Over the stack name's 128 (and the load balancers' 32) characters:
        ("    base_name: aurelius\n", "    base_name: aurelius" + "x" * 120 + "\n", "characters; AWS allows at most"),
    ],
)
def test_bad_settings_exit_2_before_any_aws_call(tmp_path, monkeypatch, capsys, scripts, which, old, new, expected):
    # Given a settings file that breaks a rule in its first environment (local)
    text = scripts[which].SETTINGS.read_text().replace(old, new, 1)
    path = tmp_path / "service-settings.yml"
    path.write_text(text)

    # and a boto3 that fails the test if anything tries to reach AWS
    def no_aws(*args, **kwargs):
        raise AssertionError("an AWS session was created for bad settings")

    monkeypatch.setattr(boto3.session, "Session", no_aws)
    # When / Then
    assert scripts[which].main(["--environment", "local", "--settings", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "environments.local" in err and expected in err


@pytest.mark.parametrize("which", ["cluster", "service", "elb"])
def test_unknown_environment_exits_2(monkeypatch, capsys, scripts, which):
    monkeypatch.setattr(boto3.session, "Session", lambda *a, **k: pytest.fail("AWS reached"))
    assert scripts[which].main(["--environment", "staging"]) == 2
    assert "unknown environment" in capsys.readouterr().err


def test_bad_arguments_exit_2(scripts):
    with pytest.raises(SystemExit) as info:
        scripts["service"].main(["--environmnt", "local"])
    assert info.value.code == 2


# --- the elb artifact bucket: created if missing ------------------------------------------------


def test_elb_script_creates_a_missing_artifact_bucket_private_encrypted_versioned_tls_only(aws, scripts, monkeypatch):
    # moto evaluates a bucket policy without its Condition (FakeBucket.put_bucket_policy says so),
    # so the TLS-only Deny would refuse every request, HTTPS ones included; S3 refuses only
    # requests without TLS, and boto3 speaks HTTPS. The policy is asserted as sent, below.
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    monkeypatch.setattr(FakeBucket, "get_permission", lambda self, action, resource: PermissionResult.NEUTRAL)
    # Given a model and no artifact bucket yet (a new account)
    aws.upload(1)
    aws.s3.delete_bucket(Bucket=ARTIFACTS)
    # When the elb stack is deployed
    assert scripts["elb"].main(["--environment", "local"]) == 0
    # Then the bucket exists, private (owner-enforced, every public access block on) ...
    blocks = aws.s3.get_public_access_block(Bucket=ARTIFACTS)["PublicAccessBlockConfiguration"]
    assert blocks == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    ownership = aws.s3.get_bucket_ownership_controls(Bucket=ARTIFACTS)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    # ... encrypted by default, versioned, and refusing requests without TLS
    (rule,) = aws.s3.get_bucket_encryption(Bucket=ARTIFACTS)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert aws.s3.get_bucket_versioning(Bucket=ARTIFACTS)["Status"] == "Enabled"
    (statement,) = json.loads(aws.s3.get_bucket_policy(Bucket=ARTIFACTS)["Policy"])["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Condition"]) == (
        "Deny",
        "s3:*",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
    assert set(statement["Resource"]) == {f"arn:aws:s3:::{ARTIFACTS}", f"arn:aws:s3:::{ARTIFACTS}/*"}
    # and the bundle the stack points at is in it
    key = aws.parameters(ELB_STACK)["ServerBundleS3Uri"].removeprefix(f"s3://{ARTIFACTS}/")
    assert aws.s3.head_object(Bucket=ARTIFACTS, Key=key)["ContentLength"] > 0


def test_elb_dry_run_without_the_artifact_bucket_creates_nothing(aws, scripts, capsys):
    aws.upload(1)
    aws.s3.delete_bucket(Bucket=ARTIFACTS)
    assert scripts["elb"].main(["--environment", "local", "--dry-run"]) == 0
    assert f"would create bucket {ARTIFACTS}" in capsys.readouterr().out
    assert ARTIFACTS not in {b["Name"] for b in aws.s3.list_buckets()["Buckets"]}
    assert ELB_STACK not in aws.stack_names()


def test_elb_script_uses_an_existing_artifact_bucket_as_it_is(aws, scripts):
    # Given an artifact bucket someone made already (the fixture's, with no policy)
    aws.upload(1)
    assert scripts["elb"].main(["--environment", "local"]) == 0
    # Then aurelius did not reconfigure it
    with pytest.raises(aws.s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        aws.s3.get_bucket_policy(Bucket=ARTIFACTS)


# --- the CloudFormation service role and the network (issue 10) ---------------------------------


def _service_stack_role(aws) -> str | None:
    return aws.stack().get("RoleARN")


def test_service_script_deploys_with_the_trigger_stacks_role_found_by_name(aws, scripts, capsys):
    # Given the trigger stack's CloudFormation service role, named by the convention
    role = boto3.client("iam").create_role(RoleName="aurelius-cfn-role-local-demo", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    # When a person deploys the service
    assert scripts["service"].main(["--environment", "local"]) == 0
    # Then CloudFormation acts with that role from the first deploy on (a wrong role fails now, not at night)
    assert _service_stack_role(aws) == role
    assert "note:" not in capsys.readouterr().out


def test_service_script_role_arn_option_overrides_the_lookup(aws, scripts):
    # Given a role of another name
    role = boto3.client("iam").create_role(RoleName="my-deploy-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    # When it is named with --role-arn
    assert scripts["service"].main(["--environment", "local", "--role-arn", role]) == 0
    # Then the stack is deployed with it
    assert _service_stack_role(aws) == role


def test_service_script_without_a_role_deploys_with_the_callers_credentials_and_says_so(aws, scripts, capsys):
    # Given no trigger stack yet (no role by the convention's name)
    aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    # When the service is deployed
    assert scripts["service"].main(["--environment", "local"]) == 0
    # Then no role is passed, and the person is told why and how to pass one
    assert _service_stack_role(aws) is None
    out = capsys.readouterr().out
    assert "aurelius-cfn-role-local-demo does not exist" in out and "--role-arn" in out


def test_service_script_refuses_a_malformed_role_arn_with_exit_2_and_creates_nothing(aws, scripts, capsys):
    aws.upload(1)
    assert scripts["service"].main(["--environment", "local", "--role-arn", "aurelius-cfn-role"]) == 2
    assert "is not an IAM role ARN" in capsys.readouterr().err
    assert SERVICE_STACK not in aws.stack_names()


def test_service_script_sends_task_and_load_balancer_subnets_scheme_and_role_names(aws, scripts):
    # Given the local environment (default VPC: the same subnets serve both)
    aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    # When the service is deployed
    assert scripts["service"].main(["--environment", "local"]) == 0
    params = aws.parameters()
    # Then the template gets both subnet lists, the scheme and the convention's role names
    assert params["TaskSubnetIds"] and params["TaskSubnetIds"] == params["LoadBalancerSubnetIds"]
    assert params["LoadBalancerScheme"] == "internet-facing"
    assert (params["TaskRoleName"], params["TaskExecutionRoleName"]) == (
        "aurelius-task-role-local-demo",
        "aurelius-exec-role-local-demo",
    )
    assert "aurelius-task-role-local-demo" in {r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]}


# --- safe rollout: what the service script sends (moto ignores the deployment configuration) ---


def test_service_script_sends_smoke_test_canary_alarms_and_deadline_and_the_redeployer_keeps_them(aws, scripts):
    from aurelius.core.decision import Action
    from aurelius.core.reconcile import Target, reconcile

    # Given settings with a smoke test and a canary rollout (local, so moto can deploy it)
    settings = (
        scripts["service"]
        .SETTINGS.read_text()
        .replace(
            "      instances: [[1.0, 2.0], [3.0, 4.0]]\n",
            "      instances: [[1.0, 2.0], [3.0, 4.0]]\n      expected: [2.5, 5.5]\n      tolerance: 0.001\n"
            "    rollout: {strategy: canary, canary_percent: 20, canary_bake_minutes: 2, bake_minutes: 3, deadline_seconds: 1200}\n",
            1,
        )
    )
    version = aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    # When the service stack is created
    assert scripts["service"].main(["--environment", "local", "--settings", str(aws_tmp_settings(settings))]) == 0
    # Then the stack carries the settings as parameters (the change set's parameters) ...
    params = aws.parameters()
    assert json.loads(params["SmokeTestInstances"]) == [[1, 2], [3, 4]]
    assert json.loads(params["SmokeTestExpected"]) == [2.5, 5.5] and params["SmokeTestTolerance"] == "0.001"
    assert (
        params["RolloutStrategy"],
        params["CanaryPercent"],
        params["CanaryBakeTimeInMinutes"],
        params["BakeTimeInMinutes"],
    ) == ("canary", "20", "2", "3")
    assert params["RolloutDeadlineSeconds"] == "1200"
    assert params["ErrorRateAlarmName"] == "aurelius-alarm-errors-local-demo"
    assert params["AlternateTargetGroupName"] == "aurelius-tg-alt-local-demo"
    # ... the task gets the smoke test and its service name (the revision CreateStack made) ...
    task = aws.ecs.describe_task_definition(taskDefinition=aws.task_definition_resource())["taskDefinition"]
    env = {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]}
    assert env["SMOKE_TEST_INSTANCES"] == "[[1,2],[3,4]]" and env["SMOKE_TEST_EXPECTED"] == "[2.5,5.5]"
    assert env["SERVICE_NAME"] == "aurelius-svc-local-demo"
    # ... and the four deployment alarms exist by their names
    alarms = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == [
        "aurelius-alarm-5xx-local-demo",
        "aurelius-alarm-errors-local-demo",
        "aurelius-alarm-startup-local-demo",
        "aurelius-alarm-unhealthy-local-demo",
    ]

    # When the redeployer moves the model (UpdateStack, UsePreviousTemplate)
    newer = aws.upload(2)
    outcome = reconcile(Target(SERVICE_STACK, BUCKET, KEY), s3=aws.s3, cfn=aws.cfn)
    # Then only the model moved: every rollout parameter kept its value
    assert outcome.action is Action.STARTED and newer != version
    after = aws.parameters()
    assert after["ModelVersionId"] == newer
    assert {k: v for k, v in after.items() if not k.startswith("Model")} == {
        k: v for k, v in params.items() if not k.startswith("Model")
    }


def test_service_script_without_smoke_test_sends_empty_values_and_the_task_has_no_smoke_variables(aws, scripts):
    # Given settings whose local environment has no smoke test
    settings = (
        scripts["service"]
        .SETTINGS.read_text()
        .replace("    smoke_test:\n      instances: [[1.0, 2.0], [3.0, 4.0]]\n", "", 1)
    )
    aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    # When the service stack is created
    assert scripts["service"].main(["--environment", "local", "--settings", str(aws_tmp_settings(settings))]) == 0
    # Then the parameters are empty and the container has no SMOKE_TEST_* variable at all
    params = aws.parameters()
    assert (params["SmokeTestInstances"], params["SmokeTestExpected"], params["SmokeTestTolerance"]) == ("", "", "")
    assert params["RolloutStrategy"] == "rolling"
    task = aws.ecs.describe_task_definition(taskDefinition=aws.task_definition_resource())["taskDefinition"]
    names = {e["name"] for e in task["containerDefinitions"][0]["environment"]}
    assert not any(name.startswith("SMOKE_TEST_") for name in names)
    assert {"MODEL_S3_URI", "MODEL_VERSION_ID", "SERVICE_NAME"} <= names


def _signed_local_settings(scripts, directory) -> tuple[str, str]:
    """The shipped local settings with signing required by a key file next to the copy."""
    pem = public_key_pem().encode()
    (directory / "release.pub").write_bytes(pem)
    text = (
        scripts["service"]
        .SETTINGS.read_text()
        .replace(
            "    tags: {project: aurelius, owner: ml-platform}\n",
            "    signing: {required: true, trust: {mode: key, public_keys: [release.pub]}}\n"
            "    model: {bucket: aurelius-models-local-demo, key: models/model.pkl, pickle_scan: warn}\n"
            "    tags: {project: aurelius, owner: ml-platform}\n",
            1,
        )
    )
    text = text.replace("    model:\n      bucket: aurelius-models-local-demo\n      key: models/model.pkl\n", "", 1)
    return text, pem.decode()


def test_service_script_sends_signing_and_model_loading_settings_to_the_task(aws, scripts, tmp_path):
    # Given local settings that require signatures from a key file next to them, and a warn scan
    text, pem = _signed_local_settings(scripts, tmp_path)
    path = tmp_path / "service-settings.yml"
    path.write_text(text)
    aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)

    # When the service stack is created
    assert scripts["service"].main(["--environment", "local", "--settings", str(path)]) == 0

    # Then the stack carries them as parameters (the redeployer reads SigningRequired there) ...
    params = aws.parameters()
    trust = json.dumps({"mode": "key", "public_keys": [pem]}, separators=(",", ":"))
    assert (params["SigningRequired"], params["SigningTrust"]) == ("true", trust)
    assert (params["ModelFormat"], params["PickleScan"], params["SkopsTrustedTypes"]) == ("auto", "warn", "")
    # ... and the task gets the server's MODEL_* variables (no MODEL_SKOPS_TRUSTED_TYPES: none set)
    task = aws.ecs.describe_task_definition(taskDefinition=aws.task_definition_resource())["taskDefinition"]
    env = {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]}
    assert env["MODEL_SIGNING_TRUST"] == trust and env["MODEL_SIGNING_REQUIRED"] == "true"
    assert (env["MODEL_FORMAT"], env["MODEL_PICKLE_SCAN"]) == ("auto", "warn")
    assert "MODEL_SKOPS_TRUSTED_TYPES" not in env


@pytest.mark.parametrize("which", ["service", "elb"])
def test_a_missing_trust_file_exits_2_before_any_aws_call(tmp_path, monkeypatch, capsys, scripts, which):
    # Given the shipped prod settings, whose release key file the operator has not put in place
    # (copied, so the key path resolves next to the copy, where there is none)
    path = tmp_path / "service-settings.yml"
    path.write_text(scripts[which].SETTINGS.read_text())

    def no_aws(*args, **kwargs):
        raise AssertionError("an AWS call was attempted with an unreadable trust file")

    monkeypatch.setattr(boto3.session.Session, "client", no_aws)
    # When prod is deployed / Then exit 2 naming the file, the key and the missing file
    assert scripts[which].main(["--environment", "prod", "--settings", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "environments.prod.signing.trust.public_keys.0" in err
    assert "signing/prod-model-signing.pub" in err


def test_service_script_role_lookup_denied_is_a_note_not_a_failure(scripts, capsys):
    # moto cannot refuse iam:GetRole: a botocore Stubber stands in and answers AccessDenied.
    import argparse

    from aurelius.scripts.management import ScriptContext
    from aurelius.settings import ServiceSettings, load_environment
    from tests.stubs import stubbed

    iam = boto3.client("iam")
    env = load_environment(scripts["service"].SETTINGS, ServiceSettings, "local")
    ctx = ScriptContext(env, session=None, args=argparse.Namespace(role_arn=None))
    ctx.client = lambda service: iam  # type: ignore[method-assign]
    # When the deploy looks the role up without the right to read it
    with stubbed(iam) as stub:
        stub.add_client_error(
            "get_role", "AccessDenied", "not allowed", expected_params={"RoleName": "aurelius-cfn-role-local-demo"}
        )
        role = scripts["service"].service_role_arn(ctx)
    # Then it deploys without a role and says why and what to do
    assert role is None
    out = capsys.readouterr().out
    assert "could not be read (AccessDenied)" in out and "--role-arn" in out
