"""`aurelius`: look at the redeploy automation and overrule it.

    aurelius status  [--environment ENV] [--json]
    aurelius deploy  --environment ENV (--version-id V | --latest) [--dry-run] [--wait]
    aurelius history --environment ENV [--limit N] [--json]
    aurelius doctor  --environment ENV [--json]          (aurelius.doctor: read-only preflight)

Every command reads the service stacks' settings (infra/ecs-service/management-scripts/
service-settings.yml unless --settings) and talks to AWS through plain boto3, so
AWS_ENDPOINT_URL / AWS_PROFILE / AWS_REGION work, and so does the sandbox (`make demo ARGS=--keep`).
An environment's `region` setting wins over the default region.

Nothing here is a second redeployer: `deploy` calls aurelius.core.reconcile.reconcile() with the
chosen version and force=True (the same UpdateStack the functions send, token kind "force",
which is how a version's failed mark is cleared), and `history` / `status` read the record the
redeployer leaves in AWS (stack events tagged with its request token, S3 object versions).

Exit codes:
  status   0 every environment shown is in sync; 1 any is behind, deploying, failed, missing
           or could not be read (error)
  deploy   0 update started (with --wait: completed), already deployed, or dry run shown;
           1 refused or failed on the AWS side (stack busy, not updatable, missing, rolled back)
  history  0 shown; 1 AWS-side failure (stack missing, endpoint)
  doctor   0 nothing to fix; 1 something to fix or could not be checked
  all      2 bad arguments or settings: unknown environment, unknown model version
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.command_line import DEFAULT_SETTINGS, DEFAULT_SETTINGS_HELP, ClientFactory, boto3_clients
from aurelius.core.decision import (
    MODEL_VERSION_PARAMETER,
    Action,
    Decision,
    Observed,
    StackState,
    decide,
    needs_last_token,
)
from aurelius.core.model_version import ModelMissing, ModelVersion, VersioningDisabled, current_model_version
from aurelius.core.reconcile import (
    Target,
    model_parameter_values,
    reconcile,
    update_parameters,
)
from aurelius.core.tokens import last_update_token, version_digest
from aurelius.doctor import add_doctor_parser, run_doctor
from aurelius.exits import EXIT_AWS, EXIT_OK, EXIT_USAGE, UsageError
from aurelius.formatting import describe_deploy, short, size, table, version_label, when
from aurelius.history import ObjectVersion, model_versions, read_history
from aurelius.naming import InvalidName
from aurelius.settings import Environment, ServiceSettings, SettingsError, load_environment, load_environments
from aurelius.stack_deploy import ChangeSetPreview, DeployError, describe_stack, stack_parameters
from aurelius.status import IN_SYNC, EnvironmentStatus, environment_status

POLL_SECONDS = 10.0


class AwsSide(Exception):
    """AWS-side state or failure: exit 1. ``label`` starts the message."""

    label = "error"


class Refused(AwsSide):
    """AWS-side state forbids the operation (stack busy, not updatable, missing)."""

    label = "refused"


class Failed(AwsSide):
    """The operation ran and failed on the AWS side (the update rolled back)."""

    label = "failed"


# ---------------------------------------------------------------------------- settings
def _settings_path(args: argparse.Namespace) -> Path:
    return Path(args.settings)


def _environment(args: argparse.Namespace) -> Environment[ServiceSettings]:
    return load_environment(_settings_path(args), ServiceSettings, args.environment)


def _clients_for(env: Environment[ServiceSettings], clients: ClientFactory) -> tuple[Any, Any]:
    region = env.settings.region
    return clients("s3", region), clients("cloudformation", region)


# ---------------------------------------------------------------------------- status
def cmd_status(args: argparse.Namespace, clients: ClientFactory) -> int:
    if args.environment:
        environments = [_environment(args)]
    else:
        environments = list(load_environments(_settings_path(args), ServiceSettings).values())
    results: list[EnvironmentStatus] = []
    for env in environments:
        model = env.settings.model
        try:
            s3, cfn = _clients_for(env, clients)
        except (BotoCoreError, ClientError) as exc:  # e.g. no region configured
            results.append(
                EnvironmentStatus(env.name, env.stack_name, model.uri, "error", f"{type(exc).__name__}: {exc}")
            )
            continue
        results.append(environment_status(env.name, env.stack_name, model.bucket, model.key, s3=s3, cfn=cfn))

    all_in_sync = all(r.state == IN_SYNC for r in results)
    if args.json:
        print(json.dumps({"in_sync": all_in_sync, "environments": [r.as_dict() for r in results]}, indent=2))
    else:
        rows = []
        for r in results:
            deployed = r.deployed
            newest = r.newest
            same = bool(newest and r.deployed_version == newest.version_id)
            rows.append(
                [
                    r.environment,
                    r.state,
                    r.stack_status or "-",
                    r.revision or "-",
                    short(r.deployed_version),
                    when(deployed.last_modified) if deployed else "-",
                    size(deployed.size) if deployed else "-",
                    "= deployed" if same else short(newest.version_id if newest else None),
                    "" if same else (when(newest.last_modified) if newest else "-"),
                    describe_deploy(r.last_deploy),
                ]
            )
        print(
            table(
                [
                    "ENVIRONMENT",
                    "STATE",
                    "STACK STATUS",
                    "REV",
                    "DEPLOYED",
                    "UPLOADED",
                    "SIZE",
                    "NEWEST",
                    "UPLOADED",
                    "LAST DEPLOY",
                ],
                rows,
            )
        )
        for r in results:
            if r.state != IN_SYNC:
                print(f"{r.environment}: {r.state}: {r.reason}")
    return EXIT_OK if all_in_sync else EXIT_AWS


# ---------------------------------------------------------------------------- history
def cmd_history(args: argparse.Namespace, clients: ClientFactory) -> int:
    if args.limit < 0:
        raise UsageError("--limit must be 0 (everything) or more")
    env = _environment(args)
    s3, cfn = _clients_for(env, clients)
    model = env.settings.model
    stack = describe_stack(cfn, env.stack_name)
    if stack is None:
        raise AwsSide(f"service stack {env.stack_name} does not exist: no history")
    deploys = read_history(cfn, s3, stack, model.bucket, model.key, limit=args.limit or None)
    current = stack_parameters(stack).get(MODEL_VERSION_PARAMETER)
    if args.json:
        print(
            json.dumps(
                {
                    "environment": env.name,
                    "stack_name": env.stack_name,
                    "model_uri": model.uri,
                    "stack_status": stack["StackStatus"],
                    "deployed_version": current,
                    "deploys": [d.as_dict() for d in deploys],
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(f"{env.stack_name} ({env.name}): model versions deployed to {model.uri}, newest first")
    rows = [
        [
            when(d.started),
            when(d.ended),
            d.outcome,
            d.kind,
            version_label(d),
            when(d.model.last_modified) if d.model else "-",
            size(d.model.size) if d.model else "-",
        ]
        for d in deploys
    ]
    print(table(["STARTED", "ENDED", "OUTCOME", "KIND", "MODEL VERSION", "UPLOADED", "SIZE"], rows))
    if not deploys:
        print("(no deploys recorded in the stack's events)")
    print(f"now deployed: {current or '-'} (stack {stack['StackStatus']})")
    return EXIT_OK


# ---------------------------------------------------------------------------- deploy
def _chosen_version(args: argparse.Namespace, s3, model) -> ModelVersion:
    try:
        chosen = current_model_version(s3, model.bucket, model.key, args.version_id)
    except ModelMissing:
        if args.version_id:
            raise UsageError(
                f"unknown model version {args.version_id!r}: {model.uri} has no such version "
                "(aurelius history and aws s3api list-object-versions list them)"
            ) from None
        raise Refused(f"no model object at {model.uri}: upload one first") from None
    except VersioningDisabled as exc:
        raise Refused(str(exc)) from None
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("405", "MethodNotAllowed"):
            raise UsageError(
                f"model version {args.version_id!r} of {model.uri} is a delete marker, not a model"
            ) from None
        raise
    if chosen.size == 0:
        raise Refused(
            f"model version {chosen.version_id} of {model.uri} is empty; the redeployer never deploys it either"
        )
    return chosen


def _refusal(decision: Decision, stack: StackState | None, stack_name: str, now: datetime) -> str | None:
    """Why `aurelius deploy` must not update the stack now (None: it may), from the redeployer's
    own decision for a forced deploy of the chosen version."""
    if decision.finding == "StackMissing":
        return f"service stack {stack_name} does not exist; create it with infra/ecs-service/management-scripts/deploy-service.py"
    if decision.finding in ("StackBusy", "PastDeadline"):
        assert stack is not None
        running = f", {decision.rollout.describe(now)}" if decision.rollout else ""
        return f"stack {stack_name} is busy ({stack.status}{running}); try again when it is done (aurelius status shows it)"
    if decision.finding == "StackNotUpdatable":
        assert stack is not None
        return (
            f"stack {stack_name} is {stack.status} and cannot be updated; repair it first "
            "(UPDATE_ROLLBACK_FAILED: aws cloudformation continue-update-rollback; ROLLBACK_COMPLETE: delete and recreate)"
        )
    if decision.finding == "NotAnAureliusStack":
        return decision.reason
    return None


def _deployed_object(s3, model, version_id: str | None) -> ModelVersion | None:
    """The deployed version's object (None if the stack pins none or it was deleted from S3)."""
    if not version_id:
        return None
    try:
        return current_model_version(s3, model.bucket, model.key, version_id)
    except (ModelMissing, VersioningDisabled):
        return None


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


