"""Row 2. Redeploy cost: AWS API calls and in-process time per redeploy, aurelius next to a peer.

Both run against the same moto server on 127.0.0.1, in this process (the server works in a
thread of it, so each time includes moto doing the work: these are local costs, not AWS latency).

aurelius: a new model version is uploaded (not timed), then redeploy_service handles its S3
notification: HeadObject, DescribeStacks, UpdateStack of the service stack, which moto applies
at once (a new task definition revision pinned to that version). Timed: the handler call.
Measured twice: warm (clients kept, as in a warm Lambda environment), and with new clients for
each redeploy (the first call of a new environment, imports excluded: those are row 1).
One warm-up redeploy is discarded.

peer: the `ecs-deploy` CLI from PyPI (`ecs deploy CLUSTER SERVICE --timeout -1 -e model-server
MODEL_VERSION_ID <version>`: register a new task definition revision with the version pinned,
move the service to it, deregister the old one, do not wait for the rollout), run through its
click entry point in this process so its API calls can be counted the same way. It gets its
own ECS service in the same cluster, with a copy of the task definition the service stack
created (a moto bug leaves the stack's own service on a stale revision after a stack update,
which would make the two interfere). The peer is told the version id; finding it out
would cost it a HeadObject more. Also timed as a separate `ecs deploy` process (notes).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import Row, median, ms, ratio
from bench.sandbox import CLUSTER, SERVICE, CallCounter, Sandbox, s3_event

PEER_SERVICE = "aurelius-bench-peer-svc"
PEER_FAMILY = "aurelius-bench-peer-task"
CONTAINER = "model-server"
COPIED = (
    "containerDefinitions",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "volumes",
    "requiresCompatibilities",
    "cpu",
    "memory",
)


def _peer_service(box: Sandbox) -> str:
    """A service running a copy of the stack's first task definition revision (intact in moto)."""
    arn = box.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["taskDefinition"]
    task = box.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    copy = box.ecs.register_task_definition(family=PEER_FAMILY, **{k: task[k] for k in COPIED if task.get(k)})
    box.ecs.create_service(
        cluster=CLUSTER,
        serviceName=PEER_SERVICE,
        taskDefinition=copy["taskDefinition"]["taskDefinitionArn"],
        desiredCount=2,
    )
    return copy["taskDefinition"]["taskDefinitionArn"]


def _peer_args(version: str) -> list[str]:
    return ["deploy", CLUSTER, PEER_SERVICE, "--timeout", "-1", "-e", CONTAINER, "MODEL_VERSION_ID", version]


def _peer_state(box: Sandbox) -> tuple[str, str | None]:
    arn = box.ecs.describe_services(cluster=CLUSTER, services=[PEER_SERVICE])["services"][0]["taskDefinition"]
    container = box.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in container.get("environment", [])}
    return arn, env.get("MODEL_VERSION_ID")


def _run_peer_in_process(version: str) -> str:
    from ecs_deploy.cli import ecs

    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            ecs.main(_peer_args(version), standalone_mode=False)
        except SystemExit as exc:  # ecs-deploy exits 1 on an AWS error
            if exc.code:
                raise RuntimeError(f"ecs deploy exited {exc.code}: {output.getvalue().strip()[-400:]}") from None
    return output.getvalue()


def aurelius(box: Sandbox, redeploys: int, new_clients: bool) -> dict[str, Any]:
    counter = CallCounter()
    module = box.redeploy_handler(counter)
    times, calls = [], []
    for attempt in range(redeploys + 1):
        version = box.upload()
        counter.calls.clear()
        started = time.perf_counter()
        if new_clients:
            box.fresh_clients(module, counter)  # inside the timing: building them is the point
        result = box.invoke(module, s3_event())
        elapsed = time.perf_counter() - started
        if result.get("action") != "started" or box.deployed_version() != version:
            raise RuntimeError(f"aurelius redeploy {attempt} did not deploy {version}: {result}")
        if attempt:  # the first is a warm-up
            times.append(elapsed)
            calls.append(dict(counter.calls))
    return {"times": times, "calls": calls}


