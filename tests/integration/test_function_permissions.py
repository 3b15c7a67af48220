"""Every AWS call the functions make is allowed by their policies, on the exact resource ARN.

moto enforces no IAM, so the redeploy loop passing in moto proves nothing about permissions.
Here the handlers run the integration scenarios against moto while botocore's
``before-parameter-build`` event records each call (service, operation, API parameters: the
``before-call`` event carries the serialized HTTP request instead). Each call is then turned
into the IAM requests AWS authorizes for it, and each request is evaluated against that
function's policies in the SAM-translated template.yaml (tests/iam_policy.py: moto's statement
matcher with strict conditions), resolved with the samconfig ``local`` parameters and the
ARNs of the scenario's resources.

What a call needs (AWS API references, "Permissions" sections):
- HeadObject: s3:GetObject, or s3:GetObjectVersion with a VersionId, on bucket/key; and
  s3:ListBucket on the bucket, without which a missing key answers 403 instead of 404. The same
  for the signature sidecar ``{key}.sig/{sha256}`` where the service stack requires signing.
- DescribeStacks / DescribeStackEvents / UpdateStack / CancelUpdateStack: the same action on
  the stack's ARN; UpdateStack with RoleARN also iam:PassRole on that role, passed to
  cloudformation.amazonaws.com.
- Publish: sns:Publish on the topic, and kms:GenerateDataKey + kms:Decrypt on the topic's key
  (SNS encrypts with the publisher's permissions on the key).
- ListTagsForResource / TagResource / UntagResource on the topic: the same sns action.
A call this module has no rule for fails the test, naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from samtranslator.yaml_helper import yaml_parse

from aurelius.core.lambda_runtime import Config
from aurelius.sandbox.triggers import point_code_at, samconfig_deploy_parameters, translate
from tests.helpers import BUCKET, CLUSTER_STACK, KEY, REPO, SERVICE_STACK, LambdaContext, load_event, load_handler
from tests.iam_policy import Request, Resolver, allowed
from tests.integration.signed_uploads import require_signing, upload

FUNCTIONS = {"redeploy_service": "RedeployServiceFunction", "scheduled_refresh": "ScheduledRefreshFunction"}
RECORDED_SERVICES = ("s3", "cloudformation", "sns")
ACCOUNT, REGION = "123456789012", "us-east-1"


@dataclass(frozen=True)
class Call:
    function: str
    service: str
    operation: str
    params: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.function}: {self.service}.{self.operation}({json.dumps(self.params, default=str, sort_keys=True)[:200]})"


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    template = yaml_parse((REPO / "template.yaml").read_text(encoding="utf-8"))
    point_code_at(template, "code-bucket")
    _, parameters = samconfig_deploy_parameters("local")
    return translate(template, parameters)


def function_policies(translated: dict[str, Any], function_id: str, physical: dict[str, str]) -> list[dict[str, Any]]:
    """The identity policies of a function's role, resolved. AWS managed policies (basic
    execution, X-Ray) grant none of the recorded calls and are left out, which can only make
    this proof stricter."""
    _, parameters = samconfig_deploy_parameters("local")
    resolve = Resolver(parameters, physical)
    resources = translated["Resources"]
    role = resources[f"{function_id}Role"]["Properties"]
    documents = [resolve(policy["PolicyDocument"]) for policy in role.get("Policies", [])]
    for arn in role.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and "Ref" in arn:
            documents.append(resolve(resources[arn["Ref"]]["Properties"]["PolicyDocument"]))
    return documents


class Scenario:
    """Both handlers wired to moto with the trigger stack's resources, recording their calls."""

    def __init__(self, aws):
        self.aws = aws
        self.calls: list[Call] = []
        self.cfn, self.sns, self.kms = boto3.client("cloudformation"), boto3.client("sns"), boto3.client("kms")
        # The resources the trigger stack would create, named as it names them.
        self.key_arn = self.kms.create_key(Description="notifications")["KeyMetadata"]["Arn"]
        self.topic_arn = self.sns.create_topic(Name="aurelius-deploys", Attributes={"KmsMasterKeyId": self.key_arn})[
            "TopicArn"
        ]
        self.role_arn = boto3.client("iam").create_role(
            RoleName="aurelius-cfn-role-local-demo", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        self.stack_id = self.cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]["StackId"]
        self.physical = {
            "CloudFormationServiceRole.Arn": self.role_arn,
            "DeployNotificationsTopic": self.topic_arn,
            "NotificationsKey.Arn": self.key_arn,
            "FailedEventsQueue.Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:failed-events",
        }
        self.handlers = {}
        for function in FUNCTIONS:
            module = load_handler(function)
            module.runtime.config = Config(
                SERVICE_STACK, BUCKET, KEY, self.role_arn, self.topic_arn, force_refresh=False
            )
            for service in RECORDED_SERVICES:
                client = module.runtime.clients.get(service)
                client.meta.events.register(
                    f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}",
                    self._recorder(function),
                )
            self.handlers[function] = module

    def _recorder(self, function: str):
        def record(params, model, **kwargs):
            self.calls.append(Call(function, model.service_model.service_name, model.name, dict(params)))

        return record

    def refresh(self, module_name: str = "scheduled_refresh", event: str = "schedule", force: bool = False) -> dict:
        module = self.handlers[module_name]
        if force:
            config = module.runtime.config
            module.runtime.config = Config(
                config.stack_name, config.bucket, config.key, config.role_arn, config.topic_arn, True
            )
        return module.lambda_handler(load_event(event), LambdaContext())

    def upload_event(self, version_id: str | None = None) -> dict:
        event = load_event("s3_put")
        record = event["Records"][0]["s3"]
        record["bucket"]["name"], record["object"]["key"] = BUCKET, KEY
        if version_id:
            record["object"]["versionId"] = version_id
        else:
            record["object"].pop("versionId", None)
        return self.handlers["redeploy_service"].lambda_handler(event, LambdaContext())

    # ------------------------------------------------------------ calls -> IAM requests
    def stack_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        if name_or_arn == SERVICE_STACK:
            return self.stack_id
        return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name_or_arn}/00000000-0000-0000-0000-000000000000"

    def topic_key(self, topic_arn: str) -> str | None:
        key = self.sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"].get("KmsMasterKeyId")
        return self.kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"] if key else None

    def requests(self, call: Call) -> list[Request]:
        p = call.params
        op = (call.service, call.operation)
        if op in {("s3", "HeadObject"), ("s3", "GetObject")}:
            action = "s3:GetObjectVersion" if p.get("VersionId") else "s3:GetObject"
            return [
                Request(action, f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"),
                Request("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", {"s3:prefix": p["Key"]}),
            ]
        if call.service == "cloudformation" and call.operation in {
            "DescribeStacks",
            "DescribeStackEvents",
            "UpdateStack",
            "CancelUpdateStack",
        }:
            found = [Request(f"cloudformation:{call.operation}", self.stack_arn(p["StackName"]))]
            if call.operation == "UpdateStack" and p.get("RoleARN"):
                found.append(
                    Request("iam:PassRole", p["RoleARN"], {"iam:PassedToService": "cloudformation.amazonaws.com"})
                )
            return found
        if op == ("sns", "Publish"):
            found = [Request("sns:Publish", p["TopicArn"])]
            key = self.topic_key(p["TopicArn"])
            if key:
                found += [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)]
            return found
        if call.service == "sns" and call.operation in {"ListTagsForResource", "TagResource", "UntagResource"}:
            return [Request(f"sns:{call.operation}", p["ResourceArn"])]
        raise LookupError(f"no IAM rule for {call.service}.{call.operation}: add one to Scenario.requests")

    def refused(self, translated: dict[str, Any]) -> list[str]:
        problems = []
        for call in self.calls:
            documents = function_policies(translated, FUNCTIONS[call.function], self.physical)
            try:
                needed = self.requests(call)
            except LookupError as exc:
                problems.append(f"{call}: {exc}")
                continue
            problems += [f"{call}: refused {request}" for request in needed if not allowed(documents, request)]
        return list(dict.fromkeys(problems))  # one line per distinct refusal


