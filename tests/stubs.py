"""Stubbed S3 and CloudFormation clients for the unit tests that pin down what aurelius SENDS.

moto cannot produce the stack states these tests need (docs/moto.md), so each test queues, in
order, the calls the code must make and what AWS answers; a call out of order, with other
parameters, or left unmade fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.stub import Stubber

REGION = "us-east-1"


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

    @contextmanager
    def active(self) -> Iterator[None]:
        """Answer from the queues while the block runs; then every queued answer must have been used."""
        with self.s3_stub, self.cfn_stub:
            yield
            self.s3_stub.assert_no_pending_responses()
            self.cfn_stub.assert_no_pending_responses()
