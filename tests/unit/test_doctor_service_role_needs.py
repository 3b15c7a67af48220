"""Issue 18.2: every permission doctor checks a role for (every ``Need``) is granted by the
policies the trigger stack's template gives that role, for a rolling (dev) and a canary (prod)
environment, evaluated offline with tests/iam_policy.py; so doctor passes on a correct deploy.

The needs are built by doctor's own code, from a service stack shaped as CloudFormation
describes it (the real infra/ecs-service/template.yaml as GetTemplate's body; the roles its
conditions create as DescribeStackResources lists them). Where AWS would run
iam:SimulatePrincipalPolicy, a fake IAM client evaluates the same request against the template's
policies: moto does not implement the simulation.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfnlint.decode import cfn_yaml

from aurelius.doctor import iam as doctor_iam
from aurelius.doctor.chain import _Chain
from aurelius.doctor.check import OK
from aurelius.infra_checks import ECS_SCALING_SERVICE, ELB_SERVICE, pass_role_targets
from aurelius.sandbox.triggers import samconfig_deploy_parameters
from aurelius.settings import ServiceSettings, load_environment
from tests.helpers import REPO
from tests.iam_policy import PSEUDO, Request, Resolver, allowed

REGION, ACCOUNT = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
ARNS = doctor_iam.Arns("aws", REGION, ACCOUNT)
SERVICE_TEMPLATE = REPO / "infra/ecs-service/template.yaml"
# The service template's role parameters and the name type each gets (deploy-service.py).
ROLE_NAME_TYPES = {"TaskRole": "task-role", "TaskExecutionRole": "exec-role", "LoadBalancerRole": "ecs-lb-role"}
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:aurelius-notifications"


class Account:
    """One environment as deployed from the repository's templates: the trigger stack's role
    policies, the service stack's template and roles, and the service settings."""

    def __init__(self, name: str):
        self.env = load_environment(
            REPO / "infra/ecs-service/management-scripts/service-settings.yml", ServiceSettings, name
        )
        _, self.parameters = samconfig_deploy_parameters(name)
        self.service_role = f"arn:aws:iam::{ACCOUNT}:role/{self.env.names['cfn-role']}"
        self.stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.env.stack_name}/0a1b2c3d"
        trigger = cfn_yaml.load(str(REPO / "template.yaml"))["Resources"]
        resolve = Resolver(
            self.parameters,
            {
                "CloudFormationServiceRole.Arn": self.service_role,
                "DeployNotificationsTopic": TOPIC,
                "NotificationsKey.Arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            },
        )
        self.policies = {
            self.service_role: [
                resolve(p["PolicyDocument"]) for p in trigger["CloudFormationServiceRole"]["Properties"]["Policies"]
            ],
            "function": [resolve(trigger["ReconcilePolicy"]["Properties"]["PolicyDocument"])],
        }

    @property
    def canary(self) -> bool:
        return self.env.settings.rollout.strategy == "canary"

    # cloudformation:GetTemplate and DescribeStackResources of the service stack
    def get_template(self, StackName: str) -> dict[str, Any]:
        assert StackName == self.env.stack_name
        return {"TemplateBody": SERVICE_TEMPLATE.read_text(encoding="utf-8")}

    def describe_stack_resources(self, StackName: str) -> dict[str, Any]:
        assert StackName == self.env.stack_name
        # The load balancer role exists under the IsCanary condition only.
        roles = [r for r in ROLE_NAME_TYPES if r != "LoadBalancerRole" or self.canary]
        return {
            "StackResources": [
                {
                    "LogicalResourceId": logical_id,
                    "PhysicalResourceId": self.env.names[ROLE_NAME_TYPES[logical_id]],
                    "ResourceType": "AWS::IAM::Role",
                }
                for logical_id in roles
            ]
        }


class PolicyEvaluatingIam:
    """iam:SimulatePrincipalPolicy answered by tests/iam_policy.py on the template's policies;
    iam:GetRole answers NoSuchEntity (a new account: no service-linked role yet)."""

    def __init__(self, policies: dict[str, list[dict]], function_role: str):
        self.policies = {**policies, function_role: policies["function"]}
        self.asked: list[Request] = []

    def simulate_principal_policy(self, PolicySourceArn, ActionNames, ResourceArns, ContextEntries=()):
        context = {e["ContextKeyName"]: e["ContextKeyValues"][0] for e in ContextEntries}
        results = []
        for action in ActionNames:
            for resource in ResourceArns:
                request = Request(action, resource, context)
                self.asked.append(request)
                decision = "allowed" if allowed(self.policies[PolicySourceArn], request) else "implicitDeny"
                results.append({"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision})
        return {"EvaluationResults": results, "IsTruncated": False}

    def get_role(self, RoleName):
        raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": RoleName}}, "GetRole")


def every_need(account: Account) -> dict[str, list[doctor_iam.Need]]:
    """Role -> what doctor checks it for, built by doctor's own functions."""
    env, settings = account.env, account.env.settings
    passed = doctor_iam.passed_roles(account, env.stack_name, ARNS)
    service_needs = doctor_iam.service_role_needs(
        ARNS, settings.cluster_name, env.names["svc"], env.names["task"], passed
    )
    linked = [ELB_SERVICE, *([ECS_SCALING_SERVICE] if settings.scaling else [])]
    function_needs = doctor_iam.function_needs(
        ARNS, settings.model.bucket, settings.model.key, account.stack_id, account.service_role, TOPIC
    )
    return {
        account.service_role: [*service_needs, *(doctor_iam.service_linked_role_need(ARNS, s) for s in linked)],
        "function": function_needs,
    }


@pytest.mark.parametrize("name", ["dev", "prod"])  # dev rolls, prod is a canary that scales
def test_every_permission_doctor_checks_is_granted_by_the_templates(name):
    # Given the environment as the templates deploy it, and everything doctor checks its roles for
    account = Account(name)
    needs = every_need(account)
    # Then every action is allowed on its ARN with its context, by the policies of that role
    refused = [
        f"{role}: {action} on {need.resource} {dict(need.context)}"
        for role, role_needs in needs.items()
        for need in role_needs
        for action in need.actions
        if not allowed(account.policies[role], Request(action, need.resource, need.context))
    ]
    assert refused == []
    asked = {action for need in needs[account.service_role] for action in need.actions}
    assert {"ecs:StopServiceDeployment", "iam:CreateServiceLinkedRole", "iam:PassRole"} <= asked


def test_doctor_passes_each_role_to_the_service_that_uses_it():
    # Given prod (canary) and dev (rolling) as deployed
    prod = doctor_iam.passed_roles(Account("prod"), "aurelius-service-stack-prod-ml", ARNS)
    dev = doctor_iam.passed_roles(Account("dev"), "aurelius-service-stack-dev-ml", ARNS)
    role = f"arn:aws:iam::{ACCOUNT}:role/aurelius-{{}}-{{}}-ml"
    # Then the task roles go to ECS tasks, and prod's load balancer role to the ECS service itself
    assert prod == {
        role.format("task-role", "prod"): "ecs-tasks.amazonaws.com",
        role.format("exec-role", "prod"): "ecs-tasks.amazonaws.com",
        role.format("ecs-lb-role", "prod"): "ecs.amazonaws.com",
    }
    assert dev == {
        role.format("task-role", "dev"): "ecs-tasks.amazonaws.com",
        role.format("exec-role", "dev"): "ecs-tasks.amazonaws.com",
    }
    # and the parser of GetTemplate's body reads the template as cfn-lint does
    template = cfn_yaml.load(str(SERVICE_TEMPLATE))
    assert pass_role_targets(template) == {
        "TaskRole": "ecs-tasks.amazonaws.com",
        "TaskExecutionRole": "ecs-tasks.amazonaws.com",
        "LoadBalancerRole": "ecs.amazonaws.com",
    }


def test_on_a_correct_prod_deploy_doctors_role_checks_pass():
    # Given prod deployed from the templates on a new account (no service-linked role yet), and
    # an IAM that simulates with the templates' policies
    account = Account("prod")
    function_role = f"arn:aws:iam::{ACCOUNT}:role/aurelius-trigger-stack-prod-ml-RedeployServiceFunctionRole-ABC"
    iam = PolicyEvaluatingIam(account.policies, function_role)

    def clients(service: str, region: str | None):
        return {"iam": iam, "cloudformation": account}.get(service, object())

    chain = _Chain(account.env, clients, REGION, simulated=False, arns=ARNS)
    chain.trigger_stack = {
        "Outputs": [{"OutputKey": "CloudFormationServiceRoleArn", "OutputValue": account.service_role}]
    }
    chain.service_stack = {"StackId": account.stack_id, "StackName": account.env.stack_name}
    chain.functions = [
        {
            "FunctionName": "aurelius-trigger-stack-prod-ml-RedeployServiceFunction-0DUBC552JQRE",
            "Role": function_role,
            "Environment": {"Variables": {"NOTIFICATION_TOPIC_ARN": TOPIC}},
        }
    ]
    # When doctor checks the function and service roles
    checks = [*chain.function_roles(), *chain.service_role()]
    # Then every check passes: the service role, both service-linked roles it may create, the function role
    assert [(c.name, c.status) for c in checks] == [
        ("role of RedeployServiceFunction", OK),
        ("service role", OK),
        ("service-linked role AWSServiceRoleForElasticLoadBalancing", OK),
        ("service-linked role AWSServiceRoleForApplicationAutoScaling_ECSService", OK),
    ], checks
    # and the load balancer role was checked against ECS, never against ECS tasks
    lb_role = f"arn:aws:iam::{ACCOUNT}:role/aurelius-ecs-lb-role-prod-ml"
    passes = {r.context["iam:PassedToService"] for r in iam.asked if r.resource == lb_role}
    assert passes == {"ecs.amazonaws.com"}


def test_checks_on_the_wrong_arn_or_service_would_fail_a_correct_deploy():
    # Given prod's correct service role
    account = Account("prod")
    policies = account.policies[account.service_role]
    # Then RegisterTaskDefinition on "*" is refused (the role is scoped to its family) ...
    assert not allowed(policies, Request("ecs:RegisterTaskDefinition", "*"))
    # ... and the canary's load balancer role may not be passed to ECS tasks: a doctor that
    # checks either way reports a failure on a correct deploy
    lb_role = f"arn:aws:iam::{ACCOUNT}:role/aurelius-ecs-lb-role-prod-ml"
    assert not allowed(policies, Request("iam:PassRole", lb_role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}))


def test_a_service_template_doctor_may_not_read_is_an_error_not_a_silent_pass():
    # Given a caller refused cloudformation:GetTemplate on the service stack
    class Unreadable(Account):
        def get_template(self, StackName):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetTemplate")

    account = Unreadable("prod")
    iam = PolicyEvaluatingIam(account.policies, "unused")
    chain = _Chain(
        account.env, lambda service, region: {"iam": iam, "cloudformation": account}.get(service), REGION, False, ARNS
    )
    chain.trigger_stack = {
        "Outputs": [{"OutputKey": "CloudFormationServiceRoleArn", "OutputValue": account.service_role}]
    }
    chain.service_stack = {"StackId": account.stack_id, "StackName": account.env.stack_name}
    # When doctor checks the service role
    checks = {c.name: c for c in chain.service_role()}
    # Then the roles it could not read are an error naming the call, and the rest is still checked
    assert checks["service stack roles"].status == "error"
    assert "cloudformation:GetTemplate" in checks["service stack roles"].detail
    assert checks["service role"].status == OK
    assert not any(r.action == "iam:PassRole" for r in iam.asked)
