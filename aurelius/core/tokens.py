"""The request token aurelius puts on its CloudFormation calls, and the one reader of it.

``ClientRequestToken`` (1-128 characters, ``[a-zA-Z0-9][-a-zA-Z0-9]*``) is copied by
CloudFormation onto every stack event of the operation it started
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html). aurelius'
tokens name the model version by a digest (a VersionId may hold characters a token may not), so
the stack's own event history records which version each update tried: docs/design.md, "The
request token and the failed-version mark".

    aurelius-{auto|force|refresh}-{sha256(VersionId)[:16]}-{unix time}   UpdateStack
    aurelius-cancel-{sha256(VersionId)[:16]}-{unix time}                 CancelUpdateStack past the deadline
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TOKEN_PATTERN = re.compile(r"^aurelius-(auto|force|refresh)-([0-9a-f]{16})-\d+$")
CANCEL_TOKEN_PATTERN = re.compile(r"^aurelius-cancel-([0-9a-f]{16}|unknown)-\d+$")
STACK_RESOURCE_TYPE = "AWS::CloudFormation::Stack"


@dataclass(frozen=True)
class Token:
    """An aurelius token, read: its kind (auto, force, refresh or cancel) and the version digest
    (``unknown`` for a cancel whose update had no aurelius token)."""

    kind: str
    digest: str

    @property
    def is_update(self) -> bool:
        return self.kind != "cancel"


def parse(token: str | None) -> Token | None:
    """The one reader of aurelius tokens (None: not one of ours, or no token)."""
    if match := TOKEN_PATTERN.match(token or ""):
        return Token(match.group(1), match.group(2))
    if match := CANCEL_TOKEN_PATTERN.match(token or ""):
        return Token("cancel", match.group(1))
    return None


def version_digest(version_id: str) -> str:
    return hashlib.sha256(version_id.encode("utf-8")).hexdigest()[:16]


def request_token(kind: str, version_id: str, now: float) -> str:
    """The token of an UpdateStack (kind auto, force or refresh) or a CancelUpdateStack (cancel)."""
    return f"aurelius-{kind}-{version_digest(version_id)}-{int(now)}"


def cancel_token(update_token: str | None, now: float) -> str:
    """The token of a CancelUpdateStack of the update ``update_token`` started: same digest."""
    return f"aurelius-cancel-{token_version_digest(update_token) or 'unknown'}-{int(now)}"


def is_aurelius_update(token: str | None) -> bool:
    parsed = parse(token)
    return parsed is not None and parsed.is_update


def is_aurelius_cancel(token: str | None) -> bool:
    parsed = parse(token)
    return parsed is not None and not parsed.is_update


def token_version_digest(token: str | None) -> str | None:
    """The version digest an aurelius update token carries (None for any other token)."""
    parsed = parse(token)
    return parsed.digest if parsed is not None and parsed.is_update else None


def is_stack_event(event: Mapping[str, Any], stack_name: str) -> bool:
    """An event of the stack itself. A nested stack is a resource of type
    AWS::CloudFormation::Stack too, but with its own logical id: its events do not count."""
    return event.get("ResourceType") == STACK_RESOURCE_TYPE and event.get("LogicalResourceId") == stack_name


def last_update_token(cfn, stack_name: str) -> str | None:
    """ClientRequestToken of the newest update that started on the stack (None if it had none).

    The newest page of events is enough: an update writes its stack-level UPDATE_IN_PROGRESS
    first, and the rollback that follows writes a few dozen events at most.
    """
    for event in cfn.describe_stack_events(StackName=stack_name)["StackEvents"]:  # newest first
        if is_stack_event(event, stack_name) and event.get("ResourceStatus") == "UPDATE_IN_PROGRESS":
            return event.get("ClientRequestToken")
    return None
