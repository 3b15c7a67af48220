"""`make demo`: the whole redeploy loop on this machine, no AWS account.

Steps: start moto on 127.0.0.1; deploy the cluster, trigger, service and no-Docker stacks with
their own scripts (the trigger stack translated from template.yaml); upload a model and let the
S3 notification reach redeploy_service through the local Lambda runtime; upload two versions in
quick succession; fire one scheduled_refresh tick. Each step is checked through the AWS API and
printed on a timeline. Exit 0 when the loop worked, 1 naming the failed step otherwise.

    python -m aurelius.sandbox.demo [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aurelius.sandbox.environment import LocalAws, local_aws
from aurelius.sandbox.triggers import REPO, TriggerStack, install_trigger_stack
from aurelius.core.reconcile import MODEL_VERSION_PARAMETER
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
        self.out(f"  {len(self.steps):>2}. {step.name:<42} {step.seconds:6.2f}s  {str(step.before):<28} -> {str(step.after):<28} {step.note}")


def demo_model(version: int) -> bytes:
    """A model pickle made of plain data (the demo's server never runs; nothing unpickles it here)."""
    return pickle.dumps({"model": "aurelius-demo", "version": version, "weights": [0.5 * version, 1.0]})


class Demo:
    def __init__(self, aws: LocalAws, timeline: Timeline, verbose: bool = False):
        self.aws, self.timeline, self.verbose = aws, timeline, verbose
        session = aws.session()
        self.s3, self.cfn = session.client("s3"), session.client("cloudformation")
        self.trigger: TriggerStack | None = None
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
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **self.aws.environment}, timeout=300)
        if self.verbose or done.returncode != 0:
            sys.stdout.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise StepFailed(f"deploy {which} stack", f"{SCRIPTS[which].name} exited {done.returncode}: {done.stderr.strip()[-300:]}")
        return done.stdout.strip().splitlines()[-1]

    def upload(self, version: int) -> str:
        return self.s3.put_object(Bucket=self.trigger.bucket, Key=self.trigger.key, Body=io.BytesIO(demo_model(version)))["VersionId"]

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
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running and print commands to explore it")
    parser.add_argument("--verbose", action="store_true", help="show the management scripts' output")
    args = parser.parse_args(argv)
    return run_demo(keep=args.keep, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
