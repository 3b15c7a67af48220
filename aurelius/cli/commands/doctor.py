"""`aurelius doctor`: read-only preflight of one environment's chain (aurelius.doctor)."""

from __future__ import annotations

import argparse

from aurelius.cli.clients import ClientFactory
from aurelius.cli.environments import environment
from aurelius.doctor.chain import run_checks
from aurelius.doctor.report import report
from aurelius.exits import EXIT_AWS, EXIT_OK


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "doctor",
        parents=[common],
        help="read-only preflight: every link of one environment's chain, and how to fix the first broken one",
        description="Checks, read-only, each link an environment needs: credentials and region, the cluster and its "
        "capacity providers, the trigger stack and its functions, the model bucket (versioning, notifications), "
        "the image, the model object, the service stack and its CloudFormation role, the model signatures, the "
        "task network (one VPC, a way out of the task subnets), room in the cluster for a deploy, the deployment "
        "alarms, what the function and service roles may do (iam:SimulatePrincipalPolicy) and the service-linked "
        "roles a first deploy creates.",
        epilog="Exit 0 nothing to fix (warnings included; checks a simulator cannot answer are shown as "
        "'not checkable here'); "
        "1 something to fix or could not be checked; 2 bad arguments or settings.",
    )
    parser.add_argument("--environment", "-e", required=True, help="environment block of the settings file")
    parser.add_argument(
        "--json", action="store_true", help="machine-readable output: one object per check (name, status, detail, fix)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, clients: ClientFactory) -> int:
    env = environment(args)
    return EXIT_OK if report(env, run_checks(env, clients), args.json) else EXIT_AWS
