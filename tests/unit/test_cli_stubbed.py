"""`aurelius status / deploy / history` on stack states moto cannot produce, with botocore Stubber.

moto finishes every update synchronously and never rolls back (docs/moto.md), so a
busy stack, a rolled-back or stuck update and a failed-marked version are stubbed here: each test
lists the AWS calls the command must make, in order, and what AWS answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY

from aurelius import cli
from aurelius.cli.commands import deploy as deploy_command
from aurelius.core.tokens import request_token, version_digest
from tests.helpers import BUCKET, KEY, MODEL_URI, SERVICE_STACK
from tests.stubs import STACK_ID, StubbedAws, described_stack

STACK = SERVICE_STACK
URI = MODEL_URI
TASK = "arn:aws:ecs:us-east-1:123456789012:task-definition/aurelius-task-local-demo"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
UPLOADED = {"v1": T0 - timedelta(days=2), "v2": T0 - timedelta(days=1), "v3": T0 - timedelta(hours=1)}
DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # a model's sha256 (aurelius-sha256)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(
    status: str, minute: int, token: str | None = None, logical: str = STACK, kind: str = "AWS::CloudFormation::Stack"
) -> dict:
    found = {
        "StackId": STACK_ID,
        "EventId": f"{logical}-{status}-{minute}",
        "StackName": STACK,
        "LogicalResourceId": logical,
        "ResourceType": kind,
        "ResourceStatus": status,
        "Timestamp": at(minute),
    }
    if token:
        found["ClientRequestToken"] = token
    return found


def token(kind: str, version: str, minute: int) -> str:
    return request_token(kind, version, at(minute).timestamp())


class StartsWith(str):
    """Matches any string with this prefix in Stubber's expected parameters."""

    def __eq__(self, other):
        return isinstance(other, str) and other.startswith(str(self))

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__


class Aws(StubbedAws):
    """Stubbed S3 and CloudFormation clients, one call at a time, in the order the CLI makes them."""

    # S3
    def head(self, version: str, named: bool = True):
        expected = {"Bucket": BUCKET, "Key": KEY, **({"VersionId": version} if named else {})}
        self.s3_stub.add_response(
            "head_object", {"VersionId": version, "ContentLength": 2048, "LastModified": UPLOADED[version]}, expected
        )

    def signatures(self, *versions: str, signed: str | None = None):
        """What `aurelius history` reads per version shown: HeadObject (its digest metadata) and, for
        the ``signed`` one, HeadObject on its sidecar."""
        for version in versions:
            metadata = {"aurelius-sha256": DIGEST} if version == signed else {}
            self.s3_stub.add_response(
                "head_object",
                {"VersionId": version, "ContentLength": 2048, "Metadata": metadata},
                {"Bucket": BUCKET, "Key": KEY, "VersionId": version},
            )
            if version == signed:
                self.s3_stub.add_response("head_object", {}, {"Bucket": BUCKET, "Key": f"{KEY}.sig/{DIGEST}"})

    def head_missing(self, version: str):
        self.s3_stub.add_client_error(
            "head_object",
            "404",
            "Not Found",
            http_status_code=404,
            expected_params={"Bucket": BUCKET, "Key": KEY, "VersionId": version},
        )

    def versions(self, *ids: str):
        listed = [
            {"Key": KEY, "VersionId": v, "IsLatest": i == 0, "LastModified": UPLOADED[v], "Size": 2048}
            for i, v in enumerate(sorted(ids, key=UPLOADED.get, reverse=True))
        ]
        listed.append({"Key": KEY + ".bak", "VersionId": "other-key", "IsLatest": True, "LastModified": T0, "Size": 1})
        self.s3_stub.add_response("list_object_versions", {"Versions": listed}, {"Bucket": BUCKET, "Prefix": KEY})

    # CloudFormation
    def describe(self, status: str, version: str, **running):
        self.describe_stacks(described_stack(status, version, created=T0, **running))

    def events(self, events: list[dict], next_token: str | None = None, after: str | None = None):
        answer = {"StackEvents": events, **({"NextToken": next_token} if next_token else {})}
        self.cfn_stub.add_response(
            "describe_stack_events", answer, {"StackName": STACK, **({"NextToken": after} if after else {})}
        )

    def resources(self, revision: int):
        rows = [
            {
                "LogicalResourceId": "TaskDefinition",
                "PhysicalResourceId": f"{TASK}:{revision}",
                "ResourceType": "AWS::ECS::TaskDefinition",
                "Timestamp": T0,
                "ResourceStatus": "UPDATE_COMPLETE",
            },
        ]
        self.cfn_stub.add_response("describe_stack_resources", {"StackResources": rows}, {"StackName": STACK})

    def update(self, expected_token):
        self.cfn_stub.add_response(
            "update_stack",
            {"StackId": STACK_ID},
            {
                "StackName": STACK,
                "UsePreviousTemplate": True,
                "Parameters": ANY,
                "Capabilities": ["CAPABILITY_IAM"],
                "ClientRequestToken": expected_token,
            },
        )

    def run(self, capsys, *argv: str) -> tuple[int, str, str]:
        with self.active():
            code = cli.main(list(argv), clients=self.clients)
            out, err = capsys.readouterr()
            # A Stubber mismatch is a BotoCoreError, which the CLI reports as an AWS error: surface it.
            assert "Expected parameters" not in err and "Unexpected API" not in err, err
        return code, out, err


