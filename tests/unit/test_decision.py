"""The decision table (docs/design.md, "The decision table"), row by row, over the pure function.

No AWS and no Stubber: each case is what reconcile / status / the CLI would have read, and the
decision it must give. What reconcile *sends* for each decision is in test_reconcile.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from aurelius.core.decision import (
    NOT_UPDATABLE,
    Act,
    Action,
    Observed,
    StackState,
    cancel_refused,
    decide,
    needs_last_token,
    update_refused,
)
from aurelius.core.model_version import (
    ModelAccessDenied,
    ModelMissing,
    ModelVersion,
    VersioningDisabled,
    access_denied_reason,
)
from aurelius.core.tokens import request_token
from aurelius.scripts.stack_deploy import NOT_UPDATABLE as SCRIPTS_NOT_UPDATABLE
from tests.helpers import BUCKET, KEY, MODEL_URI, SERVICE_STACK

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(minutes=30)


def version(version_id: str = "v2", size: int = 100) -> ModelVersion:
    return ModelVersion(BUCKET, KEY, version_id, size)


def stack(
    status: str = "UPDATE_COMPLETE", deployed: str = "v1", deadline: int | None = None, **extra: str
) -> StackState:
    params = {"ClusterName": "c", "ModelS3Uri": MODEL_URI, "ModelVersionId": deployed, **extra}
    if deadline is not None:
        params["RolloutDeadlineSeconds"] = str(deadline)
    return StackState(SERVICE_STACK, status, params, ("CAPABILITY_IAM",), STARTED)


def seen(wanted: ModelVersion | None = None, stack_state: StackState | None = None, **kwargs) -> Observed:
    if wanted is None and "model_problem" not in kwargs:
        wanted = version()
    return Observed(SERVICE_STACK, MODEL_URI, NOW, wanted=wanted, stack=stack_state, **kwargs)


OURS = request_token("auto", "v2", (STARTED).timestamp())
PERSON = "Console-UpdateStack-7d1f"
ROLLED_BACK_V2 = request_token("auto", "v2", (NOW - timedelta(hours=1)).timestamp())
DENIED = ModelAccessDenied(
    ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject"),
    access_denied_reason(BUCKET, KEY, None),
)

# (id, what was read, action, act, finding, words the reason must contain)
TABLE = [
    # 1. an update aurelius started, stuck past its deadline: cancel (whatever S3 says)
    (
        "past-deadline-ours",
        seen(stack_state=stack("UPDATE_IN_PROGRESS", "v2", deadline=600), last_token=OURS),
        Action.CANCELLED,
        Act.CANCEL,
        "PastDeadline",
        ["past its deadline", "cancelling"],
    ),
    (
        "past-deadline-ours-model-deleted",
        seen(
            model_problem=ModelMissing("gone"),
            stack_state=stack("UPDATE_IN_PROGRESS", "v2", deadline=600),
            last_token=OURS,
        ),
        Action.CANCELLED,
        Act.CANCEL,
        "PastDeadline",
        ["past its deadline"],
    ),
    # ... but a person's update is never cancelled
    (
        "past-deadline-not-ours",
        seen(stack_state=stack("UPDATE_IN_PROGRESS", "v2", deadline=600), last_token=PERSON),
        Action.DEFERRED,
        Act.NOTHING,
        "StackBusy",
        ["past its deadline", "never cancelled"],
    ),
    (
        "past-deadline-no-token",
        seen(stack_state=stack("UPDATE_IN_PROGRESS", "v2", deadline=600), last_token=None),
        Action.DEFERRED,
        Act.NOTHING,
        "StackBusy",
        ["never cancelled"],
    ),
    (
        "before-deadline",
        seen(stack_state=stack("UPDATE_IN_PROGRESS", "v2", deadline=3600), last_token=OURS),
        Action.DEFERRED,
        Act.NOTHING,
        "StackBusy",
        ["UPDATE_IN_PROGRESS", "running 30m00s", "30m00s left"],
    ),
    (
        "no-deadline-parameter",
        seen(stack_state=stack("UPDATE_IN_PROGRESS", "v2"), last_token=OURS),
        Action.DEFERRED,
        Act.NOTHING,
        "StackBusy",
        ["no deadline", "RolloutDeadlineSeconds"],
    ),
    # 2. a stack only a person can repair, whatever S3 says
    *[
        (
            f"not-updatable-{s}",
            seen(stack_state=stack(s, "v2")),
            Action.ALARM,
            Act.NOTHING,
            "StackNotUpdatable",
            [s, "cannot be updated"],
        )
        for s in sorted(NOT_UPDATABLE)
    ],
    (
        "not-updatable-even-if-model-missing",
        seen(model_problem=ModelMissing("no model object"), stack_state=stack("UPDATE_ROLLBACK_FAILED")),
        Action.ALARM,
        Act.NOTHING,
        "StackNotUpdatable",
        ["UPDATE_ROLLBACK_FAILED"],
    ),
    # 3. the model object
    (
        "model-missing",
        seen(model_problem=ModelMissing("no model object at s3://b/k"), stack_state=stack()),
        Action.SKIPPED,
        Act.NOTHING,
        "ModelMissing",
        ["no model object", "keeps its pinned version"],
    ),
    (
        "model-missing-no-stack-yet",
        seen(model_problem=ModelMissing("no model object at s3://b/k"), stack_state=None),
        Action.SKIPPED,
        Act.NOTHING,
        "ModelMissing",
        ["no model object"],
    ),
    (
        "access-denied",
        seen(model_problem=DENIED, stack_state=stack()),
        Action.ALARM,
        Act.NOTHING,
        "ModelAccessDenied",
        ["access denied", "s3:GetObject", "s3:ListBucket", f"arn:aws:s3:::{BUCKET}"],
    ),
    (
        "unversioned",
        seen(model_problem=VersioningDisabled("turn on versioning"), stack_state=stack()),
        Action.ALARM,
        Act.NOTHING,
        "VersioningDisabled",
        ["versioning"],
    ),
    ("empty-model", seen(version("v2", size=0), stack()), Action.SKIPPED, Act.NOTHING, "EmptyModel", ["empty"]),
    # 4. the stack
    ("stack-missing", seen(stack_state=None), Action.ALARM, Act.NOTHING, "StackMissing", ["service stack", "missing"]),
    *[
        (f"busy-{s}", seen(stack_state=stack(s, "v1")), Action.DEFERRED, Act.NOTHING, "StackBusy", [s])
        for s in (
            "UPDATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "CREATE_IN_PROGRESS",
        )
    ],
    (
        "busy-with-the-wanted-version",
        seen(stack_state=stack("UPDATE_IN_PROGRESS", "v2")),
        Action.DEFERRED,
        Act.NOTHING,
        "StackBusy",
        ["UPDATE_IN_PROGRESS"],
    ),
    (
        "in-sync",
        seen(stack_state=stack("UPDATE_COMPLETE", "v2")),
        Action.IN_SYNC,
        Act.NOTHING,
        "InSync",
        ["current version"],
    ),
    (
        "in-sync-after-a-rollback",
        seen(stack_state=stack("UPDATE_ROLLBACK_COMPLETE", "v2"), last_token=ROLLED_BACK_V2),
        Action.IN_SYNC,
        Act.NOTHING,
        "InSync",
        [],
    ),
    (
        "other-model-uri-is-not-in-sync",
        seen(
            stack_state=replace(
                stack("UPDATE_COMPLETE", "v2"), parameters={"ModelS3Uri": "s3://other/k", "ModelVersionId": "v2"}
            )
        ),
        Action.STARTED,
        Act.UPDATE,
        None,
        ["update started to v2"],
    ),
    (
        "refresh-when-in-sync",
        seen(stack_state=stack("UPDATE_COMPLETE", "v2"), refresh=True),
        Action.STARTED,
        Act.UPDATE,
        None,
        [],
    ),
    # the failed-version mark
    (
        "failed-version",
        seen(stack_state=stack("UPDATE_ROLLBACK_COMPLETE", "v1"), last_token=ROLLED_BACK_V2),
        Action.SKIPPED,
        Act.NOTHING,
        "FailedVersion",
        ["rolled back", "aurelius deploy"],
    ),
    (
        "failed-version-forced",
        seen(stack_state=stack("UPDATE_ROLLBACK_COMPLETE", "v1"), last_token=ROLLED_BACK_V2, force=True),
        Action.STARTED,
        Act.UPDATE,
        None,
        [],
    ),
    (
        "newer-version-after-a-rollback",
        seen(version("v3"), stack("UPDATE_ROLLBACK_COMPLETE", "v1"), last_token=ROLLED_BACK_V2),
        Action.STARTED,
        Act.UPDATE,
        None,
        [],
    ),
    (
        "rollback-of-a-persons-update-marks-nothing",
        seen(stack_state=stack("UPDATE_ROLLBACK_COMPLETE", "v1"), last_token=PERSON),
        Action.STARTED,
        Act.UPDATE,
        None,
        [],
    ),
    (
        "not-an-aurelius-stack",
        seen(stack_state=StackState(SERVICE_STACK, "UPDATE_COMPLETE", {"ClusterName": "c"})),
        Action.ALARM,
        Act.NOTHING,
        "NotAnAureliusStack",
        ["no parameter ModelS3Uri"],
    ),
    # 5. anything else: update
    (
        "new-version",
        seen(stack_state=stack("UPDATE_COMPLETE", "v1")),
        Action.STARTED,
        Act.UPDATE,
        None,
        ["update started to v2"],
    ),
    (
        "new-version-after-create",
        seen(stack_state=stack("CREATE_COMPLETE", "v1")),
        Action.STARTED,
        Act.UPDATE,
        None,
        [],
    ),
]


@pytest.mark.parametrize(
    ("read", "action", "act", "finding", "words"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_decision_table(read, action, act, finding, words):
    # Given what was read; When deciding
    decision = decide(read)
    # Then the action, what to do, the named state and a reason a person can act on
    assert (decision.action, decision.act, decision.finding) == (action, act, finding), decision.reason
    for word in words:
        assert word in decision.reason


def test_the_scripts_refuse_exactly_the_states_the_redeployer_alarms_on():
    assert SCRIPTS_NOT_UPDATABLE is NOT_UPDATABLE


def test_deadline_is_the_update_start_plus_the_stack_parameter():
    # Given an update that started 30 minutes ago with a 20-minute deadline
    rollout = stack("UPDATE_IN_PROGRESS", deadline=1200).rollout()
    # Then the deadline is LastUpdatedTime + RolloutDeadlineSeconds
    assert rollout.started == STARTED and rollout.deadline == STARTED + timedelta(seconds=1200)
    assert rollout.overdue(NOW) and not rollout.overdue(STARTED + timedelta(seconds=1200))
    assert "passed 10m00s ago" in rollout.describe(NOW)


@pytest.mark.parametrize(
    "status", ["UPDATE_COMPLETE", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"]
)
def test_only_update_in_progress_has_a_rollout_with_a_deadline(status):
    # CancelUpdateStack works only in UPDATE_IN_PROGRESS, so no other state gets a deadline
    assert stack(status, deadline=60).rollout() is None


@pytest.mark.parametrize("value", ["", "0", "soon"])
def test_an_unusable_deadline_parameter_means_no_deadline(value):
    state = replace(
        stack("UPDATE_IN_PROGRESS"),
        parameters={"ModelS3Uri": MODEL_URI, "ModelVersionId": "v1", "RolloutDeadlineSeconds": value},
    )
    assert state.rollout().deadline is None


@pytest.mark.parametrize(
    ("state", "force", "needed"),
    [
        (stack("UPDATE_ROLLBACK_COMPLETE"), False, True),  # the failed mark
        (stack("UPDATE_ROLLBACK_COMPLETE"), True, False),  # a forced deploy ignores the mark
        (stack("UPDATE_IN_PROGRESS", deadline=600), False, True),  # overdue: whose update is it?
        (stack("UPDATE_IN_PROGRESS", deadline=3600), False, False),
        (stack("UPDATE_COMPLETE"), False, False),
        (None, False, False),
    ],
)
def test_the_stack_events_are_read_only_when_the_decision_needs_the_token(state, force, needed):
    assert needs_last_token(state, NOW, force) is needed


@pytest.mark.parametrize(
    ("message", "action", "finding"),
    [
        ("No updates are to be performed.", Action.IN_SYNC, "InSync"),
        (
            f"Stack:arn:aws:cloudformation:us-east-1:123456789012:stack/{SERVICE_STACK}/x is in UPDATE_IN_PROGRESS state and can not be updated.",
            Action.DEFERRED,
            "StackBusy",
        ),
        (
            f"Stack:arn:aws:cloudformation:us-east-1:123456789012:stack/{SERVICE_STACK}/x is in UPDATE_ROLLBACK_FAILED state and can not be updated.",
            Action.ALARM,
            "StackNotUpdatable",
        ),
        (f"Stack [{SERVICE_STACK}] does not exist", Action.ALARM, "StackMissing"),
    ],
)
def test_update_stack_answers_map_to_decisions(message, action, finding):
    decision = update_refused(message)
    assert (decision.action, decision.finding) == (action, finding)


def test_an_unknown_update_stack_error_is_not_decided_here():
    assert update_refused("Rate exceeded") is None


def test_cancel_refused_because_the_update_just_ended_defers():
    decision = cancel_refused("CancelUpdateStack cannot be called from current stack status")
    assert (decision.action, decision.act, decision.finding) == (Action.DEFERRED, Act.NOTHING, "StackBusy")
    assert cancel_refused("Access Denied") is None


# ---------------------------------------------------------------------------- what the act sends
def test_an_update_decision_carries_the_token_and_every_parameter_the_act_sends():
    # Given v2 is wanted and the stack runs v1 with one more parameter
    decision = decide(seen(version("v2"), stack()))
    # Then the decision holds the whole UpdateStack: an auto token for v2 at the time read, the two
    # new values, and every other parameter kept
    update = decision.update
    assert decision.act is Act.UPDATE and update is not None
    assert decision.token == request_token("auto", "v2", NOW.timestamp())
    assert update.kind == "auto" and dict(update.values) == {"ModelS3Uri": MODEL_URI, "ModelVersionId": "v2"}
    assert list(update.parameters) == [
        {"ParameterKey": "ClusterName", "UsePreviousValue": True},
        {"ParameterKey": "ModelS3Uri", "ParameterValue": MODEL_URI},
        {"ParameterKey": "ModelVersionId", "ParameterValue": "v2"},
    ]
    assert update.capabilities == ("CAPABILITY_IAM",)


@pytest.mark.parametrize(
    ("kwargs", "deployed", "kind"),
    [
        ({"force": True}, "v1", "force"),
        ({"pinned": True}, "v1", "force"),
        ({}, "v1", "auto"),
        ({"refresh": True}, "v2", "refresh"),
        ({"force": True}, "v2", None),
    ],
)
def test_the_token_kind_says_who_asked_and_a_refresh_changes_only_the_nonce(kwargs, deployed, kind):
    # Given the stack runs `deployed` (with a nonce parameter) and v2 is wanted
    decision = decide(seen(version("v2"), stack(deployed=deployed, DeploymentNonce="old"), **kwargs))
    if kind is None:  # in sync and no refresh asked: even a forced deploy has nothing to send
        assert decision.act is Act.NOTHING and decision.update is None and decision.token is None
        return
    # Then the token names who asked; only a refresh puts its token in the nonce (its one change)
    assert decision.update.kind == kind and decision.token.startswith(f"aurelius-{kind}-")
    assert decision.update.values.get("DeploymentNonce") == (decision.token if kind == "refresh" else None)


def test_a_cancel_decision_carries_the_cancel_token_with_the_updates_digest():
    decision = decide(seen(stack_state=stack("UPDATE_IN_PROGRESS", "v2", deadline=600), last_token=OURS))
    assert decision.act is Act.CANCEL and decision.token.startswith("aurelius-cancel-")
    assert decision.token.split("-")[2] == OURS.split("-")[2]


def test_the_failed_mark_is_known_to_a_forced_decision_without_stopping_it():
    # Given v2's own rollout rolled back, and an operator forces v2
    decision = decide(
        seen(version("v2"), stack("UPDATE_ROLLBACK_COMPLETE", "v1"), last_token=ROLLED_BACK_V2, force=True)
    )
    # Then it updates, and says the mark is there (aurelius deploy shows it)
    assert decision.act is Act.UPDATE and decision.failed_mark
