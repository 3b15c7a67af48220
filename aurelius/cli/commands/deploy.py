"""`aurelius deploy`: deploy a chosen model version now, forward or back.

One observation, one decision, at most one write: the redeployer's own observe, decide and act
(aurelius.core.reconcile) with the chosen version and force=True, so what the operator is shown
is what is acted on. Before its UpdateStack it reads the model version (one HeadObject), the
stack (one DescribeStacks), the stack's newest update token when the stack rolled back or is past
its deadline (one DescribeStackEvents) and the model's versions (ListObjectVersions, for the
deployed version's upload time and the direction).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from datetime import datetime

from botocore.exceptions import ClientError

from aurelius.cli.clients import ClientFactory
from aurelius.cli.environments import environment, s3_and_cloudformation
from aurelius.core.aws_errors import error_code
from aurelius.core.decision import OUTCOME, PROBLEM_FINDING, Action, Decision, Finding, Observed, StackState, decide
from aurelius.core.model_version import ModelAccessDenied, ModelMissing, ModelVersion
from aurelius.core.reconcile import Target, act, observe
from aurelius.core.stacks import describe_stack
from aurelius.core.tokens import version_digest
from aurelius.exits import EXIT_OK, Failed, Refused, UsageError
from aurelius.formatting import size, when
from aurelius.history import ObjectVersion, model_versions
from aurelius.scripts.stack_deploy import ChangeSetPreview, DeployError
from aurelius.settings import Environment, ServiceSettings

POLL_SECONDS = 10.0
SERVICE_SCRIPT = "infra/ecs-service/management-scripts/deploy-service.py"


@dataclass(frozen=True)
class Says:
    """What `aurelius deploy` says for a finding of its decision. ``text`` is a format string
    over stack, status, running, reason, uri and version."""

    text: str
    refuses: bool = True


# Every finding of a forced deploy's decision -> what the operator reads.
DEPLOY_SAYS: dict[Finding, Says] = {
    Finding.STACK_MISSING: Says(f"service stack {{stack}} does not exist; create it with {SERVICE_SCRIPT}"),
    Finding.STACK_BUSY: Says(
        "stack {stack} is busy ({status}{running}); try again when it is done (aurelius status shows it)"
    ),
    Finding.PAST_DEADLINE: Says(
        "stack {stack} is busy ({status}{running}); try again when it is done (aurelius status shows it)"
    ),
    Finding.STACK_NOT_UPDATABLE: Says(
        "stack {stack} is {status} and cannot be updated; repair it first "
        "(UPDATE_ROLLBACK_FAILED: aws cloudformation continue-update-rollback; ROLLBACK_COMPLETE: delete and recreate)"
    ),
    Finding.NOT_AN_AURELIUS_STACK: Says("{reason}"),
    Finding.MODEL_MISSING: Says("no model object at {uri}: upload one first"),
    Finding.VERSIONING_DISABLED: Says("{reason}"),
    Finding.MODEL_ACCESS_DENIED: Says("{reason}"),
    Finding.EMPTY_MODEL: Says("model version {version} of {uri} is empty; the redeployer never deploys it either"),
    # The model server would refuse it anyway (it verifies before unpickling): refused here, before a rollout.
    Finding.NOT_SIGNED: Says(
        "{reason}: the service stack requires signed models, so a forced deploy refuses it too; "
        "publish it signed (aurelius publish --environment ENV MODEL --key KEY.pem)"
    ),
    Finding.SIGNATURE_ACCESS_DENIED: Says("{reason}"),
    Finding.IN_SYNC: Says("already deployed: nothing to do", refuses=False),
    # A forced deploy is never stopped by the mark; it is said as a note.
    Finding.FAILED_VERSION: Says(
        "  note: this version's last rollout rolled back (failed mark); deploying it retries it and clears the mark",
        refuses=False,
    ),
}


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "deploy",
        parents=[common],
        help="deploy a chosen model version now (forward or back)",
        description="Deploy a model version now through the redeployer's own stack update (reconcile, forced). "
        "Retrying a version whose rollout rolled back clears its failed mark.",
        epilog="Exit 0 started (with --wait: completed), already deployed, or dry run shown; 1 refused or failed "
        "on the AWS side (stack busy, not updatable, missing; update rolled back); 2 unknown environment or "
        "version, bad arguments.",
    )
    parser.add_argument("--environment", "-e", required=True, help="environment block of the settings file")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version-id", help="S3 VersionId of the model object to deploy")
    which.add_argument("--latest", action="store_true", help="the model object's current version")
    parser.add_argument(
        "--make-current",
        action="store_true",
        help="copy the chosen version on top of the model key first, so it becomes S3's current version and "
        "the redeployer keeps it (a lasting rollback); needs s3:PutObject on the key",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="create the change set, print it, delete it; deploy nothing"
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait until the stack update ends; exit 1 unless it completed"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, clients: ClientFactory) -> int:
    env = environment(args)
    s3, cfn = s3_and_cloudformation(env, clients)
    model = env.settings.model
    target = Target(env.stack_name, model.bucket, model.key)
    seen = _observe(target, s3, cfn, args.version_id)
    chosen = _chosen(seen, args.version_id)
    decision = decide(seen)
    refusal = _refusal(decision, seen)
    if refusal:
        raise Refused(refusal)
    stack = seen.stack
    assert stack is not None
    in_sync = decision.finding is Finding.IN_SYNC
    versions = [] if in_sync else model_versions(s3, model.bucket, model.key)
    _show(env, stack, chosen, _deployed(stack, chosen, versions))
    if in_sync:
        print(_says(Finding.IN_SYNC, decision, seen))
        return EXIT_OK
    decision = _lasting(args, s3, model, seen, decision, versions)
    if decision.failed_mark:
        print(_says(Finding.FAILED_VERSION, decision, seen))
    if args.dry_run:
        return _dry_run(cfn, target, stack, decision)
    outcome = act(target, decision, cfn=cfn)
    if outcome.action is Action.IN_SYNC:
        print(f"already deployed: {outcome.reason}")
        return EXIT_OK
    if outcome.action is not Action.STARTED:
        raise Refused(f"not deployed ({outcome.action.value}): {outcome.reason}")
    print(f"update started (ClientRequestToken {outcome.token})")
    return _after_start(cfn, env, args.wait)


def _observe(target: Target, s3, cfn, version_id: str | None) -> Observed:
    """The one observation, read for a forced deploy (the failed mark is read to be shown)."""
    try:
        return observe(target, s3=s3, cfn=cfn, version_id=version_id, force=True, failed_mark=True)
    except ClientError as exc:
        if version_id and exc.operation_name == "HeadObject" and error_code(exc) in ("405", "MethodNotAllowed"):
            raise UsageError(
                f"model version {version_id!r} of {target.model_uri} is a delete marker, not a model"
            ) from None
        raise


def _chosen(seen: Observed, version_id: str | None) -> ModelVersion:
    """The chosen version, or why it cannot be deployed (checked before the stack's state)."""
    problem = seen.model_problem
    if isinstance(problem, ModelMissing) and version_id:
        raise UsageError(
            f"unknown model version {version_id!r}: {seen.model_uri} has no such version "
            "(aurelius history and aws s3api list-object-versions list them)"
        )
    if isinstance(problem, ModelAccessDenied):
        raise problem  # an AWS error (exit 1), as any other access denied
    if problem is not None:
        finding = PROBLEM_FINDING[type(problem)]
        raise Refused(_says(finding, Decision(OUTCOME[finding], str(problem), finding=finding), seen))
    assert seen.wanted is not None
    if seen.wanted.size == 0:
        finding = Finding.EMPTY_MODEL
        raise Refused(_says(finding, Decision(OUTCOME[finding], "empty", finding=finding), seen))
    return seen.wanted


def _refusal(decision: Decision, seen: Observed) -> str | None:
    """Why `aurelius deploy` must not update the stack now (None: it may)."""
    if decision.finding is None or not DEPLOY_SAYS[decision.finding].refuses:
        return None
    return _says(decision.finding, decision, seen)


def _says(finding: Finding, decision: Decision, seen: Observed) -> str:
    stack = seen.stack
    running = f", {decision.rollout.describe(seen.now)}" if decision.rollout else ""
    return DEPLOY_SAYS[finding].text.format(
        stack=seen.stack_name,
        status=stack.status if stack else "-",
        running=running,
        reason=decision.reason,
        uri=seen.model_uri,
        version=seen.wanted.version_id if seen.wanted else "-",
    )


def _deployed(stack: StackState, chosen: ModelVersion, versions: list[ObjectVersion]) -> ObjectVersion | None:
    """The deployed version's object (None if the stack pins none or it was deleted from S3)."""
    if stack.deployed_version == chosen.version_id:
        return ObjectVersion(chosen.version_id, chosen.last_modified, chosen.size)
    return next((v for v in versions if v.version_id == stack.deployed_version), None)


def _show(
    env: Environment[ServiceSettings], stack: StackState, chosen: ModelVersion, deployed: ObjectVersion | None
) -> None:
    print(f"{env.stack_name} ({env.name}), stack {stack.status}")
    print(
        f"  deployed: {stack.deployed_version or '-'}"
        + (f"  uploaded {when(deployed.last_modified)}, {size(deployed.size)}" if deployed else "")
    )
    print(f"  chosen:   {chosen.version_id}  uploaded {when(chosen.last_modified)}, {size(chosen.size)}")


def _direction(versions: list[ObjectVersion], deployed_id: str | None, chosen_id: str) -> str | None:
    """Forward or back, by the order S3 lists the object's versions (newest first).

    Upload times have one-second resolution, so two quick uploads can share one; the listing
    order does not.
    """
    order = [v.version_id for v in versions]
    if deployed_id not in order or chosen_id not in order:
        return None
    return (
        "back to an older version"
        if order.index(chosen_id) > order.index(deployed_id)
        else "forward to a newer version"
    )


def _lasting(args, s3, model, seen: Observed, decision: Decision, versions: list[ObjectVersion]) -> Decision:
    """Say where the chosen version stands among S3's; with --make-current, copy it on top of the
    key and decide again on the copy (no new read: the copy is the chosen bytes)."""
    assert seen.stack is not None and seen.wanted is not None
    chosen = seen.wanted
    direction = _direction(versions, seen.stack.deployed_version, chosen.version_id)
    if direction:
        print(f"  direction: {direction}")
    current = next((v.version_id for v in versions if v.is_latest), None)
    if not current or current == chosen.version_id:
        return decision
    if not args.make_current:
        # Level-triggered (docs/design.md, "The redeploy loop"): the redeployer converges on S3's current version.
        print(
            f"  note: S3's current version is {current}, and the redeployer follows S3:\n"
            "        it deploys that version again as soon as this update ends (the stack-status event\n"
            "        wakes scheduled_refresh) or on the next tick. To keep the chosen version, add --make-current,\n"
            "        or make it current yourself:\n"
            f"        aws s3api copy-object --bucket {model.bucket} --key {model.key} \\\n"
            f"          --copy-source '{model.bucket}/{model.key}?versionId={chosen.version_id}'"
        )
        return decision
    if args.dry_run:
        print(f"  would copy version {chosen.version_id} on top of {model.uri}, making it S3's current version")
        return decision
    copy = _make_current(s3, chosen)
    print(f"  copied on top of {model.uri}: S3's current version is now {copy.version_id} (same bytes)")
    return decide(replace(seen, wanted=copy))


def _make_current(s3, chosen: ModelVersion) -> ModelVersion:
    """Copy a version on top of the key: a new version with the same bytes becomes current, so
    the level-triggered redeployer keeps it instead of moving the service forward again."""
    copied = s3.copy_object(
        Bucket=chosen.bucket,
        Key=chosen.key,
        CopySource={"Bucket": chosen.bucket, "Key": chosen.key, "VersionId": chosen.version_id},
    )
    uploaded: datetime | None = copied.get("CopyObjectResult", {}).get("LastModified")
    return replace(chosen, version_id=copied["VersionId"], last_modified=uploaded)


def _after_start(cfn, env: Environment[ServiceSettings], wait: bool) -> int:
    while True:
        stack = describe_stack(cfn, env.stack_name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            break
        if not wait:
            print(f"stack {status}; CloudFormation and the ECS circuit breaker own the rollout now.")
            print(f"follow it: aurelius status --environment {env.name}   (or add --wait)")
            return EXIT_OK
        time.sleep(POLL_SECONDS)
    print(f"stack {status}")
    if status == "UPDATE_COMPLETE":
        return EXIT_OK
    raise Failed(f"the update ended {status}; aurelius history --environment {env.name} shows it")


def _dry_run(cfn, target: Target, stack: StackState, decision: Decision) -> int:
    """Create the change set the decision's update would make, print it, delete it."""
    update = decision.update
    assert update is not None
    name = f"aurelius-dry-run-{version_digest(update.version.version_id)}-{int(time.time())}"
    preview = ChangeSetPreview(cfn, print, poll_seconds=2, max_attempts=60)
    try:
        created = preview.create(
            target.stack_name,
            name,
            ChangeSetType="UPDATE",
            UsePreviousTemplate=True,
            Parameters=list(update.parameters),
            Capabilities=list(update.capabilities) or list(target.default_capabilities),
            Description=f"aurelius deploy --dry-run of model version {update.version.version_id}",
        )
    except DeployError as exc:  # the change set exists, FAILED: a dry run leaves nothing behind
        preview.delete(target.stack_name, name)
        raise Refused(str(exc)) from None
    if not created:
        print("dry run: CloudFormation sees no changes")
        return EXIT_OK
    try:
        print(f"change set {name} (UsePreviousTemplate, every other parameter kept):")
        preview.show(target.stack_name, name, dict(stack.parameters), dict(update.values))
    finally:
        preview.delete(target.stack_name, name)
    print("dry run: change set deleted, nothing deployed")
    return EXIT_OK