@pytest.fixture
def aws():
    return Aws()


# ---------------------------------------------------------------------------- deploy
@pytest.mark.parametrize(
    "status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"]
)
def test_deploy_refuses_a_busy_stack_with_exit_1_and_sends_no_update(aws, capsys, status):
    # Given the chosen version exists and the stack is busy
    aws.head("v2")
    aws.describe(status, "v1")
    # When an operator deploys it
    code, out, err = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "v2")
    # Then it is refused, naming the state; Stubber fails on any UpdateStack
    assert code == 1
    assert "refused" in err and "busy" in err and status in err


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED"])
def test_deploy_refuses_a_stack_that_cannot_be_updated_with_exit_1(aws, capsys, status):
    aws.head("v2")
    aws.describe(status, "v1")
    code, _, err = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "v2")
    assert code == 1
    assert "cannot be updated" in err and status in err


def test_deploy_refusing_a_busy_stack_says_how_long_the_update_has_run_and_its_deadline(aws, capsys):
    # Given an update that started 5 minutes ago with a one-hour deadline
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    aws.head("v2")
    aws.describe("UPDATE_IN_PROGRESS", "v1", started=started, deadline=3600)
    # When / Then: refused, with the rollout's age and deadline
    code, _, err = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "v2")
    assert code == 1 and "busy (UPDATE_IN_PROGRESS, running 5m" in err
    assert f"deadline {started + timedelta(hours=1):%Y-%m-%d %H:%M:%SZ}" in err


def test_deploy_dry_run_refuses_a_busy_stack_before_creating_a_change_set(aws, capsys):
    aws.head("v2")
    aws.describe("UPDATE_IN_PROGRESS", "v1")
    code, _, err = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "v2", "--dry-run")
    assert code == 1 and "busy" in err  # and Stubber saw no CreateChangeSet


def dry_run_reads(aws: Aws) -> dict:
    """The reads of `aurelius deploy --version-id v2 --dry-run` before its change set (stack on v1,
    v2 S3's current version); returns the names every change-set call carries."""
    aws.head("v2")
    aws.describe("UPDATE_COMPLETE", "v1")
    aws.versions("v1", "v2")
    named = {"StackName": STACK, "ChangeSetName": StartsWith(f"aurelius-dry-run-{version_digest('v2')}-")}
    aws.cfn_stub.add_response(
        "create_change_set",
        {"Id": "cs-1", "StackId": STACK_ID},
        {
            **named,
            "ChangeSetType": "UPDATE",
            "UsePreviousTemplate": True,
            "Parameters": ANY,
            "Capabilities": ["CAPABILITY_IAM"],
            "Description": ANY,
        },
    )
    return named


