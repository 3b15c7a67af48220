"""Stubbed AWS clients and what they answer, for the unit tests that pin down what aurelius SENDS.

moto cannot produce the stack states these tests need (docs/moto.md), so each test queues, in
order, the calls the code must make and what AWS answers; a call out of order, with other
parameters, or left unmade fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber

from tests.helpers import MODEL_URI, SERVICE_STACK

REGION = "us-east-1"
ACCOUNT = "123456789012"  # AWS's documentation example account
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{SERVICE_STACK}/x"
CREATED = datetime(2026, 11, 1, tzinfo=UTC)


@contextmanager
def stubbed(client: Any) -> Iterator[Stubber]:
    """A Stubber on ``client`` for the block; every queued answer must have been used by its end."""
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def described_stack(
    status: str,
    version: str,
    *,
    uri: str = MODEL_URI,
    started: datetime | None = None,
    deadline: int | None = None,
    extra: dict[str, str] | None = None,
    created: datetime = CREATED,
) -> dict[str, Any]:
    """The service stack as DescribeStacks returns it: pinned to ``version`` of ``uri``.

    started: LastUpdatedTime, the start of the update running now. deadline: its
    RolloutDeadlineSeconds parameter. extra: more parameters.
    """
    params = {"ClusterName": "c", "ContainerImage": "img:1", "ModelS3Uri": uri, "ModelVersionId": version}
    if deadline is not None:
        params["RolloutDeadlineSeconds"] = str(deadline)
    params.update(extra or {})
    found: dict[str, Any] = {
        "StackName": SERVICE_STACK,
        "StackId": STACK_ID,
        "StackStatus": status,
        "CreationTime": created,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        "Capabilities": ["CAPABILITY_IAM"],
    }
    if started is not None:
        found["LastUpdatedTime"] = started
    return found


class StubbedAws:
    """An S3 and a CloudFormation client, each with its Stubber (``s3_stub``, ``cfn_stub``).

    Test files subclass it with helpers that queue the answers their code reads.
    """

    def __init__(self, region: str = REGION):
        self.s3 = boto3.client("s3", region_name=region)
        self.cfn = boto3.client("cloudformation", region_name=region)
        self.s3_stub, self.cfn_stub = Stubber(self.s3), Stubber(self.cfn)

    def clients(self, service: str, region: str | None) -> Any:
        """A client factory ((service, region) -> client), as aurelius.cli takes one."""
        return {"s3": self.s3, "cloudformation": self.cfn}[service]

    def describe_stacks(self, *stacks: dict[str, Any]) -> None:
        """DescribeStacks of the service stack answers ``stacks`` (described_stack builds one)."""
        self.cfn_stub.add_response("describe_stacks", {"Stacks": list(stacks)}, {"StackName": SERVICE_STACK})

    def describe_missing(self) -> None:
        """DescribeStacks answers that the service stack does not exist."""
        self.cfn_stub.add_client_error(
            "describe_stacks", "ValidationError", f"Stack with id {SERVICE_STACK} does not exist", http_status_code=400
        )

    @contextmanager
    def active(self) -> Iterator[None]:
        """Answer from the queues while the block runs; then every queued answer must have been used."""
        with self.s3_stub, self.cfn_stub:
            yield
            self.s3_stub.assert_no_pending_responses()
            self.cfn_stub.assert_no_pending_responses()
