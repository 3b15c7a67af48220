"""Fault injection for the fault tests: AWS errors at botocore's HTTP layer, Lambda dying mid-call.

Everything runs over moto (the integration fixtures' mock_aws). Faults are injected where the
network would produce them, so botocore's own machinery (retry policy, backoff, error parsing,
the retry quota) handles them exactly as it would against AWS:

- ``Faults`` answers chosen HTTP sends with a canned error response from a ``before-send``
  handler registered *first*, ahead of moto's own ``before-send`` handler. A retry by botocore
  is a new send, so "the first k sends fail" is what an AWS throttle or 5xx burst looks like.
  A fault can also let moto apply the request and then lose its answer (a 500 after the work
  was done), which is the case a retried UpdateStack must survive.
- ``LambdaTimeout`` derives from BaseException: raised from an ``after-call`` hook it stops the
  handler at that point with nothing in our code able to catch it, as Lambda killing the
  runtime at its timeout does. Lambda then starts a fresh execution environment for the retry,
  so ``Lambdas`` can throw an environment away and load the handler module again.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig
from moto.core.models import botocore_stubber

from aurelius.core.lambda_runtime import BOTO_CONFIG, Config
from tests.helpers import BUCKET, KEY, SERVICE_STACK, LambdaContext, load_event, load_handler

CFN_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
UNREACHED = "http://fault-injected.invalid/"  # no moto backend matches this host


class LambdaTimeout(BaseException):
    """Lambda stopped the function here (its timeout): no ``except Exception`` sees it."""


class _Raw:
    """The raw stream botocore reads an HTTP body from."""

    def __init__(self, body: bytes):
        self._body = io.BytesIO(body)

    def stream(self, **kwargs):
        contents = self._body.read()
        while contents:
            yield contents
            contents = self._body.read()


def error_response(url: str, service: str, status: int, code: str, message: str, head: bool = False) -> AWSResponse:
    """An AWS error answer in the service's own wire format."""
    if head:
        body = b""  # S3 answers HEAD errors with a status line and no body
    elif service == "cloudformation":  # query protocol
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{CFN_NAMESPACE}"><Error><Type>{kind}</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>fault-injected</RequestId></ErrorResponse>"
        ).encode()
    else:  # s3, rest-xml
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-injected</RequestId></Error>".encode()
    headers = {"Content-Type": "text/xml", "Content-Length": str(len(body)), "x-amzn-RequestId": "fault-injected"}
    return AWSResponse(url, status, headers, _Raw(body))


@dataclass
class Fault:
    status: int
    code: str
    message: str = ""
    after_applying: bool = False  # moto does the work, then the answer is lost


@dataclass
class Faults:
    """Planned HTTP error answers per operation, plus counts of what was sent."""

    plans: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    sends: Counter = field(default_factory=Counter)  # HTTP sends (a retry is another send)
    calls: Counter = field(default_factory=Counter)  # API calls as our code made them
    injected: Counter = field(default_factory=Counter)

    def fail(
        self, operation: str, times: int, status: int, code: str, message: str = "", after_applying: bool = False
    ) -> Faults:
        for _ in range(times):
            self.plans[operation].append(Fault(status, code, message or code, after_applying))
        return self

    def attach(self, client) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register_first(f"before-send.{service}", self._before_send)
        client.meta.events.register(f"before-call.{service}", self._before_call)

    def _before_call(self, model, **kwargs) -> None:
        self.calls[model.name] += 1

    def _before_send(self, request, event_name: str, **kwargs) -> AWSResponse | None:
        _, service, operation = event_name.split(".")
        self.sends[operation] += 1
        plan = self.plans.get(operation)
        if not plan:
            return None  # moto answers
        fault = plan.popleft()
        url = request.url
        if fault.after_applying:
            applied = botocore_stubber(event_name=event_name, request=request)
            assert applied is not None and applied.status_code == 200, "moto did not apply the request"
        # botocore calls every before-send handler, moto's too, and sends the first answer. Point
        # this send (botocore builds a new request for each retry) where moto matches nothing,
        # so moto leaves it alone: the request never reached AWS, or reached it exactly once.
        request.url = UNREACHED
        self.injected[operation] += 1
        return error_response(url, service, fault.status, fault.code, fault.message, head=request.method == "HEAD")


def die_after(client, operation: str, times: int = 1) -> list[str]:
    """Raise LambdaTimeout right after the next ``times`` answers of ``operation`` arrive."""
    service = client.meta.service_model.service_id.hyphenize()
    died: list[str] = []

    def hook(**kwargs):
        if len(died) < times:
            died.append(operation)
            raise LambdaTimeout(f"Task timed out after {operation}")

    client.meta.events.register(f"after-call.{service}.{operation}", hook)
    return died


def report_busy(client, status: str = "UPDATE_IN_PROGRESS", times: int = 1) -> None:
    """The next ``times`` DescribeStacks answers show the stack busy (moto never shows *_IN_PROGRESS)."""
    left = [times]

    def hook(parsed, **kwargs):
        if left[0] > 0 and parsed.get("Stacks"):
            left[0] -= 1
            parsed["Stacks"][0]["StackStatus"] = status

    client.meta.events.register("after-call.cloudformation.DescribeStacks", hook)


