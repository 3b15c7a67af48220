"""What `aurelius status` and `aurelius history` print: their tables, from what was read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aurelius.core.model_signature import SignatureStatus
from aurelius.formatting import short, size, table, when
from aurelius.history import Deploy
from aurelius.infra_checks import TaskCount
from aurelius.status import ALARM_NOTE, IN_SYNC, EnvironmentStatus

STATUS_HEADERS = [
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
    "SIGNED",
    "TASKS",
]
HISTORY_HEADERS = ["STARTED", "ENDED", "OUTCOME", "KIND", "MODEL VERSION", "UPLOADED", "SIZE", "SIGNED"]


def status_row(r: EnvironmentStatus) -> list[str]:
    deployed, newest = r.deployed, r.newest
    same = bool(newest and r.deployed_version == newest.version_id)
    return [
        r.environment,
        r.state,
        r.stack_status or "-",
        r.revision or "-",
        short(r.deployed_version),
        when(deployed.last_modified) if deployed else "-",
        size(deployed.size) if deployed else "-",
        "= deployed" if same else short(newest.version_id if newest else None),
        "" if same else (when(newest.last_modified) if newest else "-"),
        r.last_deploy.describe() if r.last_deploy else "-",
        signed_cell(r),
        tasks_cell(r.tasks),
    ]


def yes_no(signature: SignatureStatus | None) -> str:
    return "-" if signature is None else ("yes" if signature.signed else "no")


def signed_cell(r: EnvironmentStatus) -> str:
    """Deployed / newest: "yes/no" (one word when they are the same version); "!" marks where the
    stack requires signing."""
    same = bool(r.newest and r.deployed_version == r.newest.version_id)
    cell = yes_no(r.deployed_signature) if same else f"{yes_no(r.deployed_signature)}/{yes_no(r.newest_signature)}"
    return f"{cell} (required)" if r.signing_required else cell


def tasks_cell(tasks: TaskCount | None) -> str:
    if tasks is None:
        return "-"
    scaling = f" [{tasks.minimum}-{tasks.maximum}]" if tasks.minimum is not None else ""
    return f"{tasks.running}/{tasks.desired}{scaling}"


def status_notes(r: EnvironmentStatus) -> list[str]:
    """The lines under the table for one environment: why it is not in sync, signatures, tasks, alarms."""
    lines = []
    if r.state != IN_SYNC:
        lines.append(f"{r.environment}: {r.state}: {r.reason}")
    same = bool(r.newest and r.deployed_version == r.newest.version_id)
    shown = [("deployed", r.deployed_signature)] + ([] if same else [("newest", r.newest_signature)])
    for label, signature in shown if r.signing_required else []:  # unsigned environments: the column says it
        if signature is not None and not signature.signed:
            lines.append(f"{r.environment}: {label} version not signed: {signature.reason}")
    if r.tasks is not None:
        lines.append(f"{r.environment}: {r.tasks}")
    for name in r.alarms_in_alarm:
        lines.append(f"{r.environment}: deployment alarm {name} is in ALARM: {ALARM_NOTE}")
    if r.service_note:
        lines.append(f"{r.environment}: {r.service_note}")
    return lines


def status_table(results: Sequence[EnvironmentStatus]) -> str:
    return table(STATUS_HEADERS, [status_row(r) for r in results])


def history_table(deploys: Sequence[Deploy], signatures: Mapping[str, SignatureStatus] | None = None) -> str:
    rows = [
        [
            when(d.started),
            when(d.ended),
            d.outcome,
            d.kind,
            d.version_label(),
            when(d.model.last_modified) if d.model else "-",
            size(d.model.size) if d.model else "-",
            yes_no((signatures or {}).get(d.version_id or "")),
        ]
        for d in deploys
    ]
    return table(HISTORY_HEADERS, rows)