@pytest.fixture
def scenario(deployed) -> Scenario:
    return Scenario(deployed)


def run_every_scenario(scenario: Scenario) -> None:
    """The loop's paths: upload (with and without the event's versionId), schedule tick in
    sync, forced refresh, stack-status event, missing model, missing service stack (alarm)."""
    v2 = scenario.aws.upload(2)
    assert scenario.upload_event()["action"] == "started"
    assert scenario.upload_event(version_id=v2)["action"] == "in-sync"
    assert scenario.refresh()["action"] == "in-sync"
    assert scenario.refresh(force=True)["action"] in {"started", "in-sync"}
    scenario.refresh(event="stack_status_update_complete")
    scenario.aws.s3.delete_object(Bucket=BUCKET, Key=KEY)
    assert scenario.upload_event()["action"] == "skipped"
    scenario.aws.cfn.delete_stack(StackName=SERVICE_STACK)
    scenario.aws.upload(3)
    assert scenario.refresh()["action"] == "alarm"


def test_every_call_the_functions_make_is_allowed_by_their_policy_on_its_arn(scenario, translated):
    # Given the handlers run through every path of the loop, with their calls recorded
    run_every_scenario(scenario)
    # Then the scenario exercised the calls that matter (so this proof is not vacuous)
    # (reconcile reads the current version, never the event's: HeadObject without VersionId)
    seen = {(c.service, c.operation) for c in scenario.calls}
    assert {
        ("s3", "HeadObject"),
        ("cloudformation", "DescribeStacks"),
        ("cloudformation", "UpdateStack"),
        ("sns", "Publish"),
    } <= seen, seen
    assert any(c.operation == "UpdateStack" and c.params.get("RoleARN") == scenario.role_arn for c in scenario.calls)
    # and every call is allowed by the calling function's policies, on the exact ARN
    refused = scenario.refused(translated)
    assert not refused, "the function policies refuse:\n" + "\n".join(refused)