def busy_update_error(status: str = "UPDATE_IN_PROGRESS") -> tuple[int, str, str]:
    """What UpdateStack answers when the stack went busy after our DescribeStacks (docs/aws.md)."""
    arn = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{SERVICE_STACK}/x"
    return 400, "ValidationError", f"Stack:{arn} is in {status} state and can not be updated."


class Lambdas:
    """The two handlers over moto, one execution environment per function at a time.

    ``prepare(env)`` runs on each new environment's clients (attach faults, hooks). A function
    that raised (an error or a timeout) loses its environment, as after a Lambda timeout, and the
    next invoke loads the handler module again with new clients.
    """

    def __init__(self, config: Config, faults: Faults, retry_mode: str = "standard"):
        self.config, self.faults = config, faults
        self.boto_config = (
            BOTO_CONFIG
            if retry_mode == "standard"
            else BOTO_CONFIG.merge(BotoConfig(retries={"mode": retry_mode, "max_attempts": 5}))
        )
        self.prepare: list[Callable[[str, dict[str, Any]], None]] = []
        self.environments: dict[str, Any] = {}
        self.results: list[dict[str, Any]] = []

    def environment(self, function: str):
        if function not in self.environments:
            module = load_handler(function)
            module.runtime.config = self.config
            clients = {name: boto3.client(name, config=self.boto_config) for name in ("s3", "cloudformation", "sns")}
            for client in clients.values():
                self.faults.attach(client)
            module.runtime.clients._made.update(clients)
            for step in self.prepare:
                step(function, clients)
            self.environments[function] = module
        return self.environments[function]

    def client(self, function: str, service: str):
        return self.environment(function).runtime.clients.get(service)

    def invoke(self, function: str, event: Any) -> dict[str, Any]:
        module = self.environment(function)
        try:
            result = module.lambda_handler(event, LambdaContext())
        except BaseException:
            del self.environments[function]  # Lambda discards an environment that timed out or crashed
            raise
        self.results.append(result)
        return result

    def upload_event(self) -> dict[str, Any]:
        return self.invoke("redeploy_service", s3_event())

    def status_event(self) -> dict[str, Any]:
        return self.invoke("scheduled_refresh", load_event("stack_status_update_complete"))

    def tick(self) -> dict[str, Any]:
        return self.invoke("scheduled_refresh", load_event("schedule"))


def s3_event() -> dict[str, Any]:
    event = load_event("s3_put")
    event["Records"][0]["s3"]["bucket"]["name"] = BUCKET
    event["Records"][0]["s3"]["object"]["key"] = KEY
    return event


def snapshot(aws) -> dict[str, Any]:
    """Everything a reconcile could touch: stacks, their parameters and updates, task definitions, models, alarms."""
    stacks = {}
    for name in sorted(aws.stack_names()):
        stack = aws.stack(name)
        events = aws.cfn.describe_stack_events(StackName=name)["StackEvents"]
        updates = [
            e.get("ClientRequestToken")
            for e in events
            if e["ResourceType"] == "AWS::CloudFormation::Stack" and e["ResourceStatus"] == "UPDATE_IN_PROGRESS"
        ]
        stacks[name] = {"status": stack["StackStatus"], "parameters": aws.parameters(name), "updates": updates}
    return {
        "stacks": stacks,
        "task_definitions": {
            status: sorted(aws.ecs.list_task_definitions(status=status)["taskDefinitionArns"])
            for status in ("ACTIVE", "INACTIVE")
        },
        "model_versions": sorted(
            v["VersionId"] for v in aws.s3.list_object_versions(Bucket=BUCKET, Prefix=KEY).get("Versions", [])
        ),
    }


def assert_newest_deployed_once_and_nothing_else_changed(
    before: dict[str, Any], after: dict[str, Any], newest: str
) -> None:
    """After == before, except: the service stack pins ``newest`` through exactly one applied update,
    which moved the task definition to one new revision."""
    service_before, service_after = before["stacks"][SERVICE_STACK], after["stacks"][SERVICE_STACK]
    # Exactly one update applied to the service stack, and it pinned the newest version
    assert len(service_after["updates"]) == len(service_before["updates"]) + 1, service_after["updates"]
    assert service_after["parameters"]["ModelVersionId"] == newest
    assert service_after["status"] == "UPDATE_COMPLETE"
    # Every other parameter is as it was
    moved = {
        k for k in service_after["parameters"] if service_after["parameters"][k] != service_before["parameters"].get(k)
    }
    assert moved == {"ModelVersionId"}
    # One new task definition revision; the one it replaced is INACTIVE; nothing else
    new_active = set(after["task_definitions"]["ACTIVE"]) - set(before["task_definitions"]["ACTIVE"])
    retired = set(after["task_definitions"]["INACTIVE"]) - set(before["task_definitions"]["INACTIVE"])
    assert len(new_active) == 1 and len(retired) == 1, after["task_definitions"]
    # Other stacks, the model's versions: untouched
    others = lambda snap: {name: s for name, s in snap["stacks"].items() if name != SERVICE_STACK}  # noqa: E731
    assert others(after) == others(before)
    assert after["model_versions"] == before["model_versions"]


def assert_nothing_changed(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after == before
