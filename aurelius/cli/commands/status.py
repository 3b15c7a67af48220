"""`aurelius status`: each environment's stack, deployed and newest model version, and sync state.

The state is the redeployer's own observe and decide (aurelius.status); nothing is written.
"""

from __future__ import annotations

import argparse
import json

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.cli.clients import ClientFactory
from aurelius.cli.environments import environment, every_environment, s3_and_cloudformation
from aurelius.cli.output import status_notes, status_table
from aurelius.exits import EXIT_AWS, EXIT_OK
from aurelius.status import ERROR, IN_SYNC, EnvironmentStatus, ServiceClients, environment_status


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "status",
        parents=[common],
        help="each environment: stack, deployed and newest model version, sync state",
        description="For each environment (or one): stack status, deployed model version (upload time, size), "
        "newest model version in S3, state (in sync / behind / deploying / failed / missing / error), "
        "task definition revision, last deploy's outcome; whether the deployed and newest versions have a "
        "signature object (and whether the stack requires one), desired/running tasks with the scaling range, "
        "and deployment alarms already in ALARM.",
        epilog="Exit 0 when every environment shown is in sync; 1 when any is behind, deploying, failed, "
        "missing or could not be read; 2 bad arguments or settings.",
    )
    parser.add_argument(
        "--environment", "-e", help="only this environment (default: every environment in the settings)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, clients: ClientFactory) -> int:
    environments = [environment(args)] if args.environment else every_environment(args)
    results: list[EnvironmentStatus] = []
    for env in environments:
        model = env.settings.model
        try:
            s3, cfn = s3_and_cloudformation(env, clients)
        except (BotoCoreError, ClientError) as exc:  # e.g. no region configured
            results.append(
                EnvironmentStatus(env.name, env.stack_name, model.uri, ERROR, f"{type(exc).__name__}: {exc}")
            )
            continue
        service_clients = ServiceClients(lambda service, region=env.settings.region: clients(service, region))
        results.append(
            environment_status(
                env.name, env.stack_name, model.bucket, model.key, s3=s3, cfn=cfn, service_clients=service_clients
            )
        )

    all_in_sync = all(r.state == IN_SYNC for r in results)
    if args.json:
        print(json.dumps({"in_sync": all_in_sync, "environments": [r.as_dict() for r in results]}, indent=2))
    else:
        print(status_table(results))
        for r in results:
            for line in status_notes(r):
                print(line)
    return EXIT_OK if all_in_sync else EXIT_AWS
