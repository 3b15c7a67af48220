"""`aurelius publish`: what it uploads, in which order, and how --wait ends (issue 17 item 6).

The uploads are pinned with botocore Stubber (what is SENT: the sidecar before the model, the
metadata, ChecksumSHA256). --wait is driven by fake stack sequences and a fake clock: moto
finishes a stack update inside the UpdateStack call and runs no functions, so it cannot show a
rollout in progress, a rollback or a redeployer that never comes (docs/moto.md).
"""

from __future__ import annotations

import base64
import hashlib
import io
import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.stub import ANY

from aurelius import cli
from aurelius.cli.commands import publish
from aurelius.cli.commands.publish import Follower, upload
from aurelius.core.reconcile import Target
from aurelius.core.tokens import request_token
from tests.helpers import BUCKET, KEY, SERVICE_STACK
from tests.signing.material import make_key
from tests.stubs import StubbedAws
from tests.stubs import described_stack as described

TARGET = Target(SERVICE_STACK, BUCKET, KEY)
MINE = "v-mine"


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return path


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class Aws(StubbedAws):
    def head(self, version: str = MINE, signed_digest: str | None = None):
        metadata = {"aurelius-sha256": signed_digest} if signed_digest else {}
        self.s3_stub.add_response(
            "head_object",
            {"VersionId": version, "ContentLength": 10, "Metadata": metadata},
            {"Bucket": BUCKET, "Key": KEY},
        )


# ---------------------------------------------------------------------------- the upload
def test_the_signature_goes_up_before_the_model_with_its_digest_and_checksums(model_file):
    # Given a model and a bundle
    aws = Aws()
    data = model_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    bundle = b'{"dsseEnvelope": {}}'
    # Then exactly these two PutObjects, in this order (a Stubber answers in queue order)
    aws.s3_stub.add_response(
        "put_object",
        {"VersionId": "sig-1"},
        {
            "Bucket": BUCKET,
            "Key": f"{KEY}.sig/{digest}",
            "Body": bundle,
            "ContentType": "application/json",
            "ChecksumSHA256": b64_sha256(bundle),
        },
    )
    aws.s3_stub.add_response(
        "put_object",
        {"VersionId": MINE},
        {
            "Bucket": BUCKET,
            "Key": KEY,
            "Body": ANY,
            "Metadata": {"aurelius-sha256": digest},
            "ChecksumSHA256": b64_sha256(data),
        },
    )
    # When
    with aws.active():
        version_id = upload(aws.s3, BUCKET, KEY, model_file, digest, bundle)
    # Then
    assert version_id == MINE


def test_an_unsigned_upload_is_the_model_alone_with_its_digest(model_file):
    aws = Aws()
    data = model_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    aws.s3_stub.add_response(
        "put_object",
        {"VersionId": MINE},
        {"Bucket": BUCKET, "Key": KEY, "Body": ANY, "Metadata": {"aurelius-sha256": digest}, "ChecksumSHA256": ANY},
    )
    with aws.active():
        assert upload(aws.s3, BUCKET, KEY, model_file, digest, None) == MINE


def test_publish_signs_uploads_and_prints_the_version(model_file, tmp_path, capsys):
    # Given an environment whose stack requires signing, and a signing key
    aws = Aws()
    key = make_key(tmp_path, "publisher")
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra={"SigningRequired": "true"}))
    aws.s3_stub.add_response(
        "put_object",
        {"VersionId": "s"},
        {"Bucket": BUCKET, "Key": ANY, "Body": ANY, "ContentType": ANY, "ChecksumSHA256": ANY},
    )
    aws.s3_stub.add_response(
        "put_object",
        {"VersionId": MINE},
        {"Bucket": BUCKET, "Key": KEY, "Body": ANY, "Metadata": ANY, "ChecksumSHA256": ANY},
    )
    # When
    with aws.active():
        code = cli.main(["publish", "-e", "local", str(model_file), "--key", str(key.private_key)], clients=aws.clients)
    # Then
    out = capsys.readouterr().out
    assert code == 0 and f"as version {MINE}" in out and digest in out and "signed" in out


