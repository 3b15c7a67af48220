"""`make demo`: the whole redeploy loop on this machine, no AWS account.

Steps: start moto on 127.0.0.1; deploy the cluster, trigger, service and no-Docker stacks with
their own scripts (the trigger stack translated from template.yaml); upload a model and let the
S3 notification reach redeploy_service through the local Lambda runtime; upload two versions in
quick succession; fire one scheduled_refresh tick. Then a bad model: its upload is deployed,
the real model server (run with the task's environment against this moto) refuses it, the
rollback ECS and CloudFormation would do is emulated (moto runs no tasks), a tick shows the
version marked failed and not retried, and the next good upload deploys and is served. Each
step is checked through the AWS API and printed on a timeline. Exit 0 when the loop worked, 1
naming the failed step otherwise.

    python -m aurelius.sandbox.demo [--keep]
"""

from __future__ import annotations

import argparse
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
from typing import Any

from aurelius.core.decision import MODEL_URI_PARAMETER, MODEL_VERSION_PARAMETER
from aurelius.sandbox import moto_compat
from aurelius.sandbox.demo_models import BrokenModel, DemoModel
from aurelius.sandbox.environment import LocalAws, local_aws
from aurelius.sandbox.triggers import REPO, TriggerStack, install_trigger_stack
from aurelius.stack_deploy import describe_stack, stack_parameters
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
        command = [sys.executable, str(SCRIPTS[which]), "--environment", "local", *extra]
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
        body = io.BytesIO(demo_model(version, broken))
        return self.s3.put_object(Bucket=self.trigger.bucket, Key=self.trigger.key, Body=body)["VersionId"]

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

    def install_triggers(self) -> str:
        self.trigger = install_trigger_stack(self.aws.session(), self.runtime, "local", out=lambda line: None)
        self.s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        return f"{self.trigger.stack_name}: 2 functions, bucket {self.trigger.bucket} versioned"

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

    def emulate_rollback(self) -> str:
        previous = {key: self.good_parameters[key] for key in (MODEL_URI_PARAMETER, MODEL_VERSION_PARAMETER)}
        moto_compat.emulate_rollback(
            self.cfn,
            SERVICE_STACK,
            previous,
            self.bad_token,
            reason="(emulated) ECS deployment circuit breaker: tasks failed to start; rolling back",
        )
        stack = describe_stack(self.cfn, SERVICE_STACK) or {}
        if (
            stack.get("StackStatus") != "UPDATE_ROLLBACK_COMPLETE"
            or self.state().version != previous[MODEL_VERSION_PARAMETER]
        ):
            raise StepFailed(
                "rollback of v5", f"expected UPDATE_ROLLBACK_COMPLETE on v4, got {stack.get('StackStatus')}"
            )
        return "EMULATED, what ECS + CloudFormation do (moto runs no tasks): UPDATE_ROLLBACK_COMPLETE on v4"

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
        return "started; the real model server passes the smoke test and turns healthy"

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
                "  # upload a new model version: redeploy_service rolls the service to it",
                f"  aws s3 cp any-file.pkl {uri}",
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
