"""What `aurelius status` and `aurelius history` print: their tables, from what was read."""

from __future__ import annotations

from collections.abc import Sequence

from aurelius.formatting import short, size, table, when
from aurelius.history import Deploy
from aurelius.status import EnvironmentStatus

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
]
HISTORY_HEADERS = ["STARTED", "ENDED", "OUTCOME", "KIND", "MODEL VERSION", "UPLOADED", "SIZE"]


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
    ]


def status_table(results: Sequence[EnvironmentStatus]) -> str:
    return table(STATUS_HEADERS, [status_row(r) for r in results])


def history_table(deploys: Sequence[Deploy]) -> str:
    rows = [
        [
            when(d.started),
            when(d.ended),
            d.outcome,
            d.kind,
            d.version_label(),
            when(d.model.last_modified) if d.model else "-",
            size(d.model.size) if d.model else "-",
        ]
        for d in deploys
    ]
    return table(HISTORY_HEADERS, rows)