def resource_change(logical: str, kind: str, replacement: str) -> dict:
    return {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": logical,
            "ResourceType": kind,
            "Replacement": replacement,
        },
    }


def test_deploy_dry_run_prints_every_page_of_the_change_set_then_deletes_it(aws, capsys):
    # Given a change set that CloudFormation lists on two pages (moto never pages it)
    named = dry_run_reads(aws)
    aws.cfn_stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE"}, named)  # the waiter
    first = resource_change("TaskDefinition", "AWS::ECS::TaskDefinition", "True")
    aws.cfn_stub.add_response("describe_change_set", {"Changes": [first], "NextToken": "page-2"}, named)
    second = resource_change("Service", "AWS::ECS::Service", "False")
    aws.cfn_stub.add_response("describe_change_set", {"Changes": [second]}, {**named, "NextToken": "page-2"})
    aws.cfn_stub.add_response("delete_change_set", {}, named)
    # When an operator previews the deploy
    code, out, _ = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "v2", "--dry-run")
    # Then both pages are shown, the parameter change first, and the change set is deleted (Stubber: no update)
    assert code == 0
    assert "parameter ModelVersionId: v1 -> v2" in out
    assert "Modify  TaskDefinition AWS::ECS::TaskDefinition (replacement: True)" in out
    assert "Modify  Service AWS::ECS::Service\n" in out
    assert out.rstrip().endswith("dry run: change set deleted, nothing deployed")


def test_deploy_dry_run_whose_change_set_fails_exits_1_with_the_reason_and_deletes_it(aws, capsys):
    # Given CloudFormation marks the change set FAILED for a reason other than "no changes"
    named = dry_run_reads(aws)
    failed = {"Status": "FAILED", "StatusReason": "Parameter ModelS3Uri failed its AllowedPattern"}
    aws.cfn_stub.add_response("describe_change_set", failed, named)  # the waiter gives up
    aws.cfn_stub.add_response("describe_change_set", failed, named)  # the reason, read once more
    aws.cfn_stub.add_response("delete_change_set", {}, named)
    # When an operator previews the deploy
    code, _, err = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "v2", "--dry-run")
    # Then it is refused with CloudFormation's reason, and the failed change set is deleted
    assert code == 1
    assert "refused" in err and "failed its AllowedPattern" in err


def test_deploy_of_an_unknown_version_id_exits_2_and_sends_nothing(aws, capsys):
    # Given S3 has no such version of the model object (the one observation also reads the stack)
    aws.head_missing("nope")
    aws.describe("UPDATE_COMPLETE", "v1")
    # When / Then: exit 2, a clear message, and no write (Stubber has none queued)
    code, _, err = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "nope")
    assert code == 2
    assert "unknown model version 'nope'" in err


def test_deploy_retries_a_failed_version_with_a_force_token_which_clears_its_mark(aws, capsys):
    # Given v2's rollout rolled back (the newest update's token carries v2's digest) and v1 runs
    failed = [event("UPDATE_ROLLBACK_COMPLETE", 9), event("UPDATE_IN_PROGRESS", 5, token("auto", "v2", 5))]
    aws.head("v2")
    aws.describe("UPDATE_ROLLBACK_COMPLETE", "v1")
    aws.events(failed)  # the failed mark
    aws.versions("v1", "v2", "v3")  # the deployed version's upload time; forward or back
    # When the operator deploys v2 again: the update acts on that one observation
    aws.update(StartsWith(f"aurelius-force-{version_digest('v2')}-"))
    aws.describe("UPDATE_IN_PROGRESS", "v2")
    code, out, _ = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "v2")
    # Then the update is sent with a force token (the newest attempt now, so the mark is gone)
    assert code == 0
    assert "failed mark" in out and "update started" in out
    assert "UPDATE_IN_PROGRESS" in out and "aurelius status --environment local" in out


