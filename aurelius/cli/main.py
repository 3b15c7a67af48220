"""Run one `aurelius` command and turn what went wrong into its exit code (aurelius.exits)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.cli.clients import ClientFactory, boto3_clients
from aurelius.cli.parser import build_parser
from aurelius.exits import EXIT_AWS, EXIT_USAGE, AwsSide, UsageError
from aurelius.naming import InvalidName
from aurelius.settings import SettingsError


def main(argv: Sequence[str] | None = None, *, clients: ClientFactory | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad arguments (2): argparse printed why
        return int(exc.code or 0)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(args, clients or boto3_clients())
    except (SettingsError, InvalidName, UsageError) as exc:
        print(f"aurelius {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AwsSide as exc:
        print(f"aurelius {args.command}: {exc.label}: {exc}", file=sys.stderr)
        return EXIT_AWS
    except (ClientError, BotoCoreError) as exc:
        print(f"aurelius {args.command}: AWS error: {exc}", file=sys.stderr)
        return EXIT_AWS
    except BrokenPipeError:  # `aurelius status --json | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_AWS


if __name__ == "__main__":
    sys.exit(main())
