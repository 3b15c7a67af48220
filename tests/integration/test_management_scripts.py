"""The three management scripts against moto: create, update, dry run, outputs, bad settings."""

from __future__ import annotations

import boto3
import pytest

from tests.integration.conftest import ARTIFACTS, BUCKET, KEY, SERVICE_STACK

CLUSTER_STACK = "aurelius-cluster-stack-local-demo"
ELB_STACK = "aurelius-elb-stack-local-vm"


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
    settings = scripts["cluster"].SETTINGS.read_text().replace("capacity: {min: 1, max: 4, desired: 2}", "capacity: {min: 1, max: 5, desired: 3}", 1)
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
    aws.ecs.create_cluster(clusterName="aurelius-cluster-local-demo")
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
    settings = scripts["service"].SETTINGS.read_text().replace("aurelius/model-server:0.1.0", "aurelius/model-server:0.2.0", 1)
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
    aws.ecs.create_cluster(clusterName="aurelius-cluster-local-demo")
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
    # moto echoes List<Subnet::Id> parameters back in another form (moto.md), so it may see a
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
    import io, tarfile

    bundle = scripts["elb"].server_bundle()
    names = set(tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz").getnames())
    assert {"install-server.sh", "aurelius-model-server.service", "server/requirements.txt", "server/aurelius_server/__main__.py"} <= names
    # The same sources give the same bundle: an unchanged server replaces no instance.
    assert scripts["elb"].server_bundle() == scripts["elb"].server_bundle()


def test_elb_script_updates_its_stack_and_keeps_the_model_version(aws, scripts):
    # Given the elb stack serving version 1, and a newer upload
    v1 = aws.upload(1)
    assert scripts["elb"].main(["--environment", "local"]) == 0
    aws.upload(2)
    # When a person changes the capacity and redeploys
    settings = scripts["elb"].SETTINGS.read_text().replace("capacity: {min: 1, max: 3, desired: 2}", "capacity: {min: 1, max: 4, desired: 3}", 1)
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