def test_deploy_wait_exits_1_when_the_update_rolls_back(aws, capsys, monkeypatch):
    # Given a healthy stack on v1 and an update to v2 that CloudFormation rolls back
    monkeypatch.setattr(deploy_command, "POLL_SECONDS", 0)
    aws.head("v2")
    aws.describe("UPDATE_COMPLETE", "v1")
    aws.versions("v1", "v2", "v3")
    aws.update(StartsWith(f"aurelius-force-{version_digest('v2')}-"))
    aws.describe("UPDATE_IN_PROGRESS", "v2")
    aws.describe("UPDATE_ROLLBACK_COMPLETE", "v1")
    # When the operator waits for it
    code, out, err = aws.run(capsys, "deploy", "--environment", "local", "--version-id", "v2", "--wait")
    # Then the command fails, saying how the update ended
    assert code == 1
    assert "failed" in err and "UPDATE_ROLLBACK_COMPLETE" in err
    assert "direction: forward" in out


def test_deploy_latest_when_it_is_already_deployed_sends_no_update(aws, capsys):
    # Given the current version (HeadObject without VersionId) is the deployed one
    aws.head("v2", named=False)
    aws.describe("UPDATE_COMPLETE", "v2")
    # When / Then: nothing to do, exit 0, and Stubber saw no UpdateStack
    code, out, _ = aws.run(capsys, "deploy", "--environment", "local", "--latest")
    assert code == 0 and "already deployed" in out


# ---------------------------------------------------------------------------- status
def status_calls(
    aws: Aws,
    status: str,
    deployed: str,
    newest: str,
    events: list[dict],
    revision: int = 3,
    token_read: bool = False,
    **running,
):
    """The reads of `aurelius status` for one environment, in order (per client)."""
    aws.describe(status, deployed, **running)
    aws.head(newest, named=False)
    if token_read:
        aws.events(events)  # the newest update's token: the failed mark, or whose update is past its deadline
    if deployed != newest:  # the newest version's HeadObject already says it all
        aws.head(deployed)
    aws.resources(revision)
    aws.events(events)  # the last deploy
    aws.versions("v1", "v2", "v3")


def test_status_reports_failed_when_the_newest_version_rolled_back(aws, capsys):
    # Given v2 is newest, its auto rollout rolled back, and v1 runs on revision 3
    events = [
        event("UPDATE_ROLLBACK_COMPLETE", 9),
        event("UPDATE_ROLLBACK_IN_PROGRESS", 7),
        event("TaskDefinition", 6, logical="TaskDefinition", kind="AWS::ECS::TaskDefinition"),
        event("UPDATE_IN_PROGRESS", 5, token("auto", "v2", 5)),
        event("CREATE_COMPLETE", 1),
    ]
    status_calls(aws, "UPDATE_ROLLBACK_COMPLETE", "v1", "v2", events, token_read=True)
    # When
    code, out, _ = aws.run(capsys, "status", "--environment", "local", "--json")
    # Then: state failed, exit 1, the last deploy rolled back
    assert code == 1
    (env,) = json.loads(out)["environments"]
    assert env["state"] == "failed" and "rolled back" in env["reason"]
    assert env["deployed"]["version_id"] == "v1" and env["newest"]["version_id"] == "v2"
    assert env["revision"] == 3
    assert env["last_deploy"]["outcome"] == "rolled back" and env["last_deploy"]["version_id"] == "v2"


