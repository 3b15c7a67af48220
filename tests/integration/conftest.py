"""Integration tier: real boto3 against moto's in-process AWS (mock_aws)."""

from __future__ import annotations

import io
import pickle

import boto3
import pytest
from moto import mock_aws

from aurelius.sandbox import moto_compat
from tests.helpers import ARTIFACTS, BUCKET, KEY, SERVICE_STACK, load_script

moto_compat.apply()

CLUSTER_SCRIPT = "infra/ecs-cluster/management-scripts/create-cluster.py"
SERVICE_SCRIPT = "infra/ecs-service/management-scripts/deploy-service.py"
ELB_SCRIPT = "infra/elb/management-scripts/deploy-elb.py"


def model_bytes(version: int) -> bytes:
    """Bytes of a model pickle. Only the model server unpickles; our code never does."""
    return pickle.dumps({"kind": "test-model", "version": version})


class MotoAccount:
    """Clients and helpers over one mock_aws account (not the sandbox of aurelius.sandbox: no server,
    no functions; just moto in this process)."""

    def __init__(self):
        self.s3 = boto3.client("s3")
        self.cfn = boto3.client("cloudformation")
        self.ecs = boto3.client("ecs")
        # The public AMI parameters (/aws/service/...) ship with moto, as on AWS.
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.s3.create_bucket(Bucket=ARTIFACTS)

    def upload(self, version: int) -> str:
        return self.s3.put_object(Bucket=BUCKET, Key=KEY, Body=io.BytesIO(model_bytes(version)))["VersionId"]

    def stack(self, name: str = SERVICE_STACK) -> dict:
        return self.cfn.describe_stacks(StackName=name)["Stacks"][0]

    def parameters(self, name: str = SERVICE_STACK) -> dict[str, str]:
        return {p["ParameterKey"]: p.get("ParameterValue") for p in self.stack(name).get("Parameters", [])}

    def stack_names(self) -> set[str]:
        return {
            s["StackName"] for s in self.cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
        }

    def task_definition_resource(self) -> str:
        resources = self.cfn.describe_stack_resources(StackName=SERVICE_STACK)["StackResources"]
        # moto returns rows without keys for resource types it skips (the CloudWatch alarms): .get()
        return next(r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == "AWS::ECS::TaskDefinition")


@pytest.fixture
def aws():
    with mock_aws():
        yield MotoAccount()


@pytest.fixture
def scripts():
    return {
        "cluster": load_script(CLUSTER_SCRIPT),
        "service": load_script(SERVICE_SCRIPT),
        "elb": load_script(ELB_SCRIPT),
    }


@pytest.fixture
def deployed(aws, scripts):
    """Cluster and service stacks of environment local, serving model version 1."""
    aws.upload(1)
    assert scripts["cluster"].main(["--environment", "local"]) == 0
    assert scripts["service"].main(["--environment", "local"]) == 0
    return aws
