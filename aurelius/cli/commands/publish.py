"""`aurelius publish`: sign a model, upload it in the signed layout, and (--wait) follow it to served.

    aurelius publish --environment ENV MODEL [--key KEY.pem [--certificate C --chain CA] | --sigstore]
                     [--wait] [--timeout SECONDS]

The upload order is the layout's contract (aurelius.core.signature_layout): hash and sign the
file in one pass (aurelius.signing), PutObject the signature sidecar ``{key}.sig/{sha256}``, then
PutObject the model with the metadata ``aurelius-sha256`` and ``ChecksumSHA256`` (S3 refuses
bytes that do not match it). The model's ObjectCreated event can therefore never arrive before
its signature. One PutObject each: S3 takes at most 5 GB in a single PUT
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html); a larger model is
refused before anything is sent.

Unsigned environments (the service stack's SigningRequired is not "true") may publish without
a key: the model is uploaded with its digest metadata only. Where signing is required, a
publish without --key/--sigstore is refused before any upload.

--wait follows the version the redeployer's way, never acting itself: each poll is the
redeployer's own observe and decide (aurelius.core.reconcile.observe,
aurelius.core.decision.decide) on the environment, so what it shows is what the functions will
do. The functions react to the upload; publish does not run reconcile (a second redeployer
would race the first). If nothing picks the version up, it says so and names `aurelius deploy`.

Exit codes: 0 uploaded (with --wait: served, i.e. the stack pins this version and its update
completed, which CloudFormation reports only once the ECS service is stable); 1 AWS-side:
skipped by the redeployer, rolled back, cancelled, superseded by a newer upload, timed out
(each named); 2 bad input (file, key, environment), nothing uploaded.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from aurelius.cli.clients import ClientFactory
from aurelius.cli.environments import environment, s3_and_cloudformation
from aurelius.core.decision import Decision, Finding, StackState, decide, signing_required
from aurelius.core.reconcile import Target, observe
from aurelius.core.signature_layout import SHA256_METADATA_KEY, checksum_sha256, signature_key
from aurelius.core.stacks import describe_stack
from aurelius.exits import EXIT_AWS, EXIT_OK, AwsSide, UsageError
from aurelius.history import last_deploy
from aurelius.signing import SignedModel, SigningError, sign_file
from aurelius.signing_commands import add_signer_arguments, signer_from_args
from aurelius.status import SERVICE_TYPE, physical_ids, service_cluster_and_name

# S3's single PutObject limit: 5 GB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html).
MAX_SINGLE_PUT_BYTES = 5 * 1024**3
POLL_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 1800.0
# How long "behind, nothing started" may last before publish says the redeployer may not be there.
PICKUP_HINT_SECONDS = 120.0
BUNDLE_CONTENT_TYPE = "application/json"
# While waiting: these findings mean "not yet"; every other finding ends the wait.
STILL_GOING = frozenset({None, Finding.STACK_BUSY, Finding.PAST_DEADLINE})


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "publish",
        parents=[common],
        help="sign and upload a model version; --wait follows it until it is served",
        description="Hash and sign a model file, upload its signature sidecar ({key}.sig/{sha256}) and then the "
        "model (metadata aurelius-sha256, ChecksumSHA256), print the new S3 VersionId. With --wait, follow it "
        "through the redeployer, the stack update and the ECS rollout.",
        epilog="Exit 0 uploaded (--wait: served); 1 skipped by the redeployer, rolled back, cancelled, superseded "
        "or timed out (named); 2 bad input, nothing uploaded. Unsigned environments may omit --key. "
        "Models over 5 GB (one PutObject) are refused.",
    )
    parser.add_argument("--environment", "-e", required=True, help="environment block of the settings file")
    parser.add_argument("model", type=Path, metavar="MODEL", help="the model file (pickle, joblib or skops)")
    add_signer_arguments(parser, required=False)
    parser.add_argument("--wait", action="store_true", help="follow the version until it is served (or why not)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="S",
        help=f"with --wait: give up after S seconds (default {int(DEFAULT_TIMEOUT_SECONDS)}; exit 1)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, clients: ClientFactory) -> int:
    path = _checked_model(args.model)
    if args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    try:
        signer = signer_from_args(args)
    except SigningError as exc:
        raise UsageError(str(exc)) from None
    env = environment(args)
    s3, cfn = s3_and_cloudformation(env, clients)
    model = env.settings.model
    target = Target(env.stack_name, model.bucket, model.key)
    described = describe_stack(cfn, env.stack_name)
    required = described is not None and signing_required(StackState.from_description(described).parameters)
    if required and signer is None:
        raise UsageError(
            f"environment {env.name} requires signed models (stack {env.stack_name}: SigningRequired=true): "
            "pass --key KEY.pem (or --certificate/--chain, or --sigstore)"
        )
    signed = _sign(path, signer) if signer is not None else None
    digest = signed.sha256 if signed else _sha256(path)
    version_id = upload(s3, model.bucket, model.key, path, digest, signed.bundle if signed else None)
    print(
        f"published {path} as version {version_id} of {model.uri} (sha256 {digest}, {'signed' if signed else 'unsigned'})"
    )
    if not args.wait:
        print(f"follow it: aurelius status --environment {env.name}   (or add --wait)")
        return EXIT_OK
    follower = Follower(target, version_id, s3=s3, cfn=cfn, ecs=clients("ecs", env.settings.region))
    return follower.follow(timeout=args.timeout)


def _checked_model(path: Path) -> Path:
    if not path.is_file() or path.is_symlink():
        raise UsageError(f"{path} is not a regular file: publish the model file itself")
    size = path.stat().st_size
    if size == 0:
        raise UsageError(f"{path} is empty: the redeployer never deploys an empty model")
    if size > MAX_SINGLE_PUT_BYTES:
        raise UsageError(f"{path} is {size} bytes: one PutObject takes at most 5 GB")
    return path


def _sign(path: Path, signer) -> SignedModel:
    try:
        return sign_file(path, signer)  # hashes the file once; the digest comes with the bundle
    except SigningError as exc:
        raise UsageError(str(exc)) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload(s3, bucket: str, key: str, path: Path, sha256: str, bundle: bytes | None) -> str:
    """The signature sidecar first (when signed), then the model with its digest: the new VersionId."""
    if bundle is not None:
        s3.put_object(
            Bucket=bucket,
            Key=signature_key(key, sha256),
            Body=bundle,
            ContentType=BUNDLE_CONTENT_TYPE,
            ChecksumSHA256=checksum_sha256(hashlib.sha256(bundle).hexdigest()),
        )
    with path.open("rb") as body:
        put = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            Metadata={SHA256_METADATA_KEY: sha256},
            ChecksumSHA256=checksum_sha256(sha256),
        )
    version_id = put.get("VersionId")
    if not version_id or version_id == "null":
        raise AwsSide(f"s3://{bucket}/{key} got no version id: turn on versioning on bucket {bucket}")
    return version_id


# ---------------------------------------------------------------------------- --wait
@dataclass(frozen=True)
class Ended:
    code: int
    message: str


class Follower:
    """Polls the redeployer's view of one version until it is served or cannot be."""

    def __init__(
        self,
        target: Target,
        version_id: str,
        *,
        s3,
        cfn,
        ecs,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        out: TextIO | None = None,
        poll_seconds: float = POLL_SECONDS,
    ):
        self.target, self.version_id = target, version_id
        self.s3, self.cfn, self.ecs = s3, cfn, ecs
        self.clock, self.sleep, self.poll_seconds = clock, sleep, poll_seconds
        self.out = out or sys.stdout
        self.live = self.out.isatty()
        self._last_line = ""
        self._service: tuple[str, str] | None = None

    def follow(self, timeout: float) -> int:
        start = self.clock()
        while True:
            elapsed = self.clock() - start
            decision = decide(observe(self.target, s3=self.s3, cfn=self.cfn))
            ended = self._ended(decision)
            if ended is not None:
                self._say(ended.message, final=True)
                return ended.code
            if elapsed >= timeout:
                self._say(f"timed out after {int(elapsed)}s: {self._progress(decision, elapsed)}", final=True)
                return EXIT_AWS
            progress = self._progress(decision, elapsed)
            self._say(f"{progress} [{int(elapsed)}s]" if self.live else progress)
            self.sleep(self.poll_seconds)

    def _ended(self, decision: Decision) -> Ended | None:
        seen = decision.observed
        assert seen is not None
        wanted = seen.wanted
        if wanted is not None and wanted.version_id != self.version_id:
            return Ended(EXIT_AWS, f"superseded: version {wanted.version_id} was uploaded after {self.version_id}")
        if decision.finding is Finding.IN_SYNC:
            return Ended(EXIT_OK, f"served: the service runs version {self.version_id} (stack {seen.stack.status})")
        if decision.finding in STILL_GOING:
            return None
        if decision.finding is Finding.FAILED_VERSION and seen.stack is not None:
            deploy = last_deploy(self.cfn, self.s3, seen.stack, self.target.bucket, self.target.key)
            how = deploy.outcome if deploy else "rolled back"
            return Ended(
                EXIT_AWS,
                f"{how}: the rollout of version {self.version_id} did not complete (stack {seen.stack.status}); "
                f"aurelius history shows it",
            )
        return Ended(EXIT_AWS, f"skipped ({decision.action.value}): {decision.reason}")

    def _progress(self, decision: Decision, elapsed: float) -> str:
        seen = decision.observed
        assert seen is not None
        stack = seen.stack
        if decision.finding is None:
            line = "waiting for the redeployer to start the update"
            if elapsed >= PICKUP_HINT_SECONDS:
                line += "; nothing started yet: is the trigger stack deployed? `aurelius deploy --latest` deploys it by hand"
            return line
        assert stack is not None
        running = f", {decision.rollout.describe(seen.now)}" if decision.rollout else ""
        tasks = self._tasks() if stack.deployed_version == self.version_id else None
        return f"stack {stack.status}{running}" + (f"; {tasks}" if tasks else "")

    def _tasks(self) -> str | None:
        """The ECS rollout of the newest deployment: "2/2 tasks running, rollout IN_PROGRESS"."""
        service = self._service_name()
        if service is None:
            return None
        found = self.ecs.describe_services(cluster=service[0], services=[service[1]]).get("services", [])
        deployments = found[0].get("deployments", []) if found else []
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
        if primary is None:
            return None
        return (
            f"{primary.get('runningCount', 0)}/{primary.get('desiredCount', 0)} tasks running on the new revision, "
            f"rollout {primary.get('rolloutState', '-')}"
        )

    def _service_name(self) -> tuple[str, str] | None:
        if self._service is None:
            arn = physical_ids(self.cfn, self.target.stack_name).get(SERVICE_TYPE)
            self._service = service_cluster_and_name(arn) if arn else None
        return self._service

    def _say(self, line: str, final: bool = False) -> None:
        if self.live:
            # One live line on a terminal: rewritten in place, padded over the previous one.
            self.out.write("\r" + line.ljust(len(self._last_line)) + ("\n" if final else ""))
            self.out.flush()
            self._last_line = "" if final else line
        elif line != self._last_line:
            print(line, file=self.out)
            self._last_line = line
