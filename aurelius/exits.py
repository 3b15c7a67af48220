"""The operator's exit-code contract, and the errors that choose the code.

One contract for `aurelius` and the management scripts (aurelius.scripts.management):
0 done, 1 AWS-side state or failure, 2 bad arguments or settings (nothing sent to AWS).
"""

from __future__ import annotations

EXIT_OK, EXIT_AWS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments found after parsing: exit 2, nothing changed."""


class AwsSide(Exception):
    """AWS-side state or failure: exit 1. ``label`` starts the message."""

    label = "error"


class Refused(AwsSide):
    """AWS-side state forbids the operation (stack busy, not updatable, missing)."""

    label = "refused"


class Failed(AwsSide):
    """The operation ran and failed on the AWS side (the update rolled back)."""

    label = "failed"