def peer(box: Sandbox, redeploys: int) -> dict[str, Any]:
    _peer_service(box)
    counter = CallCounter()
    times, calls = [], []
    for attempt in range(redeploys + 1):
        version = box.upload()
        before, _ = _peer_state(box)
        counter.calls.clear()
        with counter.every_new_client():
            started = time.perf_counter()
            _run_peer_in_process(version)
            elapsed = time.perf_counter() - started
        after, pinned = _peer_state(box)
        if after == before or pinned != version:
            raise RuntimeError(
                f"ecs deploy did not roll a new revision pinned to {version} ({before} -> {after}, {pinned})"
            )
        if attempt:
            times.append(elapsed)
            calls.append(dict(counter.calls))
    return {"times": times, "calls": calls}


def peer_as_process(box: Sandbox, runs: int) -> list[float]:
    """`ecs deploy` as a person or a pipeline runs it: a new process each time."""
    executable = Path(sys.executable).parent / "ecs"
    env = {**os.environ, **box.aws.environment}
    times = []
    for _ in range(runs):
        version = box.upload()
        started = time.perf_counter()
        done = subprocess.run(
            [str(executable), *_peer_args(version)], env=env, capture_output=True, text=True, timeout=120
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"ecs deploy exited {done.returncode}: {(done.stdout + done.stderr).strip()[-400:]}")
    return times


def _calls(samples: list[dict[str, int]]) -> tuple[int, str]:
    totals = {sum(s.values()) for s in samples}
    if len(totals) != 1:
        raise RuntimeError(f"API calls per redeploy varied: {samples}")
    names = ", ".join(f"{name}{f' ×{n}' if n > 1 else ''}" for name, n in samples[0].items())
    return totals.pop(), names


def run(box: Sandbox, redeploys: int = 20, **_) -> tuple[list[Row], dict]:
    warm = aurelius(box, redeploys, new_clients=False)
    cold = aurelius(box, redeploys, new_clients=True)
    rows: list[Row] = []
    ours_calls, ours_names = _calls(warm["calls"])
    try:
        theirs = peer(box, redeploys)
    except Exception as exc:  # say why, never a made-up number
        reason = f"ecs-deploy could not run against moto: {type(exc).__name__}: {exc}"
        rows.append(
            Row("2", "AWS API calls per redeploy", f"{ours_calls} ({ours_names})", "not measured", "n/a", reason)
        )
        rows.append(
            Row(
                "2",
                f"in-process time per redeploy, median of {redeploys}",
                ms(median(warm["times"])),
                "not measured",
                "n/a",
                reason,
            )
        )
        return rows, {"aurelius_warm": warm, "aurelius_new_clients": cold, "peer_error": reason}
    theirs_calls, theirs_names = _calls(theirs["calls"])
    try:
        process = median(peer_as_process(box, 3))
        process_note = f"`ecs deploy` as its own process: {ms(process)} (median of 3, interpreter start included)"
    except Exception as exc:
        process_note = f"`ecs deploy` as its own process failed: {exc}"
    rows.append(
        Row(
            "2",
            "AWS API calls per redeploy (botocore before-call events)",
            f"{ours_calls} ({ours_names})",
            f"{theirs_calls} ({theirs_names}), `ecs deploy --timeout -1`",
            ratio(ours_calls, theirs_calls),
            f"same in each of {redeploys} redeploys; the peer was given the version id (+1 HeadObject to find it)",
        )
    )
    rows.append(
        Row(
            "2",
            f"in-process time per redeploy against moto on 127.0.0.1, median of {redeploys}",
            f"{ms(median(warm['times']))} warm; {ms(median(cold['times']))} with new clients",
            f"{ms(median(theirs['times']))} (`ecs deploy`, in-process, makes its clients each run)",
            ratio(median(warm["times"]), median(theirs["times"])),
            f"ratio uses the warm time; moto applies the whole stack update inside aurelius' call. {process_note}",
        )
    )
    return rows, {"aurelius_warm": warm, "aurelius_new_clients": cold, "peer": theirs}