def _make_current(s3, model, chosen: ModelVersion) -> ModelVersion:
    """Copy a version on top of the key: a new version with the same bytes becomes current, so
    the level-triggered redeployer keeps it instead of moving the service forward again."""
    copied = s3.copy_object(
        Bucket=model.bucket,
        Key=model.key,
        CopySource={"Bucket": model.bucket, "Key": model.key, "VersionId": chosen.version_id},
    )
    return current_model_version(s3, model.bucket, model.key, copied["VersionId"])


def cmd_deploy(args: argparse.Namespace, clients: ClientFactory) -> int:
    env = _environment(args)
    s3, cfn = _clients_for(env, clients)
    model = env.settings.model
    chosen = _chosen_version(args, s3, model)
    described = describe_stack(cfn, env.stack_name)
    stack = StackState.from_description(described) if described else None
    now = datetime.now(UTC)
    token = last_update_token(cfn, env.stack_name) if needs_last_token(stack, now) else None
    seen = Observed(env.stack_name, model.uri, now, chosen, None, stack, token, force=True)
    decision = decide(seen)
    refusal = _refusal(decision, stack, env.stack_name, now)
    if refusal:
        raise Refused(refusal)
    assert stack is not None
    deployed_id = stack.deployed_version
    deployed = _deployed_object(s3, model, deployed_id)

    print(f"{env.stack_name} ({env.name}), stack {stack.status}")
    print(
        f"  deployed: {deployed_id or '-'}"
        + (f"  uploaded {when(deployed.last_modified)}, {size(deployed.size)}" if deployed else "")
    )
    print(f"  chosen:   {chosen.version_id}  uploaded {when(chosen.last_modified)}, {size(chosen.size)}")
    if decision.finding == "InSync":
        print("already deployed: nothing to do")
        return EXIT_OK
    versions = model_versions(s3, model.bucket, model.key)
    direction = _direction(versions, deployed_id, chosen.version_id)
    if direction:
        print(f"  direction: {direction}")
    current = next((v.version_id for v in versions if v.is_latest), None)
    if current and current != chosen.version_id and args.make_current:
        if args.dry_run:
            print(f"  would copy version {chosen.version_id} on top of {model.uri}, making it S3's current version")
        else:
            chosen = _make_current(s3, model, chosen)
            print(f"  copied on top of {model.uri}: S3's current version is now {chosen.version_id} (same bytes)")
    elif current and current != chosen.version_id:
        # Level-triggered (docs/design.md, "The redeploy loop"): the redeployer converges on S3's current version.
        print(
            f"  note: S3's current version is {current}, and the redeployer follows S3:\n"
            "        it deploys that version again as soon as this update ends (the stack-status event\n"
            "        wakes scheduled_refresh) or on the next tick. To keep the chosen version, add --make-current,\n"
            "        or make it current yourself:\n"
            f"        aws s3api copy-object --bucket {model.bucket} --key {model.key} \\\n"
            f"          --copy-source '{model.bucket}/{model.key}?versionId={chosen.version_id}'"
        )
    if decide(replace(seen, wanted=chosen, force=False)).finding == "FailedVersion":
        print(
            "  note: this version's last rollout rolled back (failed mark); deploying it retries it and clears the mark"
        )

    if args.dry_run:
        return _dry_run(cfn, described, env.stack_name, chosen)

    target = Target(env.stack_name, model.bucket, model.key)
    outcome = reconcile(target, s3=s3, cfn=cfn, version_id=chosen.version_id, force=True)
    if outcome.action is Action.IN_SYNC:
        print(f"already deployed: {outcome.reason}")
        return EXIT_OK
    if outcome.action is not Action.STARTED:
        raise Refused(f"not deployed ({outcome.action.value}): {outcome.reason}")
    print(f"update started (ClientRequestToken {outcome.token})")
    return _after_start(cfn, env, args.wait)


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
    if status in ("UPDATE_COMPLETE",):
        return EXIT_OK
    raise Failed(f"the update ended {status}; aurelius history --environment {env.name} shows it")


