"""The redeploy loop end to end in moto: handlers, reconcile, the service stack, ECS revisions."""

from __future__ import annotations

import io
import json
import random

import boto3
import pytest

from aurelius.core.lambda_runtime import Config, logger
from tests.helpers import BUCKET, KEY, SERVICE_STACK, LambdaContext, load_event, load_handler
from tests.integration.signed_uploads import require_signing, upload


@pytest.fixture
def log_lines():
    """JSON log lines written by the handlers' powertools Logger."""
    stream = io.StringIO()
    logger.registered_handler.setStream(stream)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    return lines


class Loop:
    """Both handlers wired to moto, plus a counter of UpdateStack calls they send."""

    def __init__(self, aws, topic_arn: str, role_arn: str):
        self.aws = aws
        self.updates: list[dict] = []
        config = Config(SERVICE_STACK, BUCKET, KEY, role_arn, topic_arn, force_refresh=False)
        self.redeploy = load_handler("redeploy_service")
        self.refresh = load_handler("scheduled_refresh")
        for module in (self.redeploy, self.refresh):
            module.runtime.config = config
            cfn = module.runtime.clients.get("cloudformation")
            cfn.meta.events.register("provide-client-params.cloudformation.UpdateStack", self._count)

    def _count(self, params, **kwargs):
        self.updates.append(params)

    def s3_event(
        self, key: str = KEY, bucket: str = BUCKET, version_id: str | None = None, sequencer: str | None = None
    ) -> dict:
        event = load_event("s3_put")
        event["Records"][0]["s3"]["bucket"]["name"] = bucket
        s3_object = event["Records"][0]["s3"]["object"]
        s3_object["key"] = key
        if version_id is not None:
            s3_object["versionId"], s3_object["sequencer"] = version_id, sequencer
        return event

    def upload_event(self, **kwargs) -> dict:
        return self.redeploy.lambda_handler(self.s3_event(**kwargs), LambdaContext())

    def tick(self, name: str = "schedule") -> dict:
        return self.refresh.lambda_handler(load_event(name), LambdaContext())


@pytest.fixture
def loop(deployed):
    sns = boto3.client("sns")
    sqs = boto3.client("sqs")
    topic = sns.create_topic(Name="aurelius-deploys")["TopicArn"]
    queue = sqs.create_queue(QueueName="aurelius-deploys-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    role = boto3.client("iam").create_role(RoleName="aurelius-cfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    result = Loop(deployed, topic, role)
    result.topic = topic
    result.inbox = lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return result


def test_upload_moves_service_to_a_new_task_definition_revision_pinned_to_that_version(loop):
    # Given version 1 deployed on revision 1
    first_revision = loop.aws.task_definition_resource()
    # When version 2 is uploaded and S3 notifies redeploy_service
    v2 = loop.aws.upload(2)
    result = loop.upload_event()
    # Then the stack pins version 2 and the task definition is a new revision
    assert result["action"] == "started"
    assert loop.aws.parameters()["ModelVersionId"] == v2
    assert loop.aws.parameters()["ModelS3Uri"] == f"s3://{BUCKET}/{KEY}"
    new_revision = loop.aws.task_definition_resource()
    assert new_revision != first_revision and new_revision.endswith(":2")
    assert (
        loop.aws.ecs.describe_task_definition(taskDefinition=first_revision)["taskDefinition"]["status"] == "INACTIVE"
    )
    # and CloudFormation was asked to act with the service role, keeping every other parameter
    (update,) = loop.updates
    assert update["RoleARN"].endswith(":role/aurelius-cfn") and update["UsePreviousTemplate"] is True
    kept = {p["ParameterKey"] for p in update["Parameters"] if p.get("UsePreviousValue")}
    assert kept == set(loop.aws.parameters()) - {"ModelS3Uri", "ModelVersionId"}


def test_duplicate_upload_does_not_update_stack_twice(loop):
    loop.aws.upload(2)
    first, second = loop.upload_event(), loop.upload_event()
    assert (first["action"], second["action"]) == ("started", "in-sync")
    assert len(loop.updates) == 1


def test_burst_of_shuffled_duplicate_events_ends_with_newest_version_deployed_once(loop):
    # Given three uploads in quick succession whose events arrive shuffled and duplicated
    versions = [loop.aws.upload(n) for n in (2, 3, 4)]
    events = [loop.s3_event() for _ in range(12)]
    random.Random(7).shuffle(events)
    # When every event is delivered
    actions = [loop.redeploy.lambda_handler(event, LambdaContext())["action"] for event in events]
    # Then the newest version is deployed, with a single UpdateStack
    assert loop.aws.parameters()["ModelVersionId"] == versions[-1]
    assert len(loop.updates) == 1
    assert actions.count("started") == 1 and set(actions) == {"started", "in-sync"}


def test_late_event_of_an_older_upload_does_not_roll_the_model_back(loop):
    # Given v2 then v3 uploaded, and v3's notification delivered first (v3 deployed)
    v2 = loop.aws.upload(2)
    v3 = loop.aws.upload(3)
    v3_event = loop.s3_event(version_id=v3, sequencer="0000000000000000B0")
    v2_event = loop.s3_event(version_id=v2, sequencer="0000000000000000A0")
    assert loop.redeploy.lambda_handler(v3_event, LambdaContext())["action"] == "started"
    # When v2's own notification arrives late (its versionId and an older sequencer)
    late = loop.redeploy.lambda_handler(v2_event, LambdaContext())
    # Then nothing moves: the current S3 version (v3) stays deployed, with no second update
    assert late["action"] == "in-sync"
    assert loop.aws.parameters()["ModelVersionId"] == v3
    assert len(loop.updates) == 1


def test_schedule_tick_when_in_sync_changes_nothing(loop):
    assert loop.tick()["action"] == "in-sync"
    assert loop.updates == []


def test_schedule_tick_repairs_a_missed_s3_event(loop):
    v2 = loop.aws.upload(2)  # no notification delivered
    assert loop.tick()["action"] == "started"
    assert loop.aws.parameters()["ModelVersionId"] == v2


def test_event_for_another_key_is_rejected_without_stack_update(loop, log_lines):
    loop.aws.upload(2)
    result = loop.upload_event(key="models/other.pkl")
    assert result["action"] == "rejected" and "not the model object" in result["reason"]
    assert loop.updates == []
    assert any(line["message"] == "event rejected" and "not the model object" in line["reason"] for line in log_lines())


def test_malformed_event_is_logged_and_rejected(loop, log_lines):
    result = loop.redeploy.lambda_handler({"Records": [{"eventSource": "aws:s3"}]}, LambdaContext())
    assert result["action"] == "rejected"
    assert loop.updates == []
    assert any(line["level"] == "WARNING" and line["message"] == "event rejected" for line in log_lines())


def test_deleted_model_object_is_skipped_without_update(loop):
    loop.aws.s3.delete_object(Bucket=BUCKET, Key=KEY)  # a delete marker becomes current
    result = loop.upload_event()
    assert result["action"] == "skipped"
    assert loop.updates == []


def test_empty_model_upload_is_skipped_without_update(loop):
    loop.aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"")
    assert loop.upload_event()["action"] == "skipped"
    assert loop.updates == []