def test_head_object_on_a_missing_key_is_allowed_to_answer_404(scenario, translated):
    # Given a HeadObject of the model key (the check for a missing model)
    documents = function_policies(translated, "RedeployServiceFunction", scenario.physical)
    # Then s3:ListBucket on the bucket is allowed: without it S3 answers 403, not 404 (issue 10, item 2)
    assert allowed(documents, Request("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": KEY}))
    # and reading stays limited to the model key
    assert allowed(documents, Request("s3:GetObjectVersion", f"arn:aws:s3:::{BUCKET}/{KEY}"))
    assert not allowed(documents, Request("s3:GetObject", f"arn:aws:s3:::{BUCKET}/models/other.pkl"))
    assert not allowed(documents, Request("s3:ListBucket", "arn:aws:s3:::another-bucket"))


def test_alarms_may_be_encrypted_with_the_notifications_key_only(scenario, translated):
    # Given the encrypted topic's customer-managed key (issue 10, item 3)
    for function_id in FUNCTIONS.values():
        documents = function_policies(translated, function_id, scenario.physical)
        # Then publishing may use that key, and no other
        assert allowed(documents, Request("kms:GenerateDataKey", scenario.key_arn))
        assert allowed(documents, Request("kms:Decrypt", scenario.key_arn))
        other = scenario.key_arn.rsplit("/", 1)[0] + "/11111111-2222-3333-4444-555555555555"
        assert not allowed(documents, Request("kms:GenerateDataKey", other))


def test_update_stack_may_pass_only_the_service_role_and_only_to_cloudformation(scenario, translated):
    documents = function_policies(translated, "ScheduledRefreshFunction", scenario.physical)
    passed = {"iam:PassedToService": "cloudformation.amazonaws.com"}
    assert allowed(documents, Request("iam:PassRole", scenario.role_arn, passed))
    assert not allowed(
        documents, Request("iam:PassRole", scenario.role_arn, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
    )
    assert not allowed(documents, Request("iam:PassRole", scenario.role_arn.replace("cfn-role", "task-role"), passed))
    assert not allowed(documents, Request("cloudformation:UpdateStack", scenario.stack_arn(CLUSTER_STACK)))


def test_a_call_without_an_iam_rule_fails_the_proof(scenario, translated):
    # Given a call this module has no rule for
    scenario.calls.append(Call("redeploy_service", "s3", "DeleteObject", {"Bucket": BUCKET, "Key": KEY}))
    # Then the proof names it rather than passing it
    assert any("no IAM rule for s3.DeleteObject" in problem for problem in scenario.refused(translated))


def test_the_signature_check_is_allowed_on_the_model_keys_sidecars_only(scenario, translated):
    # Given a service stack that requires signing, a signed upload, then an unsigned one
    require_signing(scenario.aws.cfn)
    upload(scenario.aws.s3, 2, signed=True)
    assert scenario.upload_event()["action"] == "started"
    upload(scenario.aws.s3, 3, signed=False)
    assert scenario.upload_event()["finding"] == "NotSigned"
    # Then the handler looked the sidecar up (HeadObject on {key}.sig/{sha256}) ...
    sidecar_heads = [c for c in scenario.calls if c.operation == "HeadObject" and ".sig/" in c.params["Key"]]
    assert len(sidecar_heads) == 2, [str(c) for c in scenario.calls]
    # ... and every call, these included, is allowed on its exact ARN
    refused = scenario.refused(translated)
    assert not refused, "the function policies refuse:\n" + "\n".join(refused)
    # while another object's signatures, or anything else under the key's name, stay out of reach
    documents = function_policies(translated, "RedeployServiceFunction", scenario.physical)
    assert not allowed(documents, Request("s3:GetObject", f"arn:aws:s3:::{BUCKET}/models/other.pkl.sig/{'0' * 64}"))
    assert not allowed(documents, Request("s3:GetObject", f"arn:aws:s3:::{BUCKET}/{KEY}.bak"))