def test_status_reports_deploying_while_the_stack_updates(aws, capsys):
    status_calls(aws, "UPDATE_IN_PROGRESS", "v1", "v2", [event("UPDATE_IN_PROGRESS", 5, token("auto", "v2", 5))])
    code, out, _ = aws.run(capsys, "status", "--environment", "local")
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("local "))
    assert "deploying" in row and "UPDATE_IN_PROGRESS" in row and "in progress" in row


def test_status_shows_how_long_the_update_has_run_and_its_deadline(aws, capsys):
    # Given our update to v2 started 10 minutes ago with a one-hour deadline
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    deadline = started + timedelta(hours=1)
    status_calls(
        aws,
        "UPDATE_IN_PROGRESS",
        "v2",
        "v2",
        [event("UPDATE_IN_PROGRESS", 5, token("auto", "v2", 5))],
        started=started,
        deadline=3600,
    )
    # When
    code, out, _ = aws.run(capsys, "status", "--environment", "local")
    # Then it is deploying, and the reason says for how long and until when
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("local: deploying:"))
    assert "running 10m" in line and f"deadline {deadline:%Y-%m-%d %H:%M:%SZ}" in line and "left" in line


def test_status_json_of_an_update_past_its_deadline_says_the_redeployer_cancels_it(aws, capsys):
    # Given our update started 2 hours ago with a one-hour deadline
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    events = [event("UPDATE_IN_PROGRESS", 5, token("auto", "v2", 5))]
    status_calls(aws, "UPDATE_IN_PROGRESS", "v2", "v2", events, token_read=True, started=started, deadline=3600)
    # When
    code, out, _ = aws.run(capsys, "status", "--environment", "local", "--json")
    # Then
    (env,) = json.loads(out)["environments"]
    assert code == 1 and env["state"] == "deploying" and "cancels this update" in env["reason"]
    assert env["rollout"]["started"] == started.isoformat() and env["rollout"]["past_deadline"] is True
    assert (
        env["rollout"]["deadline"] == (started + timedelta(hours=1)).isoformat()
        and env["rollout"]["running_seconds"] >= 7200
    )


def test_status_reports_failed_for_a_stack_stuck_in_update_rollback_failed(aws, capsys):
    status_calls(
        aws,
        "UPDATE_ROLLBACK_FAILED",
        "v1",
        "v1",
        [event("UPDATE_ROLLBACK_FAILED", 9), event("UPDATE_IN_PROGRESS", 5, token("auto", "v2", 5))],
    )
    code, out, _ = aws.run(capsys, "status", "--environment", "local")
    assert code == 1
    assert "local: failed: stack is UPDATE_ROLLBACK_FAILED and cannot be updated" in out
    assert "rollback failed" in out


def test_status_shows_an_unreachable_environment_as_error_and_still_shows_the_others(aws, capsys, tmp_path):
    # Given two environments, one in a region whose endpoint cannot be reached
    settings = tmp_path / "service-settings.yml"
    block = (
        "    base_name: aurelius\n    suffix: demo\n    cluster_name: c\n    network: {default_vpc: true}\n"
        "    image: img:1\n    model: {bucket: aurelius-models-local-demo, key: models/model.pkl}\n"
    )
    settings.write_text("environments:\n  local:\n" + block + "  far:\n" + block + "    region: eu-west-1\n")

    class Unreachable:
        def __getattr__(self, name):
            def call(**kwargs):
                raise EndpointConnectionError(endpoint_url="https://cloudformation.eu-west-1.amazonaws.com/")

            return call

    status_calls(
        aws,
        "UPDATE_COMPLETE",
        "v2",
        "v2",
        [event("UPDATE_COMPLETE", 6), event("UPDATE_IN_PROGRESS", 5, token("auto", "v2", 5))],
    )
    clients = lambda service, region: Unreachable() if region == "eu-west-1" else aws.clients(service, region)  # noqa: E731
    # When
    with aws.s3_stub, aws.cfn_stub:
        code = cli.main(["status", "--settings", str(settings), "--json"], clients=clients)
    # Then: local in sync, far in error, exit 1
    found = {e["environment"]: e for e in json.loads(capsys.readouterr().out)["environments"]}
    assert code == 1
    assert found["local"]["state"] == "in sync" and found["local"]["last_deploy"]["outcome"] == "completed"
    assert found["far"]["state"] == "error" and "Could not connect" in found["far"]["reason"]


