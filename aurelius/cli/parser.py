"""The `aurelius` argument parser: the shared options, then one subcommand per command module."""

from __future__ import annotations

import argparse

from aurelius.cli.commands import COMMANDS
from aurelius.cli.environments import DEFAULT_SETTINGS, DEFAULT_SETTINGS_HELP


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--settings", default=str(DEFAULT_SETTINGS), metavar="FILE", help=DEFAULT_SETTINGS_HELP)
    parser = argparse.ArgumentParser(
        prog="aurelius",
        description="Look at and overrule the aurelius model redeployer. Talks to AWS through boto3 "
        "(AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION apply).",
        epilog="Exit codes: 0 ok, 1 AWS-side state or failure (status: not everything in sync), 2 bad arguments or settings.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers, common)
    return parser