def test_missing_service_stack_alarms_with_log_metric_and_notification(loop, log_lines, capsys):
    # Given the service stack is gone
    loop.aws.cfn.delete_stack(StackName=SERVICE_STACK)
    loop.aws.upload(2)
    # When an upload arrives
    result = loop.upload_event()
    # Then: no crash (no retry storm), an error log, a DeploysFailed metric and an SNS message
    assert result["action"] == "alarm"
    errors = [line for line in log_lines() if line["level"] == "ERROR"]
    assert errors and errors[0]["stack"] == SERVICE_STACK and "missing" in errors[0]["reason"]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("DeploysFailed") == [1.0] or m.get("DeploysFailed") == 1.0 for m in emf)
    (message,) = loop.inbox()
    assert SERVICE_STACK in json.loads(message["Body"])["Message"]


def test_every_log_line_of_a_reconcile_names_stack_and_model_version(loop, log_lines):
    v2 = loop.aws.upload(2)
    loop.upload_event()
    done = [line for line in log_lines() if line["message"] == "reconcile done"]
    assert done and done[0]["stack"] == SERVICE_STACK and done[0]["model_version"] == v2
    assert done[0]["action"] == "started"


class BusyFor:
    """A CloudFormation client over moto that reports the stack busy for the first N describes.

    moto finishes updates synchronously and never shows *_IN_PROGRESS (docs/moto.md); this is the
    smallest fake that lets the rest of the loop run for real.
    """

    def __init__(self, real, times: int):
        self.real, self.times = real, times

    def describe_stacks(self, **kwargs):
        answer = self.real.describe_stacks(**kwargs)
        if self.times > 0:
            self.times -= 1
            answer["Stacks"][0]["StackStatus"] = "UPDATE_IN_PROGRESS"
        return answer

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_upload_during_a_busy_stack_is_deployed_when_the_stack_status_event_arrives(loop):
    # Given the stack is busy when three uploads arrive
    busy = BusyFor(loop.redeploy.runtime.clients.get("cloudformation"), times=3)
    for module in (loop.redeploy, loop.refresh):
        module.runtime.clients._made["cloudformation"] = busy
    versions = [loop.aws.upload(n) for n in (2, 3, 4)]
    deferred = [loop.upload_event()["action"] for _ in versions]
    assert deferred == ["deferred"] * 3 and loop.updates == []
    # When the stack's UPDATE_COMPLETE status change wakes scheduled_refresh
    result = loop.tick("stack_status_update_complete")
    # Then the newest version is deployed, once
    assert result["action"] == "started"
    assert loop.aws.parameters()["ModelVersionId"] == versions[-1]
    assert len(loop.updates) == 1


