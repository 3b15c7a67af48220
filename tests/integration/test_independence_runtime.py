"""Deleting infra/ecs-cluster from a checkout leaves the service deployable (docs/design.md#cluster-and-service-are-independent)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from aurelius.sandbox.environment import local_aws
from tests.helpers import BUCKET, CLUSTER, KEY, REPO, SERVICE_STACK

COPIED = ["aurelius", "infra", "pyproject.toml"]


@pytest.fixture
def checkout_without_cluster(tmp_path):
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / name)
    shutil.rmtree(tmp_path / "infra" / "ecs-cluster")
    return tmp_path


def test_service_stack_deploys_from_a_copy_without_the_cluster_tree(checkout_without_cluster):
    # Given a cluster created beforehand by other means, and a model in the bucket
    with local_aws() as aws:
        session = aws.session()
        session.client("ecs").create_cluster(clusterName=CLUSTER)
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"model")["VersionId"]
        # When the copy's own deploy script runs, importing the copy's aurelius package
        script = checkout_without_cluster / "infra/ecs-service/management-scripts/deploy-service.py"
        env = {**os.environ, **aws.environment, "PYTHONPATH": str(checkout_without_cluster)}
        done = subprocess.run(
            [sys.executable, "-B", str(script), "--environment", "local"],
            cwd=checkout_without_cluster,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # Then the service stack is created in that cluster, pinned to the model
        assert done.returncode == 0, done.stdout + done.stderr
        assert not (checkout_without_cluster / "infra/ecs-cluster").exists()
        cfn = session.client("cloudformation")
        params = {
            p["ParameterKey"]: p["ParameterValue"]
            for p in cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]["Parameters"]
        }
        assert params["ClusterName"] == CLUSTER and params["ModelVersionId"] == version
        services = session.client("ecs").list_services(cluster=CLUSTER)["serviceArns"]
        assert any(arn.endswith("/aurelius-svc-local-demo") for arn in services)
