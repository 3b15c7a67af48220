"""`make demo`: the whole redeploy loop on this machine, no AWS account.

Steps: start moto on 127.0.0.1; deploy the cluster, trigger, service and no-Docker stacks with
their own scripts (the trigger stack translated from template.yaml); upload a model and let the
S3 notification reach redeploy_service through the local Lambda runtime; upload two versions in
quick succession; fire one scheduled_refresh tick. Then a bad model: its upload is deployed,
the real model server (run with the task's environment against this moto) refuses it, the
rollback ECS and CloudFormation would do is emulated (moto runs no tasks), a tick shows the
version marked failed and not retried, and the next good upload deploys and is served.

Signing is on in the sandbox: the demo makes a throwaway key pair under .sandbox/signing/,
deploys the service and elb stacks with a copy of the shipped settings (.sandbox/*-settings.yml)
whose ``local`` environment requires signatures from that key, and signs its uploads as
``aurelius publish`` does. Then an unsigned upload (``aws s3 cp``) is refused by the redeployer
(one alarm, the stack keeps its version), and a tampered one (signed, then one byte changed,
uploaded with the original digest but no checksum) is deployed and refused by the real model
server, rolled back (emulated), and a signed good version is served.

Each step is checked through the AWS API and printed on a timeline. Exit 0 when the loop
worked, 1 naming the failed step otherwise.

    python -m aurelius.sandbox.demo [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aurelius.cli.commands.publish import upload as publish_upload
from aurelius.core.decision import MODEL_URI_PARAMETER, MODEL_VERSION_PARAMETER
from aurelius.core.signature_layout import SHA256_METADATA_KEY, signature_key
from aurelius.sandbox import moto_compat
from aurelius.sandbox.demo_models import BrokenModel, DemoModel
from aurelius.sandbox.environment import LocalAws, local_aws
from aurelius.sandbox.triggers import REPO, TriggerStack, install_trigger_stack
from aurelius.scripts.stack_deploy import describe_stack, stack_parameters
from aurelius.signing import KeySigner, sign_file
from aurelius.status import revision_of, task_definition_of

SERVICE_STACK = "aurelius-service-stack-local-demo"
ARTIFACT_BUCKET = "aurelius-artifacts-local-demo"  # infra/elb settings, environment local
SCRIPTS = {
    "cluster": REPO / "infra/ecs-cluster/management-scripts/create-cluster.py",
    "service": REPO / "infra/ecs-service/management-scripts/deploy-service.py",
    "elb": REPO / "infra/elb/management-scripts/deploy-elb.py",
}
SCHEDULE_EVENT = REPO / "tests/events/schedule.json"
LOG_DIR = REPO / ".sandbox"
SIGNING_DIR = LOG_DIR / "signing"
SIGNING_KEY = SIGNING_DIR / "demo-signing.pem"  # throwaway, made by every run
SERVER = REPO / "server"
# The container environment the service template gives the model server, by stack parameter
# (infra/ecs-service/template.yaml, TaskDefinition; tests/unit/test_service_template_rollout.py
# checks the two agree).
# Read from the stack's parameters: moto loses the environment of revisions made by updates.
TASK_ENVIRONMENT = {
    "MODEL_S3_URI": MODEL_URI_PARAMETER,
    "MODEL_VERSION_ID": MODEL_VERSION_PARAMETER,
    "SERVICE_NAME": "ServiceName",
    "SMOKE_TEST_INSTANCES": "SmokeTestInstances",
    "SMOKE_TEST_EXPECTED": "SmokeTestExpected",
    "SMOKE_TEST_TOLERANCE": "SmokeTestTolerance",
    "MODEL_FORMAT": "ModelFormat",
    "MODEL_SKOPS_TRUSTED_TYPES": "SkopsTrustedTypes",
    "MODEL_PICKLE_SCAN": "PickleScan",
    "MODEL_SIGNING_REQUIRED": "SigningRequired",
    "MODEL_SIGNING_TRUST": "SigningTrust",
}


class StepFailed(Exception):
    def __init__(self, step: str, message: str):
        super().__init__(f"step '{step}' failed: {message}")
        self.step = step


@dataclass(frozen=True)
class ServiceState:
    revision: str | None
    version: str | None

    def __str__(self) -> str:
        version = (self.version[:8] + "…") if self.version and len(self.version) > 9 else self.version
        return f"rev {self.revision or '-'} / model {version or '-'}"


@dataclass
class Step:
    name: str
    seconds: float
    before: ServiceState
    after: ServiceState
    note: str


@dataclass
class Timeline:
    steps: list[Step] = field(default_factory=list)
    out: Callable[[str], None] = print

    def row(self, step: Step) -> None:
        self.steps.append(step)
        self.out(
            f"  {len(self.steps):>2}. {step.name:<42} {step.seconds:6.2f}s  {str(step.before):<28} -> {str(step.after):<28} {step.note}"
        )


def demo_model(version: int, broken: bool = False) -> bytes:
    """A model pickle. Only the model server unpickles it (aurelius.sandbox.demo_models)."""
    return pickle.dumps(BrokenModel(version) if broken else DemoModel(version))


def make_signing_key() -> Path:
    """A fresh ECDSA P-256 key pair under .sandbox/signing/ (the private key 0600): the demo's
    publisher. Returns the public key's path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    SIGNING_DIR.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    SIGNING_KEY.touch(mode=0o600)
    SIGNING_KEY.chmod(0o600)
    SIGNING_KEY.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = SIGNING_KEY.with_suffix(".pub")
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public


