"""One doctor check's result, its statuses, and the result of a call that could not be made."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from botocore.exceptions import ClientError

from aurelius.core.aws_errors import error_code

OK, FAIL, ERROR, SKIPPED, NOT_CHECKABLE = "ok", "fail", "error", "skipped", "not checkable here"
# Checked, nothing to repair now, but a coming rollout is less safe (a deployment alarm already
# in ALARM). Shown with its fix; does not change the exit code.
WARNING = "warning"
PROBLEMS = (FAIL, ERROR)

ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "403",
    "Forbidden",
    "AuthorizationError",
}


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def failed_call(name: str, exc: Exception, action: str) -> Check:
    """A check that could not run: access denied names the IAM action the caller needs."""
    if isinstance(exc, ClientError) and error_code(exc) in ACCESS_DENIED:
        return Check(
            name,
            ERROR,
            f"access denied: the caller may not call {action}; cannot check this",
            f"run doctor as a principal allowed {action}",
        )
    return Check(name, ERROR, f"{action} failed: {exc}")


def skipped(name: str, why: str) -> Check:
    return Check(name, SKIPPED, why)
