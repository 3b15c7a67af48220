"""Property tests: any sequence of uploads and events keeps the redeploy loop's promises.

hypothesis draws sequences of steps: model uploads; their S3 notifications delivered late,
reordered, duplicated or never (as S3 may, docs/aws.md), in the S3 or the EventBridge form, with
the key URL-encoded as S3 or moto encode it; notifications for other objects; malformed
events of every shape; schedule ticks; stack status changes (also late and duplicated); rollouts
that finish; someone else's updates making the stack busy, also between our DescribeStacks and
our UpdateStack. The two real handlers run every event, with the real reconcile core, over
in-memory fakes of S3 and CloudFormation (tests/property/fakes.py: a fake, documented as one;
moto per example would be far too slow).

Promises checked after every step, and at the end:
- the deployed model version never goes back to an older one;
- no UpdateStack is ever sent for the version already deployed, or for anything but S3's current;
- no exception escapes a handler, whatever the event (a bad one is rejected with a reason);
- no alarm is raised (nothing in these sequences needs a human);
- once the stack is free and one schedule tick runs, the newest version is deployed.

Deterministic in CI: derandomized, no example database.
"""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as statistic
from hypothesis import strategies as st

from aurelius.core.lambda_runtime import Config
from tests.helpers import BUCKET, SERVICE_STACK, LambdaContext, load_event, load_handler
from tests.property.fakes import FakeCloudFormation, FakeS3, NoSns

# Not the local environment's key: a space makes S3's URL-encoded form of the key (in its
# notifications) differ from the key itself, which the events must be decoded through.
SPACED_KEY = "models/model file.pkl"
OTHER_STACK = "aurelius-service-stack-local-other"
ACTIONS = {"started", "in-sync", "skipped", "deferred", "rejected"}  # "alarm" would need a human

# 1,000 generated cases per property. Cost on this 2-core machine (in-memory fakes, no moto):
# ~5 s for the event-sequence property, ~12 s for the burst property, ~28 s for the file.
SETTINGS = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------------------- events