# ---------------------------------------------------------------------------- history
def test_history_lists_updates_newest_first_with_outcomes_read_across_event_pages(aws, capsys):
    # Given a stack created, then: v2 auto completed, a person's update, v3 auto rolled back,
    # v3 forced and stuck in UPDATE_ROLLBACK_FAILED; the events come in two pages
    newest_page = [
        event("UPDATE_ROLLBACK_FAILED", 40),
        event("UPDATE_ROLLBACK_IN_PROGRESS", 35),
        event("UPDATE_IN_PROGRESS", 30, token("force", "v3", 30)),
        event("UPDATE_ROLLBACK_COMPLETE", 25, token("auto", "v3", 20)),
        event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", 24, token("auto", "v3", 20)),
        event("UPDATE_ROLLBACK_IN_PROGRESS", 22, token("auto", "v3", 20)),
        event("UPDATE_IN_PROGRESS", 20, token("auto", "v3", 20)),
    ]
    oldest_page = [
        event("UPDATE_COMPLETE", 16),
        event("UPDATE_IN_PROGRESS", 15),  # a person's update (deploy-service.py): no aurelius token
        event("UPDATE_COMPLETE", 12, token("auto", "v2", 10)),
        event("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", 11, token("auto", "v2", 10)),
        event("UPDATE_IN_PROGRESS", 10, token("auto", "v2", 10)),
        event("CREATE_COMPLETE", 2),
        event("CREATE_IN_PROGRESS", 0),
    ]
    aws.describe("UPDATE_ROLLBACK_FAILED", "v2")
    aws.events(newest_page, next_token="page-2")
    aws.events(oldest_page, after="page-2")
    aws.versions("v1", "v2", "v3")
    aws.signatures("v3", "v2", signed="v3")  # each distinct version shown, once
    # When
    code, out, _ = aws.run(capsys, "history", "--environment", "local", "--json")
    # Then every aurelius update is listed newest first, with how it ended, and the creation last
    assert code == 0
    deploys = json.loads(out)["deploys"]
    assert [(d["version_id"], d["kind"], d["outcome"]) for d in deploys] == [
        ("v3", "force", "rollback failed"),
        ("v3", "auto", "rolled back"),
        ("v2", "auto", "completed"),
        (None, "created", "created"),  # updated since: the initial version is not recoverable
    ]
    assert deploys[1]["started"] == at(20).isoformat() and deploys[1]["ended"] == at(25).isoformat()
    assert deploys[2]["model"] == {"version_id": "v2", "last_modified": UPLOADED["v2"].isoformat(), "size": 2048}
    # and whether each version has a signature object (v3 was published signed, v2 was not)
    assert [d["signature"]["state"] if d["signature"] else None for d in deploys] == [
        "signed",
        "signed",
        "no-digest",
        None,
    ]


