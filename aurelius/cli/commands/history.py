"""`aurelius history`: the model versions the service ran, newest first (aurelius.history)."""

from __future__ import annotations

import argparse
import json

from aurelius.cli.clients import ClientFactory
from aurelius.cli.environments import environment, s3_and_cloudformation
from aurelius.cli.output import history_table
from aurelius.core.decision import MODEL_VERSION_PARAMETER, StackState
from aurelius.core.stacks import describe_stack
from aurelius.exits import EXIT_OK, AwsSide, UsageError
from aurelius.history import read_history, version_signatures


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "history",
        parents=[common],
        help="the model versions the service ran, newest first",
        description="The model versions deployed to the service stack, newest first, with when each update "
        "started and ended and how (completed, rolled back), read from the stack's events and the model's "
        "S3 versions, and whether each version has a signature object (two HeadObject calls per version shown).",
        epilog="Exit 0 shown; 1 stack missing or AWS error; 2 unknown environment or bad arguments.",
    )
    parser.add_argument("--environment", "-e", required=True, help="environment block of the settings file")
    parser.add_argument("--limit", type=int, default=20, help="show at most N deploys (default 20; 0 = all)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, clients: ClientFactory) -> int:
    if args.limit < 0:
        raise UsageError("--limit must be 0 (everything) or more")
    env = environment(args)
    s3, cfn = s3_and_cloudformation(env, clients)
    model = env.settings.model
    described = describe_stack(cfn, env.stack_name)
    if described is None:
        raise AwsSide(f"service stack {env.stack_name} does not exist: no history")
    stack = StackState.from_description(described)
    deploys = read_history(cfn, s3, stack, model.bucket, model.key, limit=args.limit or None)
    current = stack.parameters.get(MODEL_VERSION_PARAMETER)
    signatures = version_signatures(s3, model.bucket, model.key, [d.version_id for d in deploys if d.version_id])
    if args.json:
        record = {
            "environment": env.name,
            "stack_name": env.stack_name,
            "model_uri": model.uri,
            "stack_status": stack.status,
            "deployed_version": current,
            "signing_required": stack.signing_required,
            "deploys": [
                {**d.as_dict(), "signature": signatures[d.version_id].as_dict() if d.version_id in signatures else None}
                for d in deploys
            ],
        }
        print(json.dumps(record, indent=2))
        return EXIT_OK
    print(f"{env.stack_name} ({env.name}): model versions deployed to {model.uri}, newest first")
    print(history_table(deploys, signatures))
    if not deploys:
        print("(no deploys recorded in the stack's events)")
    print(f"now deployed: {current or '-'} (stack {stack.status})")
    return EXIT_OK