def s3_notification(key: str = SPACED_KEY, bucket: str = BUCKET, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    event = load_event("s3_put")
    record = event["Records"][0]
    record["eventName"] = name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"]["key"] = key
    return event


def eventbridge_object_created(key: str = SPACED_KEY, bucket: str = BUCKET) -> dict[str, Any]:
    event = load_event("s3_eventbridge_object_created")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    return event


def status_change(stack: str = SERVICE_STACK, status: str = "UPDATE_COMPLETE") -> dict[str, Any]:
    event = load_event("stack_status_update_complete")
    event["detail"]["stack-id"] = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{stack}/fake"
    event["detail"]["status-details"]["status"] = status
    return event


# How S3 (quote_plus: space as +) and moto (also "/" as %2F) encode the model key.
OUR_KEY_ENCODINGS = [quote_plus(SPACED_KEY, safe="/"), quote_plus(SPACED_KEY), quote(SPACED_KEY, safe="/")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside an event (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, prefix + (index,))
    return found


DELETE = object()


def mutated(template: dict[str, Any], edits: list[tuple[int, Any]]) -> dict[str, Any]:
    """The template with some values replaced by random JSON values, or deleted."""
    event = copy.deepcopy(template)
    for choice, value in edits:
        candidates = paths(event)
        if not candidates:
            break
        path = candidates[choice % len(candidates)]
        parent = event
        for part in path[:-1]:
            parent = parent[part]
        if value is DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return event


edits = st.lists(st.tuples(st.integers(0, 10_000), json_values | st.just(DELETE)), min_size=1, max_size=3)

# A bad or foreign event for redeploy_service: anything at all, or a valid shape damaged.
bad_upload_events = st.one_of(
    json_values,
    st.builds(mutated, st.sampled_from([s3_notification(), eventbridge_object_created()]), edits),
    st.builds(
        lambda k: s3_notification(key=k),
        st.sampled_from(["models/other.pkl", SPACED_KEY + ".tmp", "", "%", "models%2F"]),
    ),
    st.builds(lambda b: s3_notification(bucket=b), st.sampled_from(["other-bucket", BUCKET.upper(), ""])),
    st.just(s3_notification(name="ObjectRemoved:Delete")),
    st.builds(lambda k: eventbridge_object_created(key=k), st.sampled_from(["models/other.pkl", ""])),
)
# A bad or foreign event for scheduled_refresh.
bad_refresh_events = st.one_of(
    json_values,
    st.builds(mutated, st.sampled_from([load_event("schedule"), status_change()]), edits),
    st.just(status_change(stack=OTHER_STACK)),
    st.just(s3_notification()),
)

# ---------------------------------------------------------------------------- steps

upload = st.just(("upload",))
# deliver the notification of an earlier upload; keep=True leaves it pending (a duplicate later)
notify = st.tuples(
    st.just("notify"),
    st.integers(0, 50),
    st.booleans(),
    st.sampled_from(["s3", "eventbridge"]),
    st.sampled_from(OUR_KEY_ENCODINGS),
)
rollout_finishes = st.just(("rollout-finishes",))
# Weighted by repetition: the ordinary steps of the loop come up more often than the odd ones.
steps = st.one_of(
    upload,
    upload,
    notify,
    notify,
    notify,
    rollout_finishes,
    rollout_finishes,
    st.just(("tick",)),
    st.tuples(
        st.just("status-event"), st.sampled_from(["UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_FAILED"])
    ),
    st.just(("other-update-starts",)),
    st.just(("busy-before-our-next-update",)),
    st.tuples(st.just("bad-upload-event"), bad_upload_events),
    st.tuples(st.just("bad-refresh-event"), bad_refresh_events),
)


@pytest.fixture(scope="module")
def handlers() -> dict[str, ModuleType]:
    return {name: load_handler(name) for name in ("redeploy_service", "scheduled_refresh")}


class World:
    """S3, CloudFormation and the two handlers wired to them; runs steps, checks promises."""

    def __init__(self, handlers: dict[str, ModuleType], deadline: int | None = None):
        self.s3 = FakeS3(BUCKET, SPACED_KEY)
        first = self.s3.upload()
        parameters = {
            "ClusterName": "c",
            "ContainerImage": "img:1",
            "ModelS3Uri": f"s3://{BUCKET}/{SPACED_KEY}",
            "ModelVersionId": first,
            "DeploymentNonce": "n0",
        }
        if deadline is not None:
            parameters["RolloutDeadlineSeconds"] = str(deadline)
        self.cfn = FakeCloudFormation(SERVICE_STACK, self.s3, parameters)
        self.handlers = handlers
        config = Config(SERVICE_STACK, BUCKET, SPACED_KEY, role_arn=None, topic_arn=None, force_refresh=False)
        for module in handlers.values():
            module.runtime.config = config
            module.runtime.clients._made = {"s3": self.s3, "cloudformation": self.cfn, "sns": NoSns()}
        self.actions = ACTIONS | ({"cancelled"} if deadline else set())
        self.cancelled_now = False  # a cancel rolls the stack back to the version before, by design
        self.pending: list[int] = []  # upload numbers whose notification is not delivered yet
        self.highest_rank = 0
        self.results: list[dict[str, Any]] = []

    def invoke(self, function: str, event: Any) -> dict[str, Any]:
        result = self.handlers[function].lambda_handler(event, LambdaContext())  # must never raise
        assert isinstance(result, dict) and result.get("action") in self.actions, result
        self.results.append(result)
        self.cancelled_now = self.cancelled_now or result["action"] == "cancelled"
        return result

    def run(self, step: tuple) -> None:
        self.steps[step[0]](self, *step[1:])
        self.check()

    def _upload(self) -> None:
        self.s3.upload()
        self.pending.append(len(self.s3.versions) - 1)

    def _notify(self, choice: int, keep: bool, form: str, key: str) -> None:
        if not self.pending:
            return
        index = choice % len(self.pending)
        if not keep:
            self.pending.pop(index)
        event = s3_notification(key=key) if form == "s3" else eventbridge_object_created(key=key)
        self.invoke("redeploy_service", event)

    def _rollout_finishes(self) -> None:
        if self.cfn.finish_rollout():
            self.invoke("scheduled_refresh", status_change())  # EventBridge delivers the change

    def _busy_before_our_next_update(self) -> None:
        self.cfn.busy_before_next_update = True

    steps = {
        "upload": _upload,
        "notify": _notify,
        "bad-upload-event": lambda self, event: self.invoke("redeploy_service", event),
        "bad-refresh-event": lambda self, event: self.invoke("scheduled_refresh", event),
        "tick": lambda self: self.invoke("scheduled_refresh", load_event("schedule")),
        "status-event": lambda self, status: self.invoke("scheduled_refresh", status_change(status=status)),
        "rollout-finishes": _rollout_finishes,
        "other-update-starts": lambda self: self.cfn.start_other_update(),
        "busy-before-our-next-update": _busy_before_our_next_update,
        "rollout-stalls": lambda self: self.cfn.stall(),
    }

    def check(self) -> None:
        assert self.cfn.violations == []
        rank = self.s3.rank(self.cfn.deployed)
        if self.cancelled_now:
            self.highest_rank, self.cancelled_now = rank, False
        assert rank >= self.highest_rank, f"deployed version went back from #{self.highest_rank} to #{rank}"
        self.highest_rank = rank

    def settle(self) -> dict[str, Any]:
        """Every running update finishes, the stack is free, and one schedule tick runs."""
        self.cfn.busy_before_next_update = False
        self.cfn.finish_rollout()
        result = self.invoke("scheduled_refresh", load_event("schedule"))
        self.check()
        return result


@SETTINGS
@given(sequence=st.lists(steps, min_size=3, max_size=60))
def test_any_event_sequence_never_deploys_an_older_or_the_deployed_version_and_ends_on_the_newest(handlers, sequence):
    # Given a service running the first model version
    world = World(handlers)
    # When the steps happen (every step checks: no older version, no UpdateStack for the deployed
    # or a non-current version, no escaped exception, no alarm)
    for step in sequence:
        world.run(step)
    # Then, once the stack is free and one schedule tick has run, the newest version is deployed
    world.settle()
    assert world.cfn.deployed == world.s3.current
    # (what the sequences exercised: pytest --hypothesis-show-statistics)
    statistic(f"{len(world.cfn.updates)} updates" if len(world.cfn.updates) < 3 else "3+ updates")
    statistic("refused busy" if world.cfn.refused_busy else "never refused busy")
    for action in {r["action"] for r in world.results}:
        statistic(f"action {action}")
    # and each accepted update deployed a newer version than the one before
    ranks = [world.s3.rank(v) for v in world.cfn.updates]
    assert ranks == sorted(set(ranks))


@SETTINGS
@given(uploads=st.integers(1, 6), copies=st.integers(1, 4), order=st.randoms(use_true_random=False))
def test_a_burst_of_shuffled_duplicate_notifications_deploys_only_the_newest_once(handlers, uploads, copies, order):
    # Given several uploads in quick succession, before any notification is delivered
    world = World(handlers)
    for _ in range(uploads):
        world.run(("upload",))
    # When their notifications arrive shuffled and duplicated
    events = [s3_notification(key=quote_plus(SPACED_KEY, safe="/")) for _ in range(uploads * copies)]
    order.shuffle(events)
    actions = [world.invoke("redeploy_service", event)["action"] for event in events]
    # Then exactly one update was sent, for the newest version; the rest found the stack busy
    # with it or in sync
    assert world.cfn.updates == [world.s3.current]
    assert actions.count("started") == 1 and set(actions) <= {"started", "deferred", "in-sync"}


@SETTINGS
@given(event=bad_upload_events)
# Found by this test: EventBridge-shaped events without detail-type or detail raised KeyError.
@example(event={"source": "aws.s3"})
@example(event={"source": "aws.s3", "detail-type": "Object Created"})
@example(
    event={
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": 7}},
    }
)
def test_redeploy_service_rejects_or_handles_any_event_without_raising(handlers, event):
    # Given a service in sync with S3, and a newer upload waiting
    world = World(handlers)
    world.run(("upload",))
    # When an arbitrary (foreign, damaged or nonsense) event reaches redeploy_service
    result = world.invoke("redeploy_service", event)
    # Then it returns an outcome (no exception): rejected with a reason, or a normal reconcile
    if result["action"] == "rejected":
        assert isinstance(result["reason"], str) and result["reason"]
    assert world.cfn.violations == []


@SETTINGS
@given(event=bad_refresh_events)
def test_scheduled_refresh_rejects_or_handles_any_event_without_raising(handlers, event):
    # Given a service with a newer upload waiting
    world = World(handlers)
    world.run(("upload",))
    # When an arbitrary event reaches scheduled_refresh
    result = world.invoke("scheduled_refresh", event)
    # Then it returns an outcome, never an exception
    if result["action"] == "rejected":
        assert isinstance(result["reason"], str) and result["reason"]
    assert world.cfn.violations == []


# Steps where rollouts may stall past the stack's deadline, and people update the stack too.
deadline_steps = st.one_of(
    upload,
    upload,
    notify,
    rollout_finishes,
    st.just(("rollout-stalls",)),
    st.just(("rollout-stalls",)),
    st.just(("tick",)),
    st.just(("tick",)),
    st.just(("other-update-starts",)),
    st.tuples(st.just("status-event"), st.sampled_from(["UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"])),
)


@SETTINGS
@given(sequence=st.lists(deadline_steps, min_size=3, max_size=40))
# Always run: our stalled update is cancelled; a person's stalled update is not.
@example(sequence=[("upload",), ("tick",), ("rollout-stalls",), ("tick",), ("tick",), ("upload",), ("tick",)])
@example(sequence=[("upload",), ("other-update-starts",), ("rollout-stalls",), ("tick",), ("rollout-finishes",)])
def test_only_our_updates_are_cancelled_only_past_their_deadline_and_a_cancelled_version_is_not_retried(
    handlers, sequence
):
    # Given a service stack whose updates have a 30-minute deadline
    world = World(handlers, deadline=1800)
    # When uploads, ticks, stalls and people's updates happen (the fake CloudFormation records a
    # cancel of someone else's update, a cancel before the deadline, and an UpdateStack for a
    # version cancelled since the last update began as violations; check() asserts there are none)
    for step in sequence:
        world.run(step)
    # Then every cancel was of an update the redeployer started
    cancels = [r for r in world.results if r["action"] == "cancelled"]
    assert all(r["token"].startswith("aurelius-cancel-") for r in cancels)
    statistic("cancelled" if cancels else "no cancel")
    # and once the stack is free, a tick deploys the newest version unless its update was cancelled
    world.settle()
    assert world.cfn.deployed == world.s3.current or world.s3.current in world.cfn.cancelled