def test_publish_without_a_key_where_signing_is_required_uploads_nothing_and_exits_2(model_file, capsys):
    aws = Aws()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra={"SigningRequired": "true"}))
    with aws.active():  # no PutObject queued: any upload fails the test
        code = cli.main(["publish", "-e", "local", str(model_file)], clients=aws.clients)
    assert code == 2 and "requires signed models" in capsys.readouterr().err


def empty_file(directory: Path) -> Path:
    (directory / "empty.pkl").write_bytes(b"")
    return directory / "empty.pkl"


@pytest.mark.parametrize(
    ("make", "words"),
    [(lambda d: d / "absent.pkl", "not a regular file"), (empty_file, "is empty")],
    ids=["missing", "empty"],
)
def test_a_bad_model_file_exits_2_before_any_aws_call(tmp_path, capsys, make, words):
    path = make(tmp_path)
    aws = Aws()
    with aws.active():  # nothing queued
        code = cli.main(["publish", "-e", "local", str(path)], clients=aws.clients)
    assert code == 2 and words in capsys.readouterr().err


def test_a_model_over_the_single_put_limit_exits_2_before_any_aws_call(model_file, capsys, monkeypatch):
    # Given S3's 5 GB single-PutObject limit, lowered below the file's size (a 5 GB file in a unit test is not sensible)
    assert publish.MAX_SINGLE_PUT_BYTES == 5 * 1024**3
    monkeypatch.setattr(publish, "MAX_SINGLE_PUT_BYTES", model_file.stat().st_size - 1)
    aws = Aws()
    with aws.active():
        code = cli.main(["publish", "-e", "local", str(model_file)], clients=aws.clients)
    assert code == 2 and "at most 5 GB" in capsys.readouterr().err


def test_a_bad_key_exits_2_and_uploads_nothing(model_file, tmp_path, capsys):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    aws = Aws()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1"))
    with aws.active():
        code = cli.main(["publish", "-e", "local", str(model_file), "--key", str(bad)], clients=aws.clients)
    assert code == 2 and "not a usable PEM private key" in capsys.readouterr().err


# ---------------------------------------------------------------------------- --wait
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeEcs:
    def __init__(self, running: int = 1, desired: int = 2, state: str = "IN_PROGRESS"):
        self.answer = {
            "services": [
                {
                    "deployments": [
                        {"status": "PRIMARY", "runningCount": running, "desiredCount": desired, "rolloutState": state}
                    ]
                }
            ]
        }
        self.calls: list[dict] = []

    def describe_services(self, **kwargs):
        self.calls.append(kwargs)
        return self.answer


SERVICE_ARN = "arn:aws:ecs:us-east-1:123456789012:service/the-cluster/the-service"


def follow(aws: Aws, *, timeout: float = 600, ecs=None) -> tuple[int, str]:
    clock = FakeClock()
    out = io.StringIO()
    follower = Follower(
        TARGET,
        MINE,
        s3=aws.s3,
        cfn=aws.cfn,
        ecs=ecs or FakeEcs(),
        clock=clock,
        sleep=clock.sleep,
        out=out,
        poll_seconds=5,
    )
    with aws.active():
        code = follower.follow(timeout)
    return code, out.getvalue()


def test_wait_follows_the_update_to_served_with_one_line_per_change():
    # Given: the redeployer has not started yet, then the stack updates to our version, then completes
    aws = Aws()
    aws.head()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1"))
    aws.head()
    aws.describe_stacks(described("UPDATE_IN_PROGRESS", MINE, started=datetime(2026, 11, 26, tzinfo=UTC)))
    aws.cfn_stub.add_response(
        "describe_stack_resources",
        {
            "StackResources": [
                {
                    "LogicalResourceId": "Service",
                    "PhysicalResourceId": SERVICE_ARN,
                    "ResourceType": "AWS::ECS::Service",
                    "ResourceStatus": "UPDATE_IN_PROGRESS",
                    "Timestamp": datetime(2026, 11, 26, tzinfo=UTC),
                }
            ]
        },
        {"StackName": SERVICE_STACK},
    )
    aws.head()
    aws.describe_stacks(described("UPDATE_COMPLETE", MINE))
    ecs = FakeEcs(running=1, desired=2)
    # When
    code, out = follow(aws, ecs=ecs)
    # Then exit 0, with the stages as plain lines (not a terminal)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "waiting for the redeployer to start the update"
    assert lines[1].startswith("stack UPDATE_IN_PROGRESS") and "1/2 tasks running on the new revision" in lines[1]
    assert lines[2].startswith("served: the service runs version v-mine")
    assert "\r" not in out
    assert ecs.calls == [{"cluster": "the-cluster", "services": ["the-service"]}]


