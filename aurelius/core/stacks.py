"""Reading a CloudFormation stack: shared by the core and the operator side."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def describe_stack(cfn, stack_name: str) -> dict[str, Any] | None:
    """The stack, or None when it does not exist (a DELETE_COMPLETE stack does not)."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def stack_outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