def test_history_shows_an_update_the_redeployer_cancelled_at_its_deadline(aws, capsys):
    # Given v3's update was cancelled by the redeployer (its cancel token on the rollback), and an
    # earlier v2 update was cancelled by a person in the console
    cancel = f"aurelius-cancel-{version_digest('v3')}-{int(at(50).timestamp())}"
    aws.describe("UPDATE_ROLLBACK_COMPLETE", "v1")
    aws.events(
        [
            event("UPDATE_ROLLBACK_COMPLETE", 55, cancel),
            {**event("UPDATE_ROLLBACK_IN_PROGRESS", 50, cancel), "ResourceStatusReason": "User Initiated"},
            event("UPDATE_IN_PROGRESS", 10, token("auto", "v3", 10)),
            event("UPDATE_ROLLBACK_COMPLETE", 8, "Console-CancelUpdateStack-1"),
            {
                **event("UPDATE_ROLLBACK_IN_PROGRESS", 7, "Console-CancelUpdateStack-1"),
                "ResourceStatusReason": "User Initiated",
            },
            event("UPDATE_IN_PROGRESS", 5, token("auto", "v2", 5)),
        ]
    )
    aws.versions("v1", "v2", "v3")
    aws.signatures("v3", "v2")
    # When
    code, out, _ = aws.run(capsys, "history", "--environment", "local")
    # Then
    assert code == 0
    rows = [line for line in out.splitlines() if " auto " in line]
    assert "cancelled (deadline)" in rows[0] and "v3" in rows[0]
    assert "cancelled" in rows[1] and "(deadline)" not in rows[1] and "v2" in rows[1]


def test_history_takes_a_cancel_after_the_deadline_for_the_redeployers_when_the_rollback_carries_the_update_token(
    aws, capsys
):
    # Given a 30-minute deadline; v3's rollback ("User Initiated") came 40 minutes after its start,
    # v2's 5 minutes after, and both rollbacks carry their update's own token
    v3, v2 = token("auto", "v3", 10), token("auto", "v2", 0)
    aws.describe("UPDATE_ROLLBACK_COMPLETE", "v1", deadline=1800)
    aws.events(
        [
            event("UPDATE_ROLLBACK_COMPLETE", 55, v3),
            {**event("UPDATE_ROLLBACK_IN_PROGRESS", 50, v3), "ResourceStatusReason": "User Initiated"},
            event("UPDATE_IN_PROGRESS", 10, v3),
            event("UPDATE_ROLLBACK_COMPLETE", 7, v2),
            {**event("UPDATE_ROLLBACK_IN_PROGRESS", 5, v2), "ResourceStatusReason": "User Initiated"},
            event("UPDATE_IN_PROGRESS", 0, v2),
        ]
    )
    aws.versions("v1", "v2", "v3")
    aws.signatures("v3", "v2")
    # When
    code, out, _ = aws.run(capsys, "history", "--environment", "local", "--json")
    # Then
    assert code == 0
    assert [(d["version_id"], d["outcome"]) for d in json.loads(out)["deploys"]] == [
        ("v3", "cancelled (deadline)"),
        ("v2", "cancelled"),
    ]


def test_history_names_a_version_deleted_from_s3_by_its_digest(aws, capsys):
    aws.describe("UPDATE_COMPLETE", "v2")
    aws.events([event("UPDATE_COMPLETE", 12), event("UPDATE_IN_PROGRESS", 10, token("auto", "gone", 10))])
    aws.versions("v2")
    code, out, _ = aws.run(capsys, "history", "--environment", "local")
    assert code == 0
    assert f"unknown (digest {version_digest('gone')}" in out and "completed" in out


def test_history_shows_the_creation_with_the_current_version_when_nothing_updated_the_stack(aws, capsys):
    aws.describe("CREATE_COMPLETE", "v1")
    aws.events([event("CREATE_COMPLETE", 2), event("CREATE_IN_PROGRESS", 0)])
    aws.versions("v1")
    aws.signatures("v1")
    code, out, _ = aws.run(capsys, "history", "--environment", "local", "--json")
    (created,) = json.loads(out)["deploys"]
    assert code == 0
    assert (created["outcome"], created["version_id"], created["started"]) == ("created", "v1", at(0).isoformat())


def test_history_of_a_missing_stack_exits_1(aws, capsys):
    aws.cfn_stub.add_client_error(
        "describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist", http_status_code=400
    )
    code, _, err = aws.run(capsys, "history", "--environment", "local")
    assert code == 1 and "does not exist" in err