def signed_settings(which: str, public_key: Path) -> Path:
    """A copy of a script's shipped settings whose ``local`` environment requires signatures
    from ``public_key`` (.sandbox/{which}-settings.yml). The shipped ``local`` stays unsigned:
    the tests deploy it without a key."""
    shipped = SCRIPTS[which].parent / "service-settings.yml"
    settings = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    settings["environments"]["local"]["signing"] = {
        "required": True,
        "trust": {"mode": "key", "public_keys": [str(public_key.relative_to(LOG_DIR))]},
    }
    copy = LOG_DIR / f"{which}-settings.yml"
    copy.write_text(
        f"# Written by aurelius.sandbox.demo from {shipped.relative_to(REPO)}: local requires signatures.\n"
        + yaml.safe_dump(settings, sort_keys=False),
        encoding="utf-8",
    )
    return copy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ServerRun:
    """One run of the real model server: its exit code (None: still serving) and its log lines."""

    exit_code: int | None
    lines: list[dict[str, Any]]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"event": "text", "message": raw})
    return lines


class Demo:
    def __init__(self, aws: LocalAws, timeline: Timeline, verbose: bool = False):
        self.aws, self.timeline, self.verbose = aws, timeline, verbose
        session = aws.session()
        self.s3, self.cfn = session.client("s3"), session.client("cloudformation")
        self.trigger: TriggerStack | None = None
        # The bad-model steps: what was deployed before v5, v5's version id and its update's token.
        self.good_parameters: dict[str, str] = {}
        self.bad_version: str | None = None
        self.bad_token: str | None = None
        self.runtime = aws.runtime
        self.settings: dict[str, Path] = {}  # script -> settings copy with signing on (local)
        self.tampered_version: str | None = None
        self.tampered_token: str | None = None

    # ------------------------------------------------------------------ observations
    def state(self) -> ServiceState:
        stack = describe_stack(self.cfn, SERVICE_STACK)
        if stack is None:
            return ServiceState(None, None)
        revision = revision_of(task_definition_of(self.cfn, SERVICE_STACK))
        return ServiceState(revision, stack_parameters(stack).get(MODEL_VERSION_PARAMETER))

    def outcomes_since(self, mark: int) -> list[dict[str, Any]]:
        return [i.result for i in self.runtime.history[mark:] if isinstance(i.result, dict)]

    # ------------------------------------------------------------------ one timed step
    def step(self, name: str, action: Callable[[], str]) -> None:
        before, started = self.state(), time.perf_counter()
        try:
            note = action()
        except StepFailed:
            raise
        except Exception as exc:  # any other failure still names its step
            raise StepFailed(name, f"{type(exc).__name__}: {exc}") from exc
        self.timeline.row(Step(name, time.perf_counter() - started, before, self.state(), note))

    def run_script(self, which: str, *extra: str) -> str:
        settings = ("--settings", str(self.settings[which])) if which in self.settings else ()
        command = [sys.executable, str(SCRIPTS[which]), "--environment", "local", *settings, *extra]
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, **self.aws.environment}, timeout=300
        )
        if self.verbose or done.returncode != 0:
            sys.stdout.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise StepFailed(
                f"deploy {which} stack", f"{SCRIPTS[which].name} exited {done.returncode}: {done.stderr.strip()[-300:]}"
            )
        return done.stdout.strip().splitlines()[-1]

    def upload(self, version: int, broken: bool = False) -> str:
        """Sign and upload as ``aurelius publish`` does: the signature sidecar, then the model
        with its digest in metadata and as its S3 checksum."""
        path = LOG_DIR / f"model-v{version}.pkl"
        path.write_bytes(demo_model(version, broken))
        signed = sign_file(path, KeySigner(SIGNING_KEY))
        return publish_upload(self.s3, self.trigger.bucket, self.trigger.key, path, signed.sha256, signed.bundle)

    def upload_unsigned(self, version: int) -> str:
        """What ``aws s3 cp`` does: the bytes, no signature, no digest."""
        body = io.BytesIO(demo_model(version))
        return self.s3.put_object(Bucket=self.trigger.bucket, Key=self.trigger.key, Body=body)["VersionId"]

    def upload_tampered(self, version: int) -> str:
        """Signed bytes with one byte changed afterwards, uploaded with the signed bytes' digest
        in the metadata and without a checksum (S3 cannot catch it): the redeployer finds a
        signature for the digest the metadata claims; only the server's own hash tells."""
        path = LOG_DIR / f"model-v{version}.pkl"
        path.write_bytes(demo_model(version))
        signed = sign_file(path, KeySigner(SIGNING_KEY))
        self.s3.put_object(
            Bucket=self.trigger.bucket, Key=signature_key(self.trigger.key, signed.sha256), Body=signed.bundle
        )
        tampered = bytearray(path.read_bytes())
        tampered[len(tampered) // 2] ^= 0x01
        self.tampered_sha256 = hashlib.sha256(tampered).hexdigest()
        return self.s3.put_object(
            Bucket=self.trigger.bucket,
            Key=self.trigger.key,
            Body=bytes(tampered),
            Metadata={SHA256_METADATA_KEY: signed.sha256},
        )["VersionId"]

    def stack_parameters(self) -> dict[str, str]:
        return stack_parameters(describe_stack(self.cfn, SERVICE_STACK) or {})

    def server_environment(self) -> dict[str, str]:
        """The task's environment, as the service template builds it from the stack parameters,
        pointed at the sandbox (os.environ holds AWS_ENDPOINT_URL and the fake credentials)."""
        params = self.stack_parameters()
        task_env = {name: params[key] for name, key in TASK_ENVIRONMENT.items() if params.get(key)}
        return {
            **os.environ,
            **task_env,
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "WORKERS": "1",
            # The server package, and this repository for the demo's model classes.
            "PYTHONPATH": os.pathsep.join([str(SERVER), str(REPO)]),
        }

    def run_server(self, step: str, wait_healthy: bool) -> ServerRun:
        """Run the real model server (python -m aurelius_server) on the stack's pinned version.

        wait_healthy=False: wait for it to exit (a refused model). True: wait until /health
        answers 200, then stop it with SIGTERM as ECS would.
        """
        env = self.server_environment()
        command = [sys.executable, "-m", "aurelius_server"]
        LOG_DIR.mkdir(exist_ok=True)
        with open(LOG_DIR / "model-server.log", "a", encoding="utf-8") as log:
            if not wait_healthy:
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
                log.write(done.stdout + done.stderr)
                return ServerRun(done.returncode, _json_lines(done.stdout + done.stderr))
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/health", timeout=2) as answer:
                            if answer.status == 200:
                                break
                    except (urllib.error.URLError, OSError):
                        pass
                    time.sleep(0.2)
                else:
                    output = proc.communicate(timeout=30)[0] if proc.poll() is not None else ""
                    raise StepFailed(step, f"the model server never turned healthy: {output.strip()[-300:]}")
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                output = proc.communicate(timeout=30)[0]
                log.write(output)
            return ServerRun(None, _json_lines(output))

    def wait_for_lambda(self, step: str) -> None:
        if not self.runtime.drain(timeout=60):
            raise StepFailed(step, "the local Lambda runtime did not finish within 60 s")

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        self.step("throwaway signing key, settings copies", self.signing_on)
        self.step("deploy cluster stack (create-cluster.py)", lambda: self.run_script("cluster"))
        self.step("install trigger stack (template.yaml)", self.install_triggers)
        self.step("upload model v1 (no service yet)", self.first_upload)
        self.step("deploy service stack (deploy-service.py)", self.deploy_service)
        self.step("deploy elb stack (deploy-elb.py)", self.deploy_elb)
        self.step("upload model v2 -> redeploy_service", self.upload_one)
        self.step("upload v3 and v4 in quick succession", self.upload_burst)
        self.step("scheduled_refresh tick", self.tick)
        self.step("upload bad model v5 -> redeploy_service", self.upload_bad)
        self.step("real model server on v5: refused", self.serve_bad)
        self.step("rollback of v5 (EMULATED)", self.emulate_rollback)
        self.step("scheduled_refresh tick: v5 marked failed", self.tick_after_rollback)
        self.step("upload good v6 -> deployed and served", self.upload_good_after_bad)
        self.step("upload unsigned v7 -> refused, 1 alarm", self.upload_unsigned_refused)
        self.step("upload tampered v8 -> redeploy_service", self.upload_tampered_deployed)
        self.step("real model server on v8: refused", self.serve_tampered)
        self.step("rollback of v8 (EMULATED)", self.emulate_tampered_rollback)
        self.step("upload signed v9 -> verified and served", self.upload_signed_after_tampered)

    def signing_on(self) -> str:
        public_key = make_signing_key()
        self.settings = {which: signed_settings(which, public_key) for which in ("service", "elb")}
        return f"ECDSA P-256 in {SIGNING_DIR.relative_to(REPO)}/; local requires signatures (service, elb)"

    def install_triggers(self) -> str:
        self.trigger = install_trigger_stack(self.aws.session(), self.runtime, "local", out=lambda line: None)
        self.s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        self.alarm_queue = self._subscribe_to_notifications()
        return f"{self.trigger.stack_name}: 2 functions, bucket {self.trigger.bucket} versioned"

    def _subscribe_to_notifications(self) -> str:
        """An SQS queue on the trigger stack's SNS topic: the demo counts the alarms sent."""
        session = self.aws.session()
        resources = self.cfn.describe_stack_resources(StackName=self.trigger.stack_name)["StackResources"]
        topic = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "DeployNotificationsTopic")
        sqs = session.client("sqs")
        queue_url = sqs.create_queue(QueueName="aurelius-demo-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        session.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return queue_url

    def notifications(self) -> list[str]:
        """The SNS messages sent since the last call."""
        sqs, messages = self.aws.session().client("sqs"), []
        while batch := sqs.receive_message(QueueUrl=self.alarm_queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                messages.append(json.loads(message["Body"]).get("Message", ""))
                sqs.delete_message(QueueUrl=self.alarm_queue, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def first_upload(self) -> str:
        mark = len(self.runtime.history)
        self.upload(1)
        self.wait_for_lambda("upload model v1")
        (outcome,) = self.outcomes_since(mark) or [{"action": "none", "reason": "no invocation"}]
        if outcome["action"] != "alarm" or "missing" not in outcome["reason"]:
            raise StepFailed("upload model v1", f"expected 'service stack missing', got {outcome}")
        return "reconcile: service stack missing, nothing changed (expected)"

    def deploy_service(self) -> str:
        self.run_script("service")
        state = self.state()
        current = self.s3.head_object(Bucket=self.trigger.bucket, Key=self.trigger.key)["VersionId"]
        if state.version != current:
            raise StepFailed("deploy service stack", f"pinned {state.version}, current model is {current}")
        return "pinned to the current model version"

    def deploy_elb(self) -> str:
        self.run_script("elb")
        return "classic load balancer + Auto Scaling group"

    def upload_one(self) -> str:
        before, mark = self.state(), len(self.runtime.history)
        wanted = self.upload(2)
        self.wait_for_lambda("upload model v2")
        after = self.state()
        if after.version != wanted or after.revision == before.revision:
            raise StepFailed("upload model v2", f"expected a new revision pinned to {wanted}, got {after}")
        actions = [o["action"] for o in self.outcomes_since(mark)]
        return f"S3 event -> redeploy_service: {', '.join(actions)}"

    def upload_burst(self) -> str:
        mark = len(self.runtime.history)
        self.upload(3)
        newest = self.upload(4)
        self.wait_for_lambda("upload v3 and v4")
        actions = [o["action"] for o in self.outcomes_since(mark)]
        state = self.state()
        if state.version != newest:
            raise StepFailed("upload v3 and v4", f"expected v4 ({newest}) deployed, got {state}")
        if actions.count("started") != 1:
            raise StepFailed("upload v3 and v4", f"expected exactly one UpdateStack, got outcomes {actions}")
        return f"{len(actions)} events: {', '.join(actions)}; only v4 deployed"

    def tick(self) -> str:
        event = json.loads(SCHEDULE_EVENT.read_text())
        invocation = self.runtime.invoke_sync(self.trigger.functions["ScheduledRefreshFunction"], event)
        result = invocation.result or {}
        if invocation.error or result.get("action") != "in-sync":
            raise StepFailed("scheduled_refresh tick", f"expected in-sync, got {invocation.error or result}")
        return "in sync, nothing to do"

    # ------------------------------------------------------------------ a bad model
    def upload_bad(self) -> str:
        self.good_parameters = self.stack_parameters()
        mark = len(self.runtime.history)
        self.bad_version = self.upload(5, broken=True)
        self.wait_for_lambda("upload bad model v5")
        outcomes = self.outcomes_since(mark)
        started = [o for o in outcomes if o["action"] == "started"]
        if len(started) != 1 or self.state().version != self.bad_version:
            raise StepFailed("upload bad model v5", f"expected one update to v5, got {outcomes}")
        self.bad_token = started[0]["token"]
        return "update started; on AWS the new tasks now load v5 and run the smoke test"

    def serve_bad(self) -> str:
        run = self.run_server("real model server on v5", wait_healthy=False)
        failed = run.events("startup_failed")
        if run.exit_code != 1 or len(failed) != 1 or failed[0].get("model_version_id") != self.bad_version:
            raise StepFailed(
                "real model server on v5", f"expected exit 1 and one startup_failed line for v5, got {run}"
            )
        if run.events("serving"):
            raise StepFailed("real model server on v5", "the server served the bad model")
        return f"exit 1, startup_failed: check '{failed[0].get('check')}' (never healthy)"

    def emulate_rollback(self, token: str | None = None, bad: int = 5, good: int = 4) -> str:
        previous = {key: self.good_parameters[key] for key in (MODEL_URI_PARAMETER, MODEL_VERSION_PARAMETER)}
        moto_compat.emulate_rollback(
            self.cfn,
            SERVICE_STACK,
            previous,
            token or self.bad_token,
            reason="(emulated) ECS deployment circuit breaker: tasks failed to start; rolling back",
        )
        stack = describe_stack(self.cfn, SERVICE_STACK) or {}
        if (
            stack.get("StackStatus") != "UPDATE_ROLLBACK_COMPLETE"
            or self.state().version != previous[MODEL_VERSION_PARAMETER]
        ):
            raise StepFailed(
                f"rollback of v{bad}", f"expected UPDATE_ROLLBACK_COMPLETE on v{good}, got {stack.get('StackStatus')}"
            )
        return f"EMULATED, what ECS + CloudFormation do (moto runs no tasks): UPDATE_ROLLBACK_COMPLETE on v{good}"

    def tick_after_rollback(self) -> str:
        event = json.loads(SCHEDULE_EVENT.read_text())
        invocation = self.runtime.invoke_sync(self.trigger.functions["ScheduledRefreshFunction"], event)
        result = invocation.result or {}
        if invocation.error or result.get("action") != "skipped" or result.get("wanted_version") != self.bad_version:
            raise StepFailed(
                "scheduled_refresh tick after the rollback", f"expected v5 skipped, got {invocation.error or result}"
            )
        return "skipped: v5's rollout rolled back; not retried"

    def upload_good_after_bad(self) -> str:
        mark = len(self.runtime.history)
        wanted = self.upload(6)
        self.wait_for_lambda("upload good v6")
        if self.state().version != wanted:
            raise StepFailed(
                "upload good v6", f"expected v6 ({wanted}) deployed, got {self.state()} ({self.outcomes_since(mark)})"
            )
        run = self.run_server("upload good v6", wait_healthy=True)
        if not run.events("smoke_test_passed"):
            raise StepFailed("upload good v6", "the model server turned healthy without passing its smoke test")
        if not run.events("model_verified"):
            raise StepFailed("upload good v6", "the model server turned healthy without verifying the signature")
        return "started; the real model server passes the smoke test and turns healthy"

    # ------------------------------------------------------------------ signing
    def upload_unsigned_refused(self) -> str:
        step = "upload unsigned v7"
        before, mark = self.state(), len(self.runtime.history)
        self.notifications()  # only what this step sends counts
        self.upload_unsigned(7)
        self.wait_for_lambda(step)
        tick = self.runtime.invoke_sync(
            self.trigger.functions["ScheduledRefreshFunction"], json.loads(SCHEDULE_EVENT.read_text())
        )
        outcomes = [*self.outcomes_since(mark), tick.result or {}]
        if any(o.get("action") != "alarm" or "not signed" not in o.get("reason", "") for o in outcomes):
            raise StepFailed(step, f"expected the redeployer to refuse v7 as not signed, got {outcomes}")
        if self.state() != before:
            raise StepFailed(step, f"the stack moved from {before} to {self.state()}")
        alarms = [message for message in self.notifications() if "not signed" in message]
        if len(alarms) != 1:
            raise StepFailed(step, f"expected one 'not signed' alarm for the event and the tick, got {alarms}")
        return "alarm 'not signed' (once, a tick later too); stack stays on v6"

    def upload_tampered_deployed(self) -> str:
        step = "upload tampered v8"
        self.good_parameters = self.stack_parameters()
        mark = len(self.runtime.history)
        self.tampered_version = self.upload_tampered(8)
        self.wait_for_lambda(step)
        outcomes = self.outcomes_since(mark)
        started = [o for o in outcomes if o["action"] == "started"]
        if len(started) != 1 or self.state().version != self.tampered_version:
            raise StepFailed(step, f"expected one update to v8, got {outcomes}")
        self.tampered_token = started[0]["token"]
        return "a signature exists for the digest its metadata claims: update started"

    def serve_tampered(self) -> str:
        step = "real model server on v8"
        run = self.run_server(step, wait_healthy=False)
        failed = run.events("startup_failed")
        if (
            run.exit_code != 1
            or len(failed) != 1
            or failed[0].get("model_version_id") != self.tampered_version
            or failed[0].get("reason") != "signature_missing"
        ):
            raise StepFailed(step, f"expected exit 1 and one startup_failed (signature_missing) for v8, got {run}")
        if run.events("model_loaded") or run.events("serving"):
            raise StepFailed(step, "the server loaded the tampered model")
        return f"exit 1, startup_failed: signature_missing (its bytes hash to {self.tampered_sha256[:12]}…)"

    def emulate_tampered_rollback(self) -> str:
        return self.emulate_rollback(self.tampered_token, bad=8, good=6)

    def upload_signed_after_tampered(self) -> str:
        step = "upload signed v9"
        wanted = self.upload(9)
        self.wait_for_lambda(step)
        if self.state().version != wanted:
            raise StepFailed(step, f"expected v9 ({wanted}) deployed, got {self.state()}")
        run = self.run_server(step, wait_healthy=True)
        verified = run.events("model_verified")
        if not verified or not run.events("smoke_test_passed"):
            raise StepFailed(step, f"expected model_verified and smoke_test_passed, got {run.lines}")
        return f"signature verified ({verified[0]['signer'][:24]}…), smoke test passed, healthy"

    # ------------------------------------------------------------------ --keep
    def explore_help(self) -> str:
        env = self.aws.environment
        refresh = self.trigger.functions["ScheduledRefreshFunction"].split(":")[-1]
        uri = f"s3://{self.trigger.bucket}/{self.trigger.key}"
        return "\n".join(
            [
                "",
                "The sandbox keeps running (Ctrl-C stops it). In another shell:",
                "",
                f"  export AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']} AWS_ACCESS_KEY_ID=testing "
                "AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing AWS_DEFAULT_REGION=us-east-1",
                "  source .venv/bin/activate   # the pinned AWS CLI",
                "",
                "  # publish a new model version (signed with the demo's key): redeploy_service rolls the service to it",
                f"  aurelius publish --environment local --key {SIGNING_KEY.relative_to(REPO)} any-file.pkl",
                f"  # an unsigned upload (aws s3 cp any-file.pkl {uri}) is refused: 'not signed'",
                "  # what the service stack pins now",
                f"  aws cloudformation describe-stacks --stack-name {SERVICE_STACK} "
                "--query \"Stacks[0].Parameters[?starts_with(ParameterKey,'Model')]\"",
                "  # fire a scheduled_refresh tick",
                f"  aws lambda invoke --function-name {refresh} --payload fileb://tests/events/schedule.json /dev/stdout",
                "  # the model's versions",
                f"  aws s3api list-object-versions --bucket {self.trigger.bucket} --prefix {self.trigger.key}",
                "",
            ]
        )


def run_demo(keep: bool = False, verbose: bool = False, out: Callable[[str], None] = print) -> int:
    timeline = Timeline(out=out)
    started = time.perf_counter()
    out("aurelius sandbox: moto on 127.0.0.1, handlers in-process, no AWS account")
    LOG_DIR.mkdir(exist_ok=True)
    with open(LOG_DIR / "lambda.log", "w", encoding="utf-8") as lambda_log, local_aws(lambda_log=lambda_log) as aws:
        out(f"  moto server at {aws.endpoint}; function logs in {LOG_DIR.relative_to(REPO)}/lambda.log")
        demo = Demo(aws, timeline, verbose)
        try:
            demo.run()
        except StepFailed as exc:
            out(f"\nFAILED: {exc}")
            return 1
        out(f"\nThe loop worked: {len(timeline.steps)} steps in {time.perf_counter() - started:.1f}s.")
        if keep:
            out(demo.explore_help())
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                out("stopping the sandbox")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the aurelius redeploy loop against a local moto server.")
    parser.add_argument(
        "--keep", action="store_true", help="leave the sandbox running and print commands to explore it"
    )
    parser.add_argument("--verbose", action="store_true", help="show the management scripts' output")
    args = parser.parse_args(argv)
    return run_demo(keep=args.keep, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
