"""In-memory FAKES of S3 and CloudFormation for the property tests. Not AWS, not moto.

Why fakes: hypothesis runs hundreds of event sequences of dozens of steps each; a moto stack
deploy per example would take seconds. These fakes implement only the calls a reconcile makes
(HeadObject, DescribeStacks, DescribeStackEvents, UpdateStack), answer them in the shapes and
with the error codes and messages AWS uses (docs/aws.md; the same strings moto and the fault tests
use), and model what moto cannot: an update stays UPDATE_IN_PROGRESS until the test says the
rollout finished, and someone else's update can make the stack busy at any moment, also between
our DescribeStacks and our UpdateStack.

The fake CloudFormation also *checks* every UpdateStack it receives and records what breaks the
redeploy loop's promises (``violations``), so a property test can assert there are none:
- an UpdateStack for the version already deployed,
- an UpdateStack that would move the service to an older model version than it runs,
- an UpdateStack for anything but the version S3 calls current,
- an UpdateStack that leaves a parameter out (it would fall back to its Default),
- an UpdateStack sent to a busy stack is allowed (the answer is the busy error) but counted,
- a CancelUpdateStack of an update someone else started, or before the update's deadline,
- an UpdateStack for a version whose update was cancelled while that cancel is the stack's last
  word (UPDATE_ROLLBACK_COMPLETE: the version carries the failed mark).

Time: an update's start (LastUpdatedTime) is the real clock when it starts, as reconcile reads
the real clock; ``stall`` moves the running update's start two hours back, past any deadline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def client_error(operation: str, code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@dataclass
class FakeS3:
    """One versioned bucket with one model key. Version ids are opaque (not ordered), as on S3."""

    bucket: str
    key: str
    versions: list[tuple[str, int]] = field(default_factory=list)  # (version id, size), oldest first

    def upload(self, size: int = 1024) -> str:
        version_id = hashlib.sha256(f"{len(self.versions)}".encode()).hexdigest()[:32]
        self.versions.append((version_id, size))
        return version_id

    def rank(self, version_id: str | None) -> int:
        """Upload order of a version (-1 for unknown)."""
        return next((i for i, (v, _) in enumerate(self.versions) if v == version_id), -1)

    @property
    def current(self) -> str | None:
        return self.versions[-1][0] if self.versions else None

    def head_object(self, Bucket: str, Key: str, VersionId: str | None = None) -> dict[str, Any]:
        found = [
            (v, s) for v, s in self.versions if Bucket == self.bucket and Key == self.key and (VersionId in (None, v))
        ]
        if not found:
            raise client_error("HeadObject", "404", "Not Found", 404)
        version_id, size = found[-1]
        return {"VersionId": version_id, "ContentLength": size, "LastModified": NOW}


@dataclass
class FakeCloudFormation:
    """One service stack with the aurelius parameters; updates roll out until ``finish_rollout``."""

    stack_name: str
    s3: FakeS3
    parameters: dict[str, str]
    status: str = "CREATE_COMPLETE"
    busy_before_next_update: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)  # newest first, as AWS returns them
    updates: list[str] = field(default_factory=list)  # model versions of accepted UpdateStack calls
    refused_busy: int = 0
    violations: list[str] = field(default_factory=list)
    last_updated: datetime | None = None  # start of the newest update (LastUpdatedTime)
    running_token: str | None = None  # token of the update running now
    before_update: dict[str, str] = field(default_factory=dict)  # parameters a rollback restores
    cancelled: list[str] = field(default_factory=list)  # versions cancelled since the last update began

    @property
    def stack_id(self) -> str:
        return f"arn:aws:cloudformation:us-east-1:123456789012:stack/{self.stack_name}/fake"

    @property
    def deployed(self) -> str:
        return self.parameters["ModelVersionId"]

    # ---------------------------------------------------------------- the API a reconcile calls
    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName != self.stack_name:
            raise client_error("DescribeStacks", "ValidationError", f"Stack with id {StackName} does not exist")
        stack = {
            "StackName": self.stack_name,
            "StackId": self.stack_id,
            "StackStatus": self.status,
            "CreationTime": NOW,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
            "Capabilities": ["CAPABILITY_IAM"],
        }
        if self.last_updated is not None:
            stack["LastUpdatedTime"] = self.last_updated
        return {"Stacks": [stack]}

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:
        return {"StackEvents": list(self.events)}

    def update_stack(self, **kwargs: Any) -> dict[str, Any]:
        if self.busy_before_next_update:  # someone else's update started after our DescribeStacks
            self.busy_before_next_update = False
            self.start_other_update()
        if self.status.endswith("_IN_PROGRESS"):
            self.refused_busy += 1
            raise client_error(
                "UpdateStack",
                "ValidationError",
                f"Stack:{self.stack_id} is in {self.status} state and can not be updated.",
            )
        sent = {p["ParameterKey"]: p for p in kwargs.get("Parameters", [])}
        if set(sent) != set(self.parameters):
            self.violations.append(
                f"UpdateStack parameters {sorted(sent)} != stack parameters {sorted(self.parameters)}"
            )
        if not kwargs.get("UsePreviousTemplate"):
            self.violations.append("UpdateStack without UsePreviousTemplate")
        new = {
            k: (self.parameters[k] if p.get("UsePreviousValue") else p["ParameterValue"])
            for k, p in sent.items()
            if k in self.parameters
        }
        wanted = new.get("ModelVersionId")
        if wanted == self.deployed:
            self.violations.append(f"UpdateStack for the deployed version {wanted}")
        if self.s3.rank(wanted) < self.s3.rank(self.deployed):
            self.violations.append(
                f"UpdateStack to older version #{self.s3.rank(wanted)} over #{self.s3.rank(self.deployed)}"
            )
        if wanted != self.s3.current:
            self.violations.append(f"UpdateStack for {wanted}, not S3's current version {self.s3.current}")
        if wanted in self.cancelled:
            self.violations.append(f"UpdateStack for {wanted}, whose update was cancelled at its deadline")
        if new == self.parameters:
            raise client_error("UpdateStack", "ValidationError", "No updates are to be performed.")
        self.before_update = dict(self.parameters)
        self.parameters = {**self.parameters, **new}
        self.updates.append(wanted)
        self._status("UPDATE_IN_PROGRESS", kwargs.get("ClientRequestToken"))
        return {"StackId": self.stack_id}

    def cancel_update_stack(self, StackName: str, ClientRequestToken: str | None = None) -> dict[str, Any]:
        if self.status != "UPDATE_IN_PROGRESS":
            raise client_error(
                "CancelUpdateStack", "ValidationError", "CancelUpdateStack cannot be called from current stack status"
            )
        deadline = int(self.parameters.get("RolloutDeadlineSeconds", "0") or 0)
        if not (self.running_token or "").startswith("aurelius-"):
            self.violations.append(f"CancelUpdateStack of someone else's update ({self.running_token})")
        if (
            not deadline
            or self.last_updated is None
            or datetime.now(UTC) <= self.last_updated + timedelta(seconds=deadline)
        ):
            self.violations.append("CancelUpdateStack before the update's deadline")
        # CloudFormation rolls back (at once, in this fake); the cancel's token is on the rollback.
        self.cancelled.append(self.parameters["ModelVersionId"])
        self.parameters = dict(self.before_update)
        self._status("UPDATE_ROLLBACK_IN_PROGRESS", ClientRequestToken)
        self._status("UPDATE_ROLLBACK_COMPLETE", ClientRequestToken)
        return {}

    # ---------------------------------------------------------------- what happens outside
    def stall(self) -> None:
        """The running update has been running for two hours (it never stabilises)."""
        if self.status == "UPDATE_IN_PROGRESS" and self.last_updated is not None:
            self.last_updated -= timedelta(hours=2)

    def finish_rollout(self) -> bool:
        """The running update (ours or someone else's) completes; True if one was running."""
        if self.status != "UPDATE_IN_PROGRESS":
            return False
        self._status("UPDATE_COMPLETE", None)
        return True

    def start_other_update(self) -> None:
        """A person's deploy-service.py run (image, settings): busy, model parameters kept."""
        if not self.status.endswith("_IN_PROGRESS"):
            self.before_update = dict(self.parameters)
            self._status("UPDATE_IN_PROGRESS", "person-deploy-service")

    def _status(self, status: str, token: str | None) -> None:
        self.status = status
        if status == "UPDATE_IN_PROGRESS":
            # A new update: the failed mark of a cancelled version ends here (docs/design.md).
            self.last_updated, self.running_token, self.cancelled = datetime.now(UTC), token, []
        event = {
            "StackId": self.stack_id,
            "EventId": f"e{len(self.events)}",
            "StackName": self.stack_name,
            "LogicalResourceId": self.stack_name,
            "ResourceType": "AWS::CloudFormation::Stack",
            "ResourceStatus": status,
            "Timestamp": NOW,
        }
        if token:
            event["ClientRequestToken"] = token
        self.events.insert(0, event)


class NoSns:
    """The handlers publish only when a topic is configured; the property tests configure none."""

    def publish(self, **kwargs: Any) -> None:  # pragma: no cover - never called
        raise AssertionError(f"unexpected SNS publish {kwargs}")