class BrokenWhile:
    """DescribeStacks over moto answers UPDATE_ROLLBACK_FAILED while ``broken`` is set (moto
    cannot produce a failed rollback, docs/moto.md); everything else is moto's."""

    def __init__(self, real):
        self.real, self.broken = real, True

    def describe_stacks(self, **kwargs):
        answer = self.real.describe_stacks(**kwargs)
        if self.broken:
            answer["Stacks"][0]["StackStatus"] = "UPDATE_ROLLBACK_FAILED"
        return answer

    def __getattr__(self, name):
        return getattr(self.real, name)


def drain(loop) -> list[dict]:
    """Every SNS message that reached the inbox so far (the SNS envelope's Message, parsed)."""
    found = []
    while batch := loop.inbox():
        found += [json.loads(json.loads(m["Body"])["Message"]) for m in batch]
        loop.aws_sqs_delete(batch)
    return found


@pytest.fixture
def noisy_loop(loop):
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_url(QueueName="aurelius-deploys-inbox")["QueueUrl"]
    loop.aws_sqs_delete = lambda batch: [
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"]) for m in batch
    ]
    return loop


def test_twelve_ticks_on_the_same_broken_stack_send_one_message_and_the_repair_sends_the_next(noisy_loop):
    loop = noisy_loop
    # Given a stack stuck in UPDATE_ROLLBACK_FAILED while version 2 waits
    broken = BrokenWhile(loop.refresh.runtime.clients.get("cloudformation"))
    loop.refresh.runtime.clients._made["cloudformation"] = broken
    v2 = loop.aws.upload(2)
    # When the schedule ticks 12 times (an hour at the default rate)
    actions = [loop.tick()["action"] for _ in range(12)]
    # Then every tick alarms, but one message was sent, naming the stack, its state and the version
    assert actions == ["alarm"] * 12
    (alarm,) = drain(loop)
    assert (alarm["notice"], alarm["stack_name"], alarm["stack_status"], alarm["wanted_version"]) == (
        "alarm",
        SERVICE_STACK,
        "UPDATE_ROLLBACK_FAILED",
        v2,
    )
    # When a newer version is uploaded while the stack is still broken: a new problem, one message
    v3 = loop.aws.upload(3)
    assert [loop.tick()["action"] for _ in range(3)] == ["alarm"] * 3
    (again,) = drain(loop)
    assert again["wanted_version"] == v3
    # When a person repairs the stack: the next tick deploys v3 and says the problem is resolved
    broken.broken = False
    assert loop.tick()["action"] == "started"
    (resolved,) = drain(loop)
    assert resolved["notice"] == "resolved" and resolved["action"] == "started"
    # and the topic forgets the alarm, so the same problem would be notified again
    tags = boto3.client("sns").list_tags_for_resource(ResourceArn=loop.topic)["Tags"]
    assert [t for t in tags if t["Key"] == "aurelius:last-alarm"] == []
    assert loop.tick()["action"] == "in-sync" and drain(loop) == []


# ---------------------------------------------------------------------------- signing required
def test_where_signing_is_required_only_a_signed_upload_is_deployed_and_an_unsigned_one_alarms_once(noisy_loop):
    loop = noisy_loop
    # Given the service stack requires signed models (deploy-service.py with signing.required: true)
    require_signing(loop.aws.cfn)
    deployed = loop.aws.parameters()["ModelVersionId"]
    updates_before = len(loop.updates)
    # When an unsigned version is uploaded, and the schedule finds it again
    unsigned = upload(loop.aws.s3, 2, signed=False)
    first, second = loop.upload_event(), loop.tick()
    # Then it is not deployed, both runs alarm, and one message names the version and the reason
    assert (first["action"], first["finding"]) == ("alarm", "NotSigned")
    assert second["finding"] == "NotSigned" and len(loop.updates) == updates_before
    assert loop.aws.parameters()["ModelVersionId"] == deployed
    (alarm,) = drain(loop)
    assert alarm["wanted_version"] == unsigned and alarm["reason"].startswith(f"not signed: version {unsigned} of ")
    # When a signed version follows (its signature written first, as aurelius publish does)
    signed = upload(loop.aws.s3, 3, signed=True)
    outcome = loop.upload_event()
    # Then it is deployed, and the alarm is resolved
    assert outcome["action"] == "started"
    assert loop.aws.parameters()["ModelVersionId"] == signed
    (resolved,) = drain(loop)
    assert resolved["notice"] == "resolved"
