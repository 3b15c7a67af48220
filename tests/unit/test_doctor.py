"""aurelius doctor's checks, one by one, on what moto cannot produce.

moto never associates a foreign role with a stack, never denies an IAM simulation (it does not
implement iam:SimulatePrincipalPolicy) and never refuses a call for lack of permission, so these
tests give the checks botocore Stubbers (asserting what is sent) or small fake clients.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from aurelius import cli
from aurelius.doctor import chain, links, report
from aurelius.doctor import iam as doctor_iam
from aurelius.doctor.check import ERROR, FAIL, NOT_CHECKABLE, OK, SKIPPED, Check
from aurelius.doctor.iam import Need
from tests.helpers import REPO
from tests.stubs import stubbed

ROLE = "arn:aws:iam::123456789012:role/aurelius-cfn-role-prod-ml"
OTHER_ROLE = "arn:aws:iam::123456789012:role/someone-admin"
FUNCTION_ROLE = "arn:aws:iam::123456789012:role/aurelius-trigger-stack-prod-ml-RedeployServiceFunctionRole-ABC"
MODEL_OBJECT = "arn:aws:s3:::aurelius-models-prod-ml/models/model.pkl"


def client(service: str):
    return boto3.client(service, region_name="us-east-1")


def access_denied(stubber: Stubber, method: str, code: str = "AccessDenied", status: int = 403) -> None:
    stubber.add_client_error(method, service_error_code=code, http_status_code=status)


# --- the service stack's associated role --------------------------------------------------------


def trigger_stack(role: str | None = ROLE) -> dict:
    outputs = [{"OutputKey": "CloudFormationServiceRoleArn", "OutputValue": role}] if role else []
    return {"StackName": "aurelius-trigger-stack-prod-ml", "Outputs": outputs}


def test_a_service_stack_bound_to_another_role_fails_with_the_deploy_command_that_rebinds_it():
    # Given a service stack CloudFormation already associates with another role
    service = {"StackName": "aurelius-service-stack-prod-ml", "RoleARN": OTHER_ROLE}
    # When the role link is checked
    check = links.check_service_stack_role(service, trigger_stack(), "prod")
    # Then it fails, names both roles, and the fix passes the trigger stack's role
    assert check.status == FAIL
    assert OTHER_ROLE in check.detail and ROLE in check.detail
    assert check.fix.endswith(f"deploy-service.py --environment prod --role-arn {ROLE}")


@pytest.mark.parametrize("associated", [None, ROLE])
def test_no_role_yet_or_the_trigger_stacks_role_is_right(associated):
    # Given a service stack with no role yet, or with the trigger stack's service role
    service = {"StackName": "aurelius-service-stack-prod-ml", **({"RoleARN": associated} if associated else {})}
    # Then the role link is fine
    assert links.check_service_stack_role(service, trigger_stack(), "prod").status == OK


def test_a_trigger_stack_without_the_service_role_output_fails():
    check = links.check_service_stack_role({"StackName": "s"}, trigger_stack(role=None), "prod")
    assert check.status == FAIL and "CloudFormationServiceRoleArn" in check.detail


# --- iam:SimulatePrincipalPolicy ------------------------------------------------------------------


def simulation(action: str, resource: str, decision: str) -> dict:
    return {
        "EvaluationResults": [{"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision}],
        "IsTruncated": False,
    }


def test_a_denied_simulation_fails_naming_the_action_and_the_exact_arn():
    # Given a role that may read the model but not pass the service role
    iam = client("iam")
    needs = [
        Need(("s3:GetObject",), MODEL_OBJECT),
        Need(("iam:PassRole",), ROLE, {"iam:PassedToService": "cloudformation.amazonaws.com"}),
    ]
    with stubbed(iam) as stub:
        stub.add_response(
            "simulate_principal_policy",
            simulation("s3:GetObject", MODEL_OBJECT, "allowed"),
            {"PolicySourceArn": FUNCTION_ROLE, "ActionNames": ["s3:GetObject"], "ResourceArns": [MODEL_OBJECT]},
        )
        # Then PassRole is simulated on the service role with the context the functions send
        stub.add_response(
            "simulate_principal_policy",
            simulation("iam:PassRole", ROLE, "implicitDeny"),
            {
                "PolicySourceArn": FUNCTION_ROLE,
                "ActionNames": ["iam:PassRole"],
                "ResourceArns": [ROLE],
                "ContextEntries": [
                    {
                        "ContextKeyName": "iam:PassedToService",
                        "ContextKeyValues": ["cloudformation.amazonaws.com"],
                        "ContextKeyType": "string",
                    }
                ],
            },
        )
        # When the role's permissions are checked
        check = doctor_iam.check_role_permissions(
            iam, "role of RedeployServiceFunction", FUNCTION_ROLE, needs, "sam deploy", simulated=False
        )
    # Then the check fails on exactly the denied action and resource
    assert check.status == FAIL
    assert f"iam:PassRole on {ROLE}: implicitDeny" in check.detail
    assert "s3:GetObject" not in check.detail


def test_every_simulated_action_allowed_is_ok():
    iam = client("iam")
    with stubbed(iam) as stub:
        stub.add_response("simulate_principal_policy", simulation("s3:ListBucket", "arn:aws:s3:::b", "allowed"))
        check = doctor_iam.check_role_permissions(
            iam, "r", FUNCTION_ROLE, [Need(("s3:ListBucket",), "arn:aws:s3:::b")], "fix", simulated=False
        )
    assert check.status == OK


def test_a_caller_that_may_not_simulate_is_skipped_with_a_note_never_passed():
    # Given a caller without iam:SimulatePrincipalPolicy
    iam = client("iam")
    with stubbed(iam) as stub:
        access_denied(stub, "simulate_principal_policy")
        check = doctor_iam.check_role_permissions(
            iam, "service role", ROLE, [Need(("ecs:UpdateService",), "*")], "fix", simulated=False
        )
    # Then the check is skipped and says why
    assert check.status == SKIPPED
    assert "iam:SimulatePrincipalPolicy" in check.detail


def test_on_a_simulator_the_policy_simulation_is_not_checkable_and_nothing_is_sent():
    # Given a simulator (moto does not implement the call): a client that fails the test if called
    iam = SimpleNamespace(simulate_principal_policy=lambda **kwargs: pytest.fail("simulated on a simulator"))
    check = doctor_iam.check_role_permissions(
        iam, "service role", ROLE, [Need(("ecs:UpdateService",), "*")], "fix", simulated=True
    )
    assert check.status == NOT_CHECKABLE


def registry_permissions(schema: str, *handlers: str) -> set[str]:
    """handlers.<handler>.permissions of a current registry schema (tests/data/cfn-schemas)."""
    document = json.loads((REPO / "tests/data/cfn-schemas" / f"{schema}.json").read_text())
    return {action for handler in handlers for action in document["handlers"][handler]["permissions"]}


def test_the_service_role_actions_doctor_simulates_are_those_cloudformation_publishes():
    # Given the current registry schemas of the two resources a model update changes
    service_update = registry_permissions("aws-ecs-service", "update")
    task_definition = registry_permissions("aws-ecs-taskdefinition", "create", "delete")
    # When doctor lists what it asks of the service role (a canary: both kinds of passed roles)
    passed = {ROLE: "ecs-tasks.amazonaws.com", OTHER_ROLE: "ecs.amazonaws.com"}
    needs = doctor_iam.service_role_needs(doctor_iam.Arns("aws", "us-east-1", "123456789012"), "c", "s", "f", passed)
    asked = {action for need in needs for action in need.actions}
    # Then it asks only for actions CloudFormation really uses, and every ecs action of the
    # service's update handler, StopServiceDeployment (how a rollback stops a deployment) included
    assert asked <= service_update | task_definition
    assert {a for a in service_update if a.startswith("ecs:")} <= asked
    assert "ecs:StopServiceDeployment" in asked


def test_the_roles_are_asked_about_exact_arns_with_the_context_their_calls_carry():
    arns = doctor_iam.Arns("aws", "us-east-1", "123456789012")
    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/aurelius-service-stack-prod-ml/abc"
    topic = "arn:aws:sns:us-east-1:123456789012:aurelius-topic"
    # Given what the functions call (aurelius.core.reconcile) and what a model update makes CloudFormation do
    functions = {n.resource: n for n in doctor_iam.function_needs(arns, "b", "models/model.pkl", stack, ROLE, topic)}
    task_role = "arn:aws:iam::123456789012:role/aurelius-task-role-prod-ml"
    lb_role = "arn:aws:iam::123456789012:role/aurelius-ecs-lb-role-prod-ml"
    passed = {task_role: "ecs-tasks.amazonaws.com", lb_role: "ecs.amazonaws.com"}
    service = doctor_iam.service_role_needs(
        arns, "aurelius-cluster-prod-ml", "aurelius-svc-prod-ml", "aurelius-task-prod-ml", passed
    )
    # Then each action is asked on the ARN it acts on
    assert functions["arn:aws:s3:::b/models/model.pkl"].actions == ("s3:GetObject", "s3:GetObjectVersion")
    assert functions["arn:aws:s3:::b"].actions == ("s3:ListBucket",)
    assert "cloudformation:CancelUpdateStack" in functions[stack].actions
    assert functions[ROLE].context == {"iam:PassedToService": "cloudformation.amazonaws.com"}
    assert functions[topic].actions == ("sns:Publish",)
    service_arn = "arn:aws:ecs:us-east-1:123456789012:service/aurelius-cluster-prod-ml/aurelius-svc-prod-ml"
    on = {(n.resource, action): n.context for n in service for action in n.actions}
    assert (service_arn, "ecs:UpdateService") in on
    # RegisterTaskDefinition on the family's revision ARN: a family-scoped role refuses it on "*"
    assert (
        "arn:aws:ecs:us-east-1:123456789012:task-definition/aurelius-task-prod-ml:1",
        "ecs:RegisterTaskDefinition",
    ) in on
    # StopServiceDeployment on a deployment of the service (the API takes a service-deployment ARN)
    assert any(
        resource.startswith(
            "arn:aws:ecs:us-east-1:123456789012:service-deployment/aurelius-cluster-prod-ml/aurelius-svc-prod-ml/"
        )
        for resource, action in on
        if action == "ecs:StopServiceDeployment"
    )
    # each role is passed to the service that uses it: the canary's load balancer role to ECS itself
    assert on[(task_role, "iam:PassRole")] == {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    assert on[(lb_role, "iam:PassRole")] == {"iam:PassedToService": "ecs.amazonaws.com"}


# --- access denied and other refusals on a check ------------------------------------------------------


def test_access_denied_on_the_cluster_check_is_an_error_naming_the_action():
    ecs = client("ecs")
    with stubbed(ecs) as stub:
        access_denied(stub, "describe_clusters", "AccessDeniedException", 400)
        (check,) = links.check_cluster(ecs, "aurelius-cluster-prod-ml", "prod", simulated=False)
    assert check.status == ERROR
    assert "ecs:DescribeClusters" in check.detail and "access denied" in check.detail


def test_a_bucket_answering_403_is_an_error_not_a_missing_bucket():
    s3 = client("s3")
    with stubbed(s3) as stub:
        access_denied(stub, "head_bucket", "403")
        check, exists = links.check_bucket(s3, "aurelius-models-prod-ml", True, "prod")
    assert (check.status, exists) == (ERROR, False)
    assert "access denied" in check.detail


def test_a_model_object_answering_403_says_listbucket_may_be_missing():
    # Without s3:ListBucket a missing key answers 403 (S3 HeadObject API reference)
    s3 = client("s3")
    with stubbed(s3) as stub:
        access_denied(stub, "head_object", "403")
        check = links.check_model_object(s3, "aurelius-models-prod-ml", "models/model.pkl")
    assert check.status == ERROR and "s3:ListBucket" in check.detail


def test_a_cluster_without_capacity_providers_fails_on_aws_and_is_not_checkable_on_a_simulator():
    ecs_answer = {"clusters": [{"clusterName": "c", "status": "ACTIVE", "capacityProviders": []}], "failures": []}
    for simulated, expected in ((False, FAIL), (True, NOT_CHECKABLE)):
        ecs = client("ecs")
        with stubbed(ecs) as stub:
            stub.add_response("describe_clusters", ecs_answer, {"clusters": ["c"]})
            cluster, capacity = links.check_cluster(ecs, "c", "prod", simulated=simulated)
        assert cluster.status == OK and capacity.status == expected
        if expected == FAIL:
            assert "create-cluster.py --environment prod" in capacity.fix


def test_versioning_off_fails_with_the_command_that_turns_it_on():
    s3 = client("s3")
    with stubbed(s3) as stub:
        stub.add_response("get_bucket_versioning", {"Status": "Suspended"}, {"Bucket": "b"})
        check = links.check_versioning(s3, "b")
    assert check.status == FAIL and "put-bucket-versioning --bucket b" in check.fix


def test_an_existing_bucket_without_eventbridge_notifications_fails():
    s3 = client("s3")
    with stubbed(s3) as stub:
        stub.add_response("get_bucket_notification_configuration", {}, {"Bucket": "b"})
        check = links.check_notifications(s3, "b", creates_bucket=False, redeploy_arns=[], environment="prod")
    assert check.status == FAIL and "EventBridge" in check.detail


# --- image -----------------------------------------------------------------------------------------------

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/aurelius-ecr-prod-ml:0.1.0"


def test_an_ecr_image_is_looked_up_in_its_own_region_and_repository():
    ecr = boto3.client("ecr", region_name="eu-west-1")
    regions = []

    def ecr_for(region):
        regions.append(region)
        return ecr

    with stubbed(ecr) as stub:
        stub.add_client_error(
            "describe_images",
            service_error_code="ImageNotFoundException",
            http_status_code=400,
            expected_params={
                "registryId": "123456789012",
                "repositoryName": "aurelius-ecr-prod-ml",
                "imageIds": [{"imageTag": "0.1.0"}],
            },
        )
        check = links.check_image(ecr_for, IMAGE, "prod")
    assert regions == ["eu-west-1"]
    assert check.status == FAIL and "create-image-repository.py --environment prod" in check.fix


def test_a_missing_repository_points_at_the_repository_script():
    ecr = client("ecr")
    with stubbed(ecr) as stub:
        stub.add_client_error("describe_images", service_error_code="RepositoryNotFoundException", http_status_code=400)
        check = links.check_image(lambda region: ecr, IMAGE, "prod")
    assert check.status == FAIL and "repository aurelius-ecr-prod-ml does not exist" in check.detail


def test_an_image_outside_ecr_is_skipped_not_passed():
    check = links.check_image(
        lambda region: pytest.fail("ECR asked"), "public.example/aurelius/model-server:0.1.0", "prod"
    )
    assert check.status == SKIPPED


# --- trigger functions ---------------------------------------------------------------------------------------


class FakeTriggerClients:
    """describe_stack_resources + get_function_configuration, enough for check_trigger_functions."""

    def __init__(self, variables: dict[str, str]):
        self.variables = variables

    def describe_stack_resources(self, StackName):
        return {
            "StackResources": [
                {"ResourceType": "AWS::Lambda::Function", "PhysicalResourceId": "fn-1", "LogicalResourceId": "F"}
            ]
        }

    def get_function_configuration(self, FunctionName):
        return {
            "FunctionName": FunctionName,
            "FunctionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{FunctionName}",
            "Role": FUNCTION_ROLE,
            "Environment": {"Variables": self.variables},
        }


def test_functions_pointing_at_another_service_stack_fail_naming_the_variable():
    expected = {"SERVICE_STACK_NAME": "aurelius-service-stack-prod-ml", "MODEL_BUCKET": "b", "MODEL_KEY": "k"}
    fake = FakeTriggerClients({**expected, "SERVICE_STACK_NAME": "aurelius-service-stack-dev-ml"})
    check, functions = links.check_trigger_functions(fake, fake, "t", expected, "sam deploy --config-env prod")
    assert check.status == FAIL
    assert "SERVICE_STACK_NAME='aurelius-service-stack-dev-ml'" in check.detail
    assert len(functions) == 1


def test_generated_function_names_are_shortened_to_the_logical_id():
    name = "aurelius-trigger-stack-prod-ml-RedeployServiceFunction-0DUBC552JQRE"
    assert chain.short_function_name(name, "aurelius-trigger-stack-prod-ml") == "RedeployServiceFunction"
    assert chain.short_function_name("custom", "aurelius-trigger-stack-prod-ml") == "custom"


# --- the whole report --------------------------------------------------------------------------------------


def env():
    return SimpleNamespace(name="prod", stack_name="aurelius-service-stack-prod-ml")


def test_not_checkable_and_skipped_checks_pass_but_are_counted_apart(capsys):
    checks = [Check("a", OK, "fine"), Check("b", NOT_CHECKABLE, "moto"), Check("c", SKIPPED, "n/a")]
    assert report.report(env(), checks, as_json=False) is True
    out = capsys.readouterr().out
    assert "1 not checkable here" in out and "not checkable here  moto" in out


def test_json_report_is_one_object_per_check_and_fails_on_a_problem(capsys):
    checks = [
        Check("a", OK, "fine"),
        Check("b", ERROR, "access denied", "run as ..."),
        Check("c", FAIL, "missing", "create it"),
    ]
    assert report.report(env(), checks, as_json=True) is False
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["checks"][1] == {"name": "b", "status": "error", "detail": "access denied", "fix": "run as ..."}


def test_text_report_names_the_first_problem_and_its_fix(capsys):
    checks = [
        Check("cluster", FAIL, "no cluster", "create-cluster.py"),
        Check("trigger stack", FAIL, "no stack", "sam deploy"),
    ]
    assert report.report(env(), checks, as_json=False) is False
    out = capsys.readouterr().out
    assert "start with the first missing link: cluster" in out
    assert "cluster: fail: no cluster\n  fix: create-cluster.py" in out


# --- arguments ----------------------------------------------------------------------------------------------


def test_bad_arguments_and_unknown_environments_exit_2_before_any_aws_call(monkeypatch, capsys):
    monkeypatch.setattr(boto3.session, "Session", lambda *a, **k: pytest.fail("AWS reached"))
    assert cli.main(["doctor"]) == 2
    assert cli.main(["doctor", "--environment", "staging"]) == 2
    assert "unknown environment" in capsys.readouterr().err


def test_no_credentials_stop_at_the_first_link():
    sts = client("sts")
    with stubbed(sts) as stub:
        access_denied(stub, "get_caller_identity")
        check, identity = links.check_credentials(sts, "us-east-1")
    assert identity is None and check.status == ERROR
    check, identity = links.check_credentials(sts, None)
    assert check.status == FAIL and "region" in check.detail
