"""Exit codes and the usage error shared by the operator commands.

One contract for `aurelius` (cli.py, doctor.py) and the management scripts (management.py):
0 done, 1 AWS-side state or failure, 2 bad arguments or settings (nothing sent to AWS).
"""

from __future__ import annotations

EXIT_OK, EXIT_AWS, EXIT_USAGE = 0, 1, 2
# doctor's name for exit 1: something to fix, or a link that could not be checked.
EXIT_PROBLEM = EXIT_AWS


class UsageError(Exception):
    """Bad arguments found after parsing: exit 2, nothing changed."""
