"""What doctor prints: a table (or JSON) of the checks, then the first link to fix."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from aurelius.doctor.check import NOT_CHECKABLE, PROBLEMS, WARNING, Check
from aurelius.formatting import table
from aurelius.settings import Environment, ServiceSettings


def report(
    env: Environment[ServiceSettings], checks: Sequence[Check], as_json: bool, out: Callable[[str], None] = print
) -> bool:
    """Print the checks; True when nothing failed or errored."""
    problems = [c for c in checks if c.status in PROBLEMS]
    if as_json:
        out(
            json.dumps({"environment": env.name, "ok": not problems, "checks": [c.as_dict() for c in checks]}, indent=2)
        )
        return not problems

    out(f"aurelius doctor: environment {env.name} (service stack {env.stack_name})")
    out(table(["CHECK", "STATUS", "DETAIL"], [[c.name, c.status, c.detail] for c in checks]))
    for c in [c for c in checks if c.status in PROBLEMS or c.status == WARNING]:
        out(f"{c.name}: {c.status}: {c.detail}" + (f"\n  fix: {c.fix}" if c.fix else ""))
    if problems:
        out(f"{len(problems)} to fix; start with the first missing link: {problems[0].name}")
        return False
    unanswered = sum(c.status == NOT_CHECKABLE for c in checks)
    warnings = sum(c.status == WARNING for c in checks)
    notes = [f"{warnings} warning{'s' * (warnings != 1)} above"] if warnings else []
    notes += [f"{unanswered} not checkable here: check them on a real account"] if unanswered else []
    out("all checks passed" + (f" ({'; '.join(notes)})" if notes else ""))
    return True