def test_wait_exits_1_naming_the_reason_when_the_redeployer_refuses_an_unsigned_version():
    aws = Aws()
    aws.head()  # no digest metadata
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra={"SigningRequired": "true"}))
    code, out = follow(aws)
    assert code == 1 and "skipped (alarm): not signed: version v-mine" in out


def test_wait_exits_1_when_the_rollout_rolled_back():
    aws = Aws()
    aws.head()
    aws.describe_stacks(described("UPDATE_ROLLBACK_COMPLETE", "v1"))
    token = request_token("auto", MINE, 1_795_600_000)
    event = {
        "StackId": "x",
        "EventId": "e1",
        "StackName": SERVICE_STACK,
        "LogicalResourceId": SERVICE_STACK,
        "ResourceType": "AWS::CloudFormation::Stack",
        "Timestamp": datetime(2026, 11, 26, tzinfo=UTC),
        "ClientRequestToken": token,
    }
    aws.cfn_stub.add_response(
        "describe_stack_events",
        {"StackEvents": [{**event, "ResourceStatus": "UPDATE_IN_PROGRESS"}]},
        {"StackName": SERVICE_STACK},
    )
    # last_deploy reads the events (newest first) and the model's versions
    aws.cfn_stub.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                {
                    **event,
                    "EventId": "e3",
                    "ResourceStatus": "UPDATE_ROLLBACK_COMPLETE",
                    "Timestamp": datetime(2026, 11, 26, 0, 9, tzinfo=UTC),
                },
                {**event, "ResourceStatus": "UPDATE_IN_PROGRESS"},
            ]
        },
        {"StackName": SERVICE_STACK},
    )
    aws.s3_stub.add_response("list_object_versions", {"Versions": []}, {"Bucket": BUCKET, "Prefix": KEY})
    code, out = follow(aws)
    assert code == 1 and out.startswith("rolled back: the rollout of version v-mine did not complete")


def test_wait_exits_1_when_a_newer_upload_supersedes_the_version():
    aws = Aws()
    aws.head("v-newer")
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1"))
    code, out = follow(aws)
    assert code == 1 and "superseded: version v-newer was uploaded after v-mine" in out


def test_wait_times_out_with_exit_1_and_hints_at_a_missing_redeployer():
    # Given a redeployer that never starts the update
    aws = Aws()
    for _ in range(4):  # polls at 0, 50, 100, 150 s; the timeout is 150 s
        aws.head()
        aws.describe_stacks(described("UPDATE_COMPLETE", "v1"))
    clock = FakeClock()
    out = io.StringIO()
    follower = Follower(
        TARGET, MINE, s3=aws.s3, cfn=aws.cfn, ecs=FakeEcs(), clock=clock, sleep=clock.sleep, out=out, poll_seconds=50
    )
    with aws.active():
        code = follower.follow(150)
    assert code == 1
    assert out.getvalue().splitlines()[-1].startswith("timed out after 150s")
    assert "is the trigger stack deployed?" in out.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_is_one_line_rewritten_in_place():
    aws = Aws()
    aws.head()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1"))
    aws.head()
    aws.describe_stacks(described("UPDATE_COMPLETE", MINE))
    clock = FakeClock()
    out = Terminal()
    follower = Follower(TARGET, MINE, s3=aws.s3, cfn=aws.cfn, ecs=FakeEcs(), clock=clock, sleep=clock.sleep, out=out)
    with aws.active():
        assert follower.follow(600) == 0
    text = out.getvalue()
    assert text.startswith("\rwaiting for the redeployer to start the update [0s]")
    assert text.count("\n") == 1 and text.endswith("\n") and "\rserved:" in text


def test_the_cli_lists_sign_and_publish():
    parser_help = io.StringIO()
    from aurelius.cli.parser import build_parser

    build_parser().print_help(parser_help)
    assert "publish" in parser_help.getvalue() and "sign" in parser_help.getvalue()