def _dry_run(cfn, stack: dict[str, Any], stack_name: str, chosen: ModelVersion) -> int:
    """Create the change set reconcile's update would make, print it, delete it."""
    current = stack_parameters(stack)
    new_values = model_parameter_values(chosen)
    name = f"aurelius-dry-run-{version_digest(chosen.version_id)}-{int(time.time())}"
    preview = ChangeSetPreview(cfn, print, poll_seconds=2, max_attempts=60)
    try:
        created = preview.create(
            stack_name,
            name,
            ChangeSetType="UPDATE",
            UsePreviousTemplate=True,
            Parameters=update_parameters(current, new_values),
            Capabilities=stack.get("Capabilities") or list(Target.default_capabilities),
            Description=f"aurelius deploy --dry-run of model version {chosen.version_id}",
        )
    except DeployError as exc:  # the change set exists, FAILED: a dry run leaves nothing behind
        preview.delete(stack_name, name)
        raise Refused(str(exc)) from None
    if not created:
        print("dry run: CloudFormation sees no changes")
        return EXIT_OK
    try:
        print(f"change set {name} (UsePreviousTemplate, every other parameter kept):")
        preview.show(stack_name, name, current, new_values)
    finally:
        preview.delete(stack_name, name)
    print("dry run: change set deleted, nothing deployed")
    return EXIT_OK


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--settings",
        default=str(DEFAULT_SETTINGS),
        metavar="FILE",
        help=DEFAULT_SETTINGS_HELP,
    )

    parser = argparse.ArgumentParser(
        prog="aurelius",
        description="Look at and overrule the aurelius model redeployer. Talks to AWS through boto3 "
        "(AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION apply).",
        epilog="Exit codes: 0 ok, 1 AWS-side state or failure (status: not everything in sync), 2 bad arguments or settings.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    status = commands.add_parser(
        "status",
        parents=[common],
        help="each environment: stack, deployed and newest model version, sync state",
        description="For each environment (or one): stack status, deployed model version (upload time, size), "
        "newest model version in S3, state (in sync / behind / deploying / failed / missing / error), "
        "task definition revision, last deploy's outcome.",
        epilog="Exit 0 when every environment shown is in sync; 1 when any is behind, deploying, failed, "
        "missing or could not be read; 2 bad arguments or settings.",
    )
    status.add_argument(
        "--environment", "-e", help="only this environment (default: every environment in the settings)"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")

    deploy = commands.add_parser(
        "deploy",
        parents=[common],
        help="deploy a chosen model version now (forward or back)",
        description="Deploy a model version now through the redeployer's own stack update (reconcile, forced). "
        "Retrying a version whose rollout rolled back clears its failed mark.",
        epilog="Exit 0 started (with --wait: completed), already deployed, or dry run shown; 1 refused or failed "
        "on the AWS side (stack busy, not updatable, missing; update rolled back); 2 unknown environment or "
        "version, bad arguments.",
    )
    deploy.add_argument("--environment", "-e", required=True, help="environment block of the settings file")
    which = deploy.add_mutually_exclusive_group(required=True)
    which.add_argument("--version-id", help="S3 VersionId of the model object to deploy")
    which.add_argument("--latest", action="store_true", help="the model object's current version")
    deploy.add_argument(
        "--make-current",
        action="store_true",
        help="copy the chosen version on top of the model key first, so it becomes S3's current version and "
        "the redeployer keeps it (a lasting rollback); needs s3:PutObject on the key",
    )
    deploy.add_argument(
        "--dry-run", action="store_true", help="create the change set, print it, delete it; deploy nothing"
    )
    deploy.add_argument(
        "--wait", action="store_true", help="wait until the stack update ends; exit 1 unless it completed"
    )

    history = commands.add_parser(
        "history",
        parents=[common],
        help="the model versions the service ran, newest first",
        description="The model versions deployed to the service stack, newest first, with when each update "
        "started and ended and how (completed, rolled back), read from the stack's events and the model's "
        "S3 versions.",
        epilog="Exit 0 shown; 1 stack missing or AWS error; 2 unknown environment or bad arguments.",
    )
    history.add_argument("--environment", "-e", required=True, help="environment block of the settings file")
    history.add_argument("--limit", type=int, default=20, help="show at most N deploys (default 20; 0 = all)")
    history.add_argument("--json", action="store_true", help="machine-readable output")

    add_doctor_parser(commands, parents=[common])
    return parser


COMMANDS = {"status": cmd_status, "deploy": cmd_deploy, "history": cmd_history, "doctor": run_doctor}


def main(argv: Sequence[str] | None = None, *, clients: ClientFactory | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad arguments (2): argparse printed why
        return int(exc.code or 0)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args, clients or boto3_clients())
    except (SettingsError, InvalidName, UsageError) as exc:
        print(f"aurelius {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AwsSide as exc:
        print(f"aurelius {args.command}: {exc.label}: {exc}", file=sys.stderr)
        return EXIT_AWS
    except (ClientError, BotoCoreError) as exc:
        print(f"aurelius {args.command}: AWS error: {exc}", file=sys.stderr)
        return EXIT_AWS
    except BrokenPipeError:  # `aurelius status --json | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_AWS


if __name__ == "__main__":
    sys.exit(main())
