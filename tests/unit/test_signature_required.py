"""Where the service stack requires signing, the redeployer deploys only a version with a
signature object (issue 17 item 5): the decision rule, what reconcile reads for it and what it
sends, with botocore Stubber (moto cannot refuse a HeadObject with 403).

The check is presence only, one HeadObject on ``{model_key}.sig/{sha256}`` (the digest from the
model's own metadata, read by the HeadObject that found the version); the model server verifies.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from aurelius.core.decision import Action, Finding, Observed, StackState, decide, needs_signature
from aurelius.core.model_signature import Signature, SignatureStatus, signature_status
from aurelius.core.model_version import ModelVersion
from aurelius.core.notifications import Notifier
from aurelius.core.signature_layout import SHA256_METADATA_KEY, signature_key
from tests.helpers import BUCKET, KEY, MODEL_URI, SERVICE_STACK
from tests.stubs import StubbedAws, stubbed
from tests.stubs import described_stack as described
from tests.unit.test_notifications import TOPIC, FakeSns
from tests.unit.test_reconcile import ANY_UPDATE, Aws

DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SIDECAR = signature_key(KEY, DIGEST)
REQUIRED = {"SigningRequired": "true"}
WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def version(metadata: dict | None = None, version_id: str = "v2") -> ModelVersion:
    return ModelVersion(BUCKET, KEY, version_id, 100, metadata=metadata or {})


def stack_state(deployed: str = "v1", **parameters: str) -> StackState:
    params = {"ModelS3Uri": MODEL_URI, "ModelVersionId": deployed, **parameters}
    return StackState(SERVICE_STACK, "UPDATE_COMPLETE", params, ("CAPABILITY_IAM",))


def observed(stack: StackState, signature: SignatureStatus | None = None, **kwargs) -> Observed:
    wanted = kwargs.pop("wanted", version({SHA256_METADATA_KEY: DIGEST}))
    return Observed(SERVICE_STACK, MODEL_URI, WHEN, wanted, stack=stack, signature=signature, **kwargs)


class SigningAws(Aws):
    def head_signed(self, version_id: str = "v2", digest: str | None = DIGEST):
        metadata = {SHA256_METADATA_KEY: digest} if digest else {}
        self.s3_stub.add_response(
            "head_object",
            {"VersionId": version_id, "ContentLength": 100, "Metadata": metadata},
            {"Bucket": BUCKET, "Key": KEY},
        )

    def sidecar(self, found: bool = True, status: int = 404):
        if found:
            self.s3_stub.add_response("head_object", {"ContentLength": 900}, {"Bucket": BUCKET, "Key": SIDECAR})
        else:
            self.s3_stub.add_client_error(
                "head_object", str(status), http_status_code=status, expected_params={"Bucket": BUCKET, "Key": SIDECAR}
            )


@pytest.fixture
def aws():
    return SigningAws()


# ---------------------------------------------------------------------------- the decision
@pytest.mark.parametrize(
    ("signature", "finding", "words"),
    [
        (SignatureStatus(Signature.NO_SIGNATURE, "no signature object s3://x"), Finding.NOT_SIGNED, "not signed: "),
        (SignatureStatus(Signature.NO_DIGEST, "no aurelius-sha256 metadata"), Finding.NOT_SIGNED, "metadata"),
        (SignatureStatus(Signature.UNREADABLE, "access denied: ..."), Finding.SIGNATURE_ACCESS_DENIED, "access"),
        (None, Finding.NOT_SIGNED, "was not checked"),  # never deploy unchecked where signing is required
    ],
)
def test_an_unsigned_version_where_signing_is_required_is_an_alarm_and_not_deployed(signature, finding, words):
    # Given a stack that requires signing, a newer version, and what its signature check found
    decision = decide(observed(stack_state(**REQUIRED), signature))
    # Then nothing is updated, and the alarm names the version and the reason
    assert (decision.action, decision.finding) == (Action.ALARM, finding)
    assert decision.update is None and words in decision.reason


def test_a_signed_version_where_signing_is_required_is_deployed():
    decision = decide(observed(stack_state(**REQUIRED), SignatureStatus(Signature.SIGNED, "found")))
    assert decision.action is Action.STARTED and decision.update.version.version_id == "v2"


@pytest.mark.parametrize("parameters", [{}, {"SigningRequired": "false"}, {"SigningRequired": ""}])
def test_a_stack_that_does_not_require_signing_deploys_an_unsigned_version(parameters):
    # Given a stack without the parameter (older stacks) or with it off
    seen = observed(stack_state(**parameters), wanted=version())
    # Then the signature is not even looked for, and the update goes
    assert not needs_signature(seen)
    assert decide(seen).action is Action.STARTED


@pytest.mark.parametrize(
    ("seen", "needed"),
    [
        (observed(stack_state(**REQUIRED)), True),  # would update: look
        (observed(stack_state("v2", **REQUIRED)), False),  # in sync: nothing to deploy
        (observed(stack_state("v1", **REQUIRED), refresh=True), True),  # a refresh deploys too
        (observed(StackState(SERVICE_STACK, "UPDATE_IN_PROGRESS", {**REQUIRED, "ModelVersionId": "v1"})), False),
        (observed(None), False),  # no stack: the alarm is "missing", not "unsigned"
        (observed(stack_state(**REQUIRED), wanted=ModelVersion(BUCKET, KEY, "v2", 0)), False),  # empty
    ],
    ids=["behind", "in-sync", "refresh", "busy", "no-stack", "empty"],
)
def test_the_signature_is_looked_for_only_when_the_decision_would_otherwise_update(seen, needed):
    assert needs_signature(seen) is needed


def test_the_signature_rule_does_not_override_an_earlier_row():
    # Given an unsigned version that is already deployed (signing turned on later)
    decision = decide(observed(stack_state("v2", **REQUIRED)))
    # Then the service is in sync: nothing is deployed, and nothing to alarm about
    assert decision.finding is Finding.IN_SYNC


# ---------------------------------------------------------------------------- reconcile's calls
def test_a_signed_version_is_deployed_after_one_head_object_on_its_sidecar(aws):
    # Given the stack requires signing, S3's current version names its digest, and the sidecar exists
    aws.head_signed()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra=REQUIRED))
    aws.sidecar(found=True)  # exactly this key: {model_key}.sig/{sha256}
    aws.update(ANY_UPDATE)
    # When / Then
    assert aws.run().action is Action.STARTED


def test_an_unsigned_version_is_not_deployed_and_the_alarm_names_the_version_and_the_sidecar(aws):
    aws.head_signed()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra=REQUIRED))
    aws.sidecar(found=False, status=404)
    # When (Stubber fails the test on an UpdateStack: none is queued)
    outcome = aws.run()
    # Then
    assert (outcome.action, outcome.finding) == (Action.ALARM, "NotSigned")
    assert outcome.reason.startswith("not signed: version v2 of ")
    assert f"s3://{BUCKET}/{SIDECAR}" in outcome.reason


def test_a_version_without_digest_metadata_is_not_signed_without_a_second_head_object(aws):
    # Given an upload made without aurelius publish (no aurelius-sha256 metadata)
    aws.head_signed(digest=None)
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra=REQUIRED))
    # When: no sidecar HeadObject queued, none may be made
    outcome = aws.run()
    assert outcome.finding == "NotSigned" and SHA256_METADATA_KEY in outcome.reason


def test_a_403_on_the_sidecar_is_an_alarm_naming_the_permission_on_the_signature_prefix(aws):
    aws.head_signed()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra=REQUIRED))
    aws.sidecar(found=False, status=403)
    outcome = aws.run()
    assert (outcome.action, outcome.finding) == (Action.ALARM, "SignatureAccessDenied")
    assert f"s3:GetObject on arn:aws:s3:::{BUCKET}/{KEY}.sig/*" in outcome.reason


def test_a_stack_that_does_not_require_signing_costs_no_extra_head_object(aws):
    # Given an unsigned upload and a stack without SigningRequired
    aws.head_signed(digest=None)
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1"))
    aws.update(ANY_UPDATE)
    # When / Then: HeadObject, DescribeStacks, UpdateStack and nothing else (the Stubber's queue)
    assert aws.run().action is Action.STARTED


def test_an_unexpected_error_on_the_sidecar_is_raised_for_the_retry_policy(aws):
    aws.head_signed()
    aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra=REQUIRED))
    aws.s3_stub.add_client_error("head_object", "InternalError", http_status_code=500)
    with pytest.raises(ClientError):
        aws.run()


def test_the_same_unsigned_version_twice_is_one_notification_and_a_newer_one_another(aws):
    # Given two schedule ticks that find the same unsigned version, then a newer unsigned upload
    sns = FakeSns()
    notifier = Notifier(sns, TOPIC)
    for version_id in ("v2", "v2", "v3"):
        aws.head_signed(version_id)
        aws.describe_stacks(described("UPDATE_COMPLETE", "v1", extra=REQUIRED))
        aws.sidecar(found=False)
        notifier.handle(aws.run())
    # Then one message per problem: v2 once, v3 once, each naming its version
    assert [m["notice"] for m in sns.published] == ["alarm", "alarm"]
    assert [m["wanted_version"] for m in sns.published] == ["v2", "v3"]
    assert all(m["reason"].startswith("not signed: ") for m in sns.published)


# ---------------------------------------------------------------------------- signature_status
def test_signature_status_reports_each_state_with_the_key_it_looked_for():
    s3 = StubbedAws().s3
    with stubbed(s3) as stub:
        stub.add_response("head_object", {"ContentLength": 1}, {"Bucket": BUCKET, "Key": SIDECAR})
        stub.add_client_error("head_object", "404", http_status_code=404)
        stub.add_client_error("head_object", "403", http_status_code=403)
        found = [signature_status(s3, version({SHA256_METADATA_KEY: DIGEST})) for _ in range(3)]
    assert [s.state for s in found] == [Signature.SIGNED, Signature.NO_SIGNATURE, Signature.UNREADABLE]
    assert all(s.key == SIDECAR and s.sha256 == DIGEST for s in found)
    assert found[0].signed and not found[1].signed
    assert found[0].as_dict() == {"state": "signed", "signed": True, "sha256": DIGEST, "key": SIDECAR}


@pytest.mark.parametrize("metadata", [{}, {SHA256_METADATA_KEY: "not-a-digest"}])
def test_signature_status_without_a_digest_makes_no_call(metadata):
    s3 = StubbedAws().s3
    with stubbed(s3):  # nothing queued: any call fails
        status = signature_status(s3, version(metadata))
    assert status.state is Signature.NO_DIGEST and status.key is None
