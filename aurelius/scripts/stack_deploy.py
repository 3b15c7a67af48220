"""Create or update a CloudFormation stack through a change set, showing a person what happens.

Used by the management scripts (the redeployer updates the service stack with UpdateStack, see
aurelius.core.reconcile; `aurelius deploy --dry-run` shows that update with ChangeSetPreview,
the change-set previewer below). Steps: describe the stack, create a change set,
print what will change, stop there on --dry-run (deleting the change set and, for a stack that
did not exist, the empty REVIEW_IN_PROGRESS stack too, so a dry run leaves nothing behind),
execute, stream the stack events until the operation ends, print the outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError, WaiterError

# The states only a person can repair: one definition, the redeployer's (NOT_UPDATABLE is
# re-exported for the scripts' callers).
from aurelius.core.decision import NOT_UPDATABLE

# Re-exported: the management scripts read stacks through this module.
from aurelius.core.stacks import describe_stack, stack_outputs, stack_parameters  # noqa: F401

Printer = Callable[[str], None]

NO_CHANGES_MARKERS = ("didn't contain changes", "No updates are to be performed")
SUCCESS = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


class DeployError(Exception):
    """The deploy failed on the AWS side; the message says what and where."""


@dataclass(frozen=True)
class StackSpec:
    """Everything one stack deploy sends."""

    stack_name: str
    template_body: str
    parameters: list[dict[str, Any]]
    capabilities: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    # CloudFormation service role. Once a stack was operated with a role, CloudFormation keeps
    # using it when none is passed; passing it here makes a person's deploy prove it works.
    role_arn: str | None = None


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    action: str  # "create", "update", "no-changes", "dry-run"
    status: str | None
    outputs: dict[str, str]


def parameter(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return {"ParameterKey": key, "ParameterValue": str(value)}


def keep_parameter(key: str) -> dict[str, Any]:
    return {"ParameterKey": key, "UsePreviousValue": True}


class ChangeSetPreview:
    """Create a change set, wait for it, print what it would change, delete it.

    The one change-set previewer: the management scripts' deploys (StackDeployer) and
    `aurelius deploy --dry-run` both show a change this way.
    """

    def __init__(self, cfn, out: Printer = print, poll_seconds: float = 5.0, max_attempts: int | None = None):
        self.cfn, self.out, self.poll_seconds, self.max_attempts = cfn, out, poll_seconds, max_attempts

    def create(self, stack_name: str, name: str, **request: Any) -> bool:
        """Create change set ``name`` (``request``: the other CreateChangeSet arguments) and wait
        until it is ready. True when there is something to execute; False when CloudFormation sees
        no changes (the empty change set is deleted). DeployError when it fails for another reason."""
        try:
            self.cfn.create_change_set(StackName=stack_name, ChangeSetName=name, **request)
        except ClientError as exc:
            # moto refuses an empty change set at once; AWS creates it and marks it FAILED.
            if _no_changes(str(exc)):
                return False
            raise
        waiter_config: dict[str, Any] = {"Delay": self.poll_seconds or 1}
        if self.max_attempts:
            waiter_config["MaxAttempts"] = self.max_attempts
        try:
            self.cfn.get_waiter("change_set_create_complete").wait(
                StackName=stack_name, ChangeSetName=name, WaiterConfig=waiter_config
            )
        except WaiterError:
            reason = self.cfn.describe_change_set(StackName=stack_name, ChangeSetName=name).get("StatusReason", "")
            if _no_changes(reason):
                self.delete(stack_name, name)
                return False
            raise DeployError(f"change set {name} for {stack_name} failed: {reason}") from None
        return True

    def changes(self, stack_name: str, name: str) -> list[dict[str, Any]]:
        """Every change of the change set (DescribeChangeSet pages through them)."""
        changes: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.cfn.describe_change_set(
                StackName=stack_name, ChangeSetName=name, **({"NextToken": token} if token else {})
            )
            changes.extend(page.get("Changes", []))
            token = page.get("NextToken")
            if not token:
                return changes

    def show(self, stack_name: str, name: str, before: dict[str, str] | None, after: dict[str, str]) -> None:
        """Print the parameter values that change (``before``: the stack's, None for a new stack,
        which prints none) and every resource change."""
        changes = self.changes(stack_name, name)
        for key, value in after.items():
            old = before.get(key) if before is not None else value
            if old != value:
                self.out(f"  parameter {key}: {'(unset)' if old is None else old} -> {value}")
        for change in changes:
            rc = change.get("ResourceChange", {})
            replacement = rc.get("Replacement")
            extra = f" (replacement: {replacement})" if replacement and replacement != "False" else ""
            self.out(
                f"  {rc.get('Action', '?'):<7} {rc.get('LogicalResourceId', '?')} {rc.get('ResourceType', '')}{extra}"
            )
        if not changes:
            self.out("  (CloudFormation listed no resource changes; the parameter changes are above)")

    def delete(self, stack_name: str, name: str) -> None:
        self.cfn.delete_change_set(StackName=stack_name, ChangeSetName=name)


def _no_changes(message: str) -> bool:
    return any(marker in message for marker in NO_CHANGES_MARKERS)


def _change_set_request(spec: StackSpec, change_type: str) -> dict[str, Any]:
    """CreateChangeSet's arguments for a management script's deploy, besides the names."""
    request: dict[str, Any] = dict(
        ChangeSetType=change_type,
        TemplateBody=spec.template_body,
        Parameters=spec.parameters,
        Capabilities=list(spec.capabilities),
        Tags=[{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())],
    )
    if spec.description:
        request["Description"] = spec.description[:1024]
    if spec.role_arn:
        request["RoleARN"] = spec.role_arn
    return request


class StackDeployer:
    def __init__(self, cfn, out: Printer = print, poll_seconds: float = 5.0, clock=time):
        self.cfn, self.out, self.poll_seconds, self.clock = cfn, out, poll_seconds, clock
        self.preview = ChangeSetPreview(cfn, out, poll_seconds)

    def deploy(self, spec: StackSpec, dry_run: bool = False) -> DeployResult:
        existing = describe_stack(self.cfn, spec.stack_name)
        status = existing["StackStatus"] if existing else None
        if status in NOT_UPDATABLE:
            raise DeployError(
                f"stack {spec.stack_name} is {status} and cannot be updated; fix or delete it first "
                f"(aws cloudformation delete-stack --stack-name {spec.stack_name})"
            )
        if status and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
            raise DeployError(f"stack {spec.stack_name} is busy ({status}); try again when it is done")
        change_type = "UPDATE" if status and status != "REVIEW_IN_PROGRESS" else "CREATE"
        change_set = "aurelius-" + datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        self.out(
            f"{spec.stack_name}: {'updating' if change_type == 'UPDATE' else 'creating'} (change set {change_set})"
        )

        if not self.preview.create(spec.stack_name, change_set, **_change_set_request(spec, change_type)):
            self.out(f"{spec.stack_name}: no changes")
            return DeployResult(spec.stack_name, "no-changes", status, stack_outputs(existing or {}))

        sent = {p["ParameterKey"]: p["ParameterValue"] for p in spec.parameters if not p.get("UsePreviousValue")}
        self.preview.show(spec.stack_name, change_set, stack_parameters(existing) if existing else None, sent)
        if dry_run:
            self.preview.delete(spec.stack_name, change_set)
            if change_type == "CREATE":
                # The change set left an empty REVIEW_IN_PROGRESS stack behind; a dry run keeps nothing.
                self.cfn.delete_stack(StackName=spec.stack_name)
            self.out(f"{spec.stack_name}: dry run, nothing executed")
            return DeployResult(spec.stack_name, "dry-run", status, stack_outputs(existing or {}))

        # Events already there are not this operation's; compare ids, not clocks (no skew).
        before = {e["EventId"] for e in self._events(spec.stack_name)}
        self.cfn.execute_change_set(StackName=spec.stack_name, ChangeSetName=change_set)
        final = self._stream_events(spec.stack_name, before)
        stack = describe_stack(self.cfn, spec.stack_name) or {}
        if final not in SUCCESS:
            raise DeployError(f"stack {spec.stack_name} ended {final}: {self._first_failure(spec.stack_name, before)}")
        outputs = stack_outputs(stack)
        for key, value in sorted(outputs.items()):
            self.out(f"  output {key} = {value}")
        return DeployResult(spec.stack_name, change_type.lower(), final, outputs)

    def _events(self, stack_name: str) -> list[dict[str, Any]]:
        """The newest page of stack events (newest first), enough for one operation's progress."""
        return self.cfn.describe_stack_events(StackName=stack_name)["StackEvents"]

    def _stream_events(self, stack_name: str, before: set[str]) -> str:
        seen = set(before)
        while True:
            fresh = [e for e in self._events(stack_name) if e["EventId"] not in seen]
            for event in sorted(fresh, key=lambda e: e["Timestamp"]):
                seen.add(event["EventId"])
                reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
                self.out(
                    f"  {event['Timestamp']:%H:%M:%S} {event['ResourceStatus']:<32} "
                    f"{event['LogicalResourceId']} {event.get('ResourceType', '')}{reason}"
                )
            status = describe_stack(self.cfn, stack_name)
            current = status["StackStatus"] if status else "DELETE_COMPLETE"
            if not current.endswith("_IN_PROGRESS"):
                return current
            self.clock.sleep(self.poll_seconds)

    def _first_failure(self, stack_name: str, before: set[str]) -> str:
        failed = [
            e
            for e in self._events(stack_name)
            if e["EventId"] not in before and e["ResourceStatus"].endswith("_FAILED") and e.get("ResourceStatusReason")
        ]
        if not failed:
            return "see the stack events"
        first = min(failed, key=lambda e: e["Timestamp"])
        return f"{first['LogicalResourceId']}: {first['ResourceStatusReason']}"
