"""Fault tier: the redeploy loop over moto while AWS throttles, fails, and Lambda times out.

The moto fixtures are the integration tier's (aws, scripts, deployed: cluster and service stacks
of environment local, serving model version 1).
"""

from __future__ import annotations

import boto3
import pytest
from botocore.retries import standard

from aurelius.core.lambda_runtime import Config
from tests.fault.harness import Faults, Lambdas
from tests.helpers import BUCKET, KEY, SERVICE_STACK
from tests.integration.conftest import aws, deployed, scripts  # noqa: F401 (fixtures)


@pytest.fixture
def backoff(monkeypatch):
    """botocore's own backoff delays, recorded and then shortened 100x so a test takes no minutes.

    The decision to retry, the delay's computation and the retry quota stay botocore's.
    """
    delays: list[float] = []
    compute = standard.ExponentialBackoff.delay_amount

    def recorded(self, context):
        delay = compute(self, context)
        delays.append(delay)
        return delay / 100

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", recorded)
    return delays


@pytest.fixture
def alarms(deployed):  # noqa: F811 (the fixture imported above)
    """An SNS topic the handlers notify on an alarm, read through an SQS subscription."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="aurelius-deploys")["TopicArn"]
    queue = sqs.create_queue(QueueName="aurelius-deploys-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])


@pytest.fixture
def faults():
    return Faults()


@pytest.fixture
def make_lambdas(deployed, alarms, faults, backoff):  # noqa: F811 (the fixture imported above)
    """Both handlers over moto with injected faults; retry_mode as botocore's retries mode."""
    topic, _ = alarms
    role = boto3.client("iam").create_role(RoleName="aurelius-cfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    config = Config(SERVICE_STACK, BUCKET, KEY, role, topic, force_refresh=False)

    def make(retry_mode: str = "standard") -> Lambdas:
        return Lambdas(config, faults, retry_mode)

    return make


@pytest.fixture
def lambdas(make_lambdas):
    return make_lambdas("standard")
