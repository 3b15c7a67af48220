"""Issue 18.2: what doctor must check the CloudFormation service role for is allowed by the role
the trigger stack grants, for a rolling (dev) and a canary (prod) environment, evaluated offline
with tests/iam_policy.py; and what a wrong check would refuse on a correct deploy."""

from __future__ import annotations

import pytest
from cfnlint.decode import cfn_yaml

from aurelius.infra_checks import pass_role_targets, service_role_update_needs
from aurelius.sandbox.triggers import samconfig_deploy_parameters
from tests.helpers import REPO
from tests.iam_policy import PSEUDO, Request, Resolver, allowed

ROLE_NAME_TYPES = {"TaskRole": "task-role", "TaskExecutionRole": "exec-role", "LoadBalancerRole": "ecs-lb-role"}
REGION, ACCOUNT = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]


def environment(name: str):
    _, p = samconfig_deploy_parameters(name)
    role = cfn_yaml.load(str(REPO / "template.yaml"))["Resources"]["CloudFormationServiceRole"]["Properties"]
    policies = [Resolver(p)(doc["PolicyDocument"]) for doc in role["Policies"]]

    def named(kind: str) -> str:
        return f"{p['BaseName']}-{kind}-{p['EnvironmentName']}-{p['NameSuffix']}"

    return p, policies, named


def needs_of(p, named):
    template = cfn_yaml.load(str(REPO / "infra/ecs-service/template.yaml"))
    passed = {
        f"arn:aws:iam::{ACCOUNT}:role/{named(ROLE_NAME_TYPES[logical_id])}": service
        for logical_id, service in pass_role_targets(template).items()
    }
    return service_role_update_needs("aws", REGION, ACCOUNT, p["ClusterName"], named("svc"), named("task"), passed)


@pytest.mark.parametrize("name", ["dev", "prod"])  # dev rolls, prod is a canary
def test_every_service_role_need_is_granted(name):
    # Given the environment's service role and what a model update needs of it
    p, policies, named = environment(name)
    needs = needs_of(p, named)
    # Then every action is allowed on its ARN with its context
    refused = [
        f"{action} on {need.resource} {dict(need.context)}"
        for need in needs
        for action in need.actions
        if not allowed(policies, Request(action, need.resource, need.context))
    ]
    assert refused == []
    assert any("ecs:StopServiceDeployment" in need.actions for need in needs)


def test_checks_on_the_wrong_arn_or_service_would_fail_a_correct_deploy():
    # Given prod's correct service role
    p, policies, named = environment("prod")
    # Then RegisterTaskDefinition on "*" is refused (the role is scoped to its family) ...
    assert not allowed(policies, Request("ecs:RegisterTaskDefinition", "*"))
    # ... and the canary's load balancer role may not be passed to ECS tasks: a doctor that
    # checks either way reports a failure on a correct deploy
    lb_role = f"arn:aws:iam::{ACCOUNT}:role/{named('ecs-lb-role')}"
    assert not allowed(policies, Request("iam:PassRole", lb_role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}))
