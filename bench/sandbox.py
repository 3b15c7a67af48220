"""What rows 2 and 3 share: a moto server on 127.0.0.1 with the cluster and service stacks, the
real handlers wired to it, and a counter of the AWS API calls a piece of code makes.

The stacks are deployed by their own management scripts, run as subprocesses with
AWS_ENDPOINT_URL pointing at the server (as `make demo` does). API calls are counted with
botocore's ``before-call`` event on every client, so retries would not inflate the count and
nothing is counted that was not asked for.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import botocore.session

from aurelius.core.lambda_runtime import Clients, Config, logger
from aurelius.sandbox.environment import LocalAws, local_aws
from aurelius.sandbox.local_lambda import Context, import_handler_file
from bench import REPO

BUCKET, KEY = "aurelius-models-local-demo", "models/model.pkl"  # infra/ecs-service settings, local
CLUSTER = "aurelius-cluster-local-demo"
SERVICE = "aurelius-svc-local-demo"
SERVICE_STACK = "aurelius-service-stack-local-demo"
SCRIPTS = (
    REPO / "infra/ecs-cluster/management-scripts/create-cluster.py",
    REPO / "infra/ecs-service/management-scripts/deploy-service.py",
)


@dataclass
class CallCounter:
    """API calls by operation, from botocore's before-call event on the clients it watches."""

    calls: Counter = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)

    def watch(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self._count, unique_id=f"bench-counter-{id(self)}")
        return client

    def _count(self, model, **kwargs) -> None:
        self.calls[model.name] += 1
        self.log.append(model.name)

    def total(self) -> int:
        return sum(self.calls.values())

    @contextlib.contextmanager
    def every_new_client(self) -> Iterator[CallCounter]:
        """Watch each client any code creates inside the block (a CLI making its own)."""
        original = botocore.session.Session.create_client
        counter = self

        def create_client(session, *args, **kwargs):
            return counter.watch(original(session, *args, **kwargs))

        botocore.session.Session.create_client = create_client
        try:
            yield self
        finally:
            botocore.session.Session.create_client = original


def load_handler(function: str) -> ModuleType:
    return import_handler_file(REPO / "functions" / function / "app.py", f"bench_{function}")


LambdaContext = Context


def s3_event(version_id: str = "", sequencer: str = "") -> dict[str, Any]:
    """An S3 ObjectCreated:Put notification for the model key (the key URL-encoded, as S3 does)."""
    obj: dict[str, Any] = {"key": KEY.replace("/", "%2F"), "size": 64, "eTag": "0" * 32}
    if version_id:
        obj["versionId"] = version_id
    if sequencer:
        obj["sequencer"] = sequencer
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": obj,
                },
            }
        ]
    }


class Sandbox:
    """The moto server with both stacks deployed, and the redeploy handler wired to it."""

    def __init__(self, aws: LocalAws):
        self.aws = aws
        self.s3 = boto3.client("s3")
        self.cfn = boto3.client("cloudformation")
        self.ecs = boto3.client("ecs")
        self.uploads = 0
        self.handler_output = io.StringIO()
        logger.registered_handler.setStream(self.handler_output)  # the handlers' JSON logs

    def deploy(self) -> None:
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.upload()  # the service stack's first create pins the current version
        env = {**os.environ, **self.aws.environment}
        for script in SCRIPTS:
            done = subprocess.run(
                [sys.executable, str(script), "--environment", "local"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{script.name} exited {done.returncode}: {done.stderr.strip()[-400:]}")

    def upload(self) -> str:
        self.uploads += 1
        body = pickle.dumps({"model": "aurelius-bench", "version": self.uploads})
        return self.s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)["VersionId"]

    def deployed_version(self) -> str:
        stack = self.cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]
        return {p["ParameterKey"]: p.get("ParameterValue") for p in stack["Parameters"]}["ModelVersionId"]

    def redeploy_handler(self, counter: CallCounter) -> ModuleType:
        """redeploy_service with the sandbox's configuration and its clients watched by counter."""
        module = load_handler("redeploy_service")
        module.runtime.config = Config(SERVICE_STACK, BUCKET, KEY, role_arn=None, topic_arn=None, force_refresh=False)
        self.fresh_clients(module, counter)
        return module

    @staticmethod
    def fresh_clients(module: ModuleType, counter: CallCounter) -> None:
        module.runtime.clients = Clients()
        for service in ("s3", "cloudformation"):
            counter.watch(module.runtime.clients.get(service))

    def invoke(self, module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
        with contextlib.redirect_stdout(self.handler_output):  # the metrics (EMF) lines
            return module.lambda_handler(event, LambdaContext())


@contextlib.contextmanager
def sandbox() -> Iterator[Sandbox]:
    with local_aws(lambda_log=io.StringIO()) as aws:
        box = Sandbox(aws)
        box.deploy()
        yield box
