"""Row 3. Burst: 1,000 S3 events for the model key, shuffled and duplicated, uploads in between.

Against the moto server with the deployed stacks, brought in sync with S3 first (one
reconcile, not counted): ``uploads`` new model versions are put at random points of a stream
of ``events`` S3 notifications, all within its first nine tenths, so at least a tenth of the
events come after the newest upload. Each
event is the notification of a random upload made so far: a duplicate, late and out of order
as often as not, carrying that upload's versionId and sequencer, as real S3 events do.
redeploy_service handles every event in turn, with warm clients (a seeded random generator
makes the run repeatable).

Reported: UpdateStack calls; whether the version deployed at the end is the newest upload;
UpdateStack calls for a version that was already deployed (must be 0); and whether the deployed
version ever moved back to an older upload (must not). moto applies updates at once, so every
upload that is current when some event arrives is deployed once; on AWS a running rollout
defers the events that arrive during it, so there would be fewer, never more.
"""

from __future__ import annotations

import random
import time
from collections import Counter

from bench import Row
from bench.sandbox import CallCounter, Sandbox, s3_event


def run(box: Sandbox, events: int = 1000, uploads: int = 20, seed: int = 20261126, **_) -> tuple[list[Row], dict]:
    rng = random.Random(seed)
    counter = CallCounter()
    module = box.redeploy_handler(counter)
    # Start in sync: the stack runs S3's current version (earlier rows may have uploaded more).
    if box.invoke(module, s3_event())["action"] not in ("started", "in-sync"):
        raise RuntimeError("could not bring the service stack in sync before the burst")
    cfn = module.runtime.clients.get("cloudformation")
    sent: list[str] = []
    cfn.meta.events.register(
        "provide-client-params.cloudformation.UpdateStack",
        lambda params, **kw: sent.append(
            next(p["ParameterValue"] for p in params["Parameters"] if p["ParameterKey"] == "ModelVersionId")
        ),
    )

    made: list[str] = [box.deployed_version()]  # upload order; [0] is what the stack runs now
    upload_at = Counter(rng.randrange(0, max(1, events * 9 // 10)) for _ in range(uploads))
    while sum(upload_at.values()) < uploads:  # (randrange may repeat a position: that is two uploads)
        upload_at[rng.randrange(0, max(1, events * 9 // 10))] += 1
    actions: Counter = Counter()
    went_back = 0
    deployed_rank = 0
    started = time.perf_counter()
    for position in range(events):
        for _ in range(upload_at.get(position, 0)):
            made.append(box.upload())
        notified = rng.randrange(len(made))  # any upload so far: duplicates, late, reordered
        event = s3_event(version_id=made[notified], sequencer=f"{notified:016X}")
        actions[box.invoke(module, event)["action"]] += 1
        if sent and made.index(sent[-1]) < deployed_rank:
            went_back += 1
        deployed_rank = made.index(sent[-1]) if sent else deployed_rank
    elapsed = time.perf_counter() - started

    final = box.deployed_version()
    repeated = sum(n - 1 for n in Counter(sent).values() if n > 1)
    newest = final == made[-1]
    summary = ", ".join(f"{n} {action}" for action, n in actions.most_common())
    rows = [
        Row(
            "3",
            f"burst: {events:,} S3 events (shuffled, duplicated) with {uploads} uploads interleaved",
            f"{len(sent)} UpdateStack; newest deployed at the end: {'yes' if newest else 'NO'}",
            f"{uploads} uploads (at most one UpdateStack each)",
            f"{len(sent) / uploads:.2f}",
            f"UpdateStack for an already-deployed version: {repeated}; moved back to an older version: {went_back}; "
            f"outcomes: {summary}; {events / elapsed:.0f} events/s ({elapsed:.1f} s)",
        )
    ]
    return rows, {
        "update_stack_versions": sent,
        "uploads": made[1:],
        "actions": dict(actions),
        "seconds": elapsed,
        "newest_deployed": newest,
    }
