"""Doctor's links around the service on what moto cannot produce: a deployment alarm in ALARM
(moto's CloudFormation creates no alarm and its ECS keeps no deployment configuration), a
missing service-linked role and an IAM simulation (moto does not implement
iam:SimulatePrincipalPolicy). Each test queues what AWS answers in a botocore Stubber, which
also asserts what doctor sends; every queued answer must be used."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest

from aurelius.doctor import report
from aurelius.doctor.check import ERROR, FAIL, NOT_CHECKABLE, OK, SKIPPED, WARNING, Check
from aurelius.doctor.iam import Arns
from aurelius.doctor.infra import check_deployment_alarms, check_service_linked_role, task_subnet_ids
from aurelius.infra_checks import ECS_SCALING_SERVICE, ELB_SERVICE
from tests.stubs import ACCOUNT, REGION, stubbed

ALARMS = ["aurelius-alarm-startup-prod-ml", "aurelius-alarm-errors-prod-ml"]
SERVICE = {
    "serviceName": "aurelius-svc-prod-ml",
    "deploymentConfiguration": {"alarms": {"alarmNames": ALARMS, "enable": True, "rollback": True}},
}
ROLE = f"arn:aws:iam::{ACCOUNT}:role/aurelius-cfn-role-prod-ml"
ARNS = Arns("aws", REGION, ACCOUNT)
DESCRIBE_ALARMS = {"AlarmNames": ALARMS, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}


def client(service: str):
    return boto3.client(service, region_name=REGION)


def alarm(name: str, state: str) -> dict:
    return {"AlarmName": name, "StateValue": state}


# --- deployment alarms -------------------------------------------------------------------------------


def test_a_deployment_alarm_already_in_alarm_is_a_warning_naming_it():
    # Given one of the service's deployment alarms already in ALARM
    cloudwatch = client("cloudwatch")
    with stubbed(cloudwatch) as stub:
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [alarm(ALARMS[0], "OK"), alarm(ALARMS[1], "ALARM")], "CompositeAlarms": []},
            DESCRIBE_ALARMS,
        )
        # When doctor checks the alarms
        check = check_deployment_alarms(cloudwatch, SERVICE, simulated=False, environment="prod")
    # Then it warns, names the alarm and says it will not protect the next rollout
    assert check.status == WARNING
    assert ALARMS[1] in check.detail and ALARMS[0] not in check.detail
    assert "will not protect the next rollout" in check.detail


def test_deployment_alarms_all_ok_pass():
    cloudwatch = client("cloudwatch")
    with stubbed(cloudwatch) as stub:
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [alarm(ALARMS[0], "OK"), alarm(ALARMS[1], "INSUFFICIENT_DATA")]},
            DESCRIBE_ALARMS,
        )
        check = check_deployment_alarms(cloudwatch, SERVICE, simulated=False, environment="prod")
    assert check.status == OK and "2 alarms" in check.detail


def test_a_deployment_alarm_that_does_not_exist_fails_with_the_deploy_command():
    cloudwatch = client("cloudwatch")
    with stubbed(cloudwatch) as stub:
        stub.add_response("describe_alarms", {"MetricAlarms": [alarm(ALARMS[0], "OK")]}, DESCRIBE_ALARMS)
        check = check_deployment_alarms(cloudwatch, SERVICE, simulated=False, environment="prod")
    assert check.status == FAIL and ALARMS[1] in check.detail
    assert check.fix.endswith("deploy-service.py --environment prod")


def test_a_service_without_deployment_alarms_fails_on_aws_and_is_not_checkable_on_a_simulator():
    # Given a service whose description has no deployment alarms (what moto answers for every service)
    bare = {"serviceName": "aurelius-svc-prod-ml", "deploymentConfiguration": {}}
    untouched = SimpleNamespace(get_paginator=lambda name: pytest.fail("CloudWatch asked"))
    # Then on AWS it fails (the template always sets them), on a simulator it is not checkable
    assert check_deployment_alarms(untouched, bare, simulated=False, environment="prod").status == FAIL
    assert check_deployment_alarms(untouched, bare, simulated=True, environment="prod").status == NOT_CHECKABLE


def test_warnings_are_shown_with_their_fix_and_do_not_fail_doctor(capsys):
    env = SimpleNamespace(name="prod", stack_name="aurelius-service-stack-prod-ml")
    checks = [Check("a", OK, "fine"), Check("deployment alarms", WARNING, "already in ALARM: x", "look at x")]
    assert report.report(env, checks, as_json=False) is True
    out = capsys.readouterr().out
    assert "deployment alarms: warning: already in ALARM: x\n  fix: look at x" in out
    assert "all checks passed (1 warning above)" in out


# --- service-linked roles ----------------------------------------------------------------------------


def simulated(decision: str, service: str) -> dict:
    return {
        "EvaluationResults": [
            {
                "EvalActionName": "iam:CreateServiceLinkedRole",
                "EvalResourceName": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/x",
                "EvalDecision": decision,
            }
        ],
        "IsTruncated": False,
    }


def expected_simulation(service: str, role_name: str) -> dict:
    return {
        "PolicySourceArn": ROLE,
        "ActionNames": ["iam:CreateServiceLinkedRole"],
        "ResourceArns": [f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/{role_name}"],
        "ContextEntries": [
            {"ContextKeyName": "iam:AWSServiceName", "ContextKeyValues": [service], "ContextKeyType": "string"}
        ],
    }


def no_such_role(stub, role_name: str) -> None:
    stub.add_client_error(
        "get_role", service_error_code="NoSuchEntity", http_status_code=404, expected_params={"RoleName": role_name}
    )


@pytest.mark.parametrize(
    ("service", "role_name"),
    [
        (ELB_SERVICE, "AWSServiceRoleForElasticLoadBalancing"),
        (ECS_SCALING_SERVICE, "AWSServiceRoleForApplicationAutoScaling_ECSService"),
    ],
)
@pytest.mark.parametrize(("decision", "status"), [("allowed", OK), ("implicitDeny", FAIL)])
def test_a_missing_service_linked_role_passes_only_if_the_service_role_may_create_it(
    service, role_name, decision, status
):
    # Given an account without the service-linked role (a new account: no load balancer yet)
    iam = client("iam")
    with stubbed(iam) as stub:
        no_such_role(stub, role_name)
        # Then doctor simulates CreateServiceLinkedRole on the service role, with the service name
        stub.add_response(
            "simulate_principal_policy", simulated(decision, service), expected_simulation(service, role_name)
        )
        check = check_service_linked_role(iam, service, ROLE, ARNS, simulated=False, fix="sam deploy")
    # And the role passes when the first deploy can create it, fails with the command otherwise
    assert check.status == status
    if status == FAIL:
        assert f"create-service-linked-role --aws-service-name {service}" in check.fix


def test_an_existing_service_linked_role_passes_without_a_simulation():
    iam = client("iam")
    with stubbed(iam) as stub:
        stub.add_response(
            "get_role",
            {
                "Role": {
                    "Path": "/aws-service-role/elasticloadbalancing.amazonaws.com/",
                    "RoleName": "AWSServiceRoleForElasticLoadBalancing",
                    "RoleId": "AROAEXAMPLEEXAMPLE1",
                    "Arn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
                    "CreateDate": "2026-01-01T00:00:00Z",
                }
            },
            {"RoleName": "AWSServiceRoleForElasticLoadBalancing"},
        )
        check = check_service_linked_role(iam, ELB_SERVICE, ROLE, ARNS, simulated=False, fix="")
    assert check.status == OK and "exists" in check.detail


def test_a_missing_service_linked_role_on_a_simulator_or_without_simulate_rights_is_never_passed():
    # On a simulator: GetRole answers, the simulation is not asked
    iam = client("iam")
    with stubbed(iam) as stub:
        no_such_role(stub, "AWSServiceRoleForElasticLoadBalancing")
        check = check_service_linked_role(iam, ELB_SERVICE, ROLE, ARNS, simulated=True, fix="")
    assert check.status == NOT_CHECKABLE and "does not exist" in check.detail
    # A caller that may not simulate: skipped, saying so
    iam = client("iam")
    with stubbed(iam) as stub:
        no_such_role(stub, "AWSServiceRoleForElasticLoadBalancing")
        stub.add_client_error("simulate_principal_policy", service_error_code="AccessDenied", http_status_code=403)
        check = check_service_linked_role(iam, ELB_SERVICE, ROLE, ARNS, simulated=False, fix="")
    assert check.status == SKIPPED and "iam:SimulatePrincipalPolicy" in check.detail


def test_a_caller_that_may_not_read_the_role_gets_an_error_naming_iam_getrole():
    iam = client("iam")
    with stubbed(iam) as stub:
        stub.add_client_error("get_role", service_error_code="AccessDenied", http_status_code=403)
        check = check_service_linked_role(iam, ELB_SERVICE, ROLE, ARNS, simulated=False, fix="")
    assert check.status == ERROR and "iam:GetRole" in check.detail


# --- where the task subnets come from ------------------------------------------------------------------


def test_task_subnets_come_from_the_service_then_the_stack_then_the_settings():
    service = {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0a"]}}}
    # moto echoes a list parameter as a Python list's text after an update (docs/moto.md)
    stack = {"TaskSubnetIds": "['subnet-0b', 'subnet-0c']"}
    assert task_subnet_ids(service, stack, ["subnet-0d"]) == ["subnet-0a"]
    assert task_subnet_ids({"networkConfiguration": {}}, stack, ["subnet-0d"]) == ["subnet-0b", "subnet-0c"]
    assert task_subnet_ids(None, {"TaskSubnetIds": "subnet-0b,subnet-0c"}, None) == ["subnet-0b", "subnet-0c"]
    assert task_subnet_ids(None, {}, ["subnet-0d"]) == ["subnet-0d"]
    assert task_subnet_ids(None, {}, None) == []
