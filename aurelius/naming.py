"""The one place where names are made and checked against AWS limits.

Every stack and every named resource is ``{base_name}-{resource_type}-{environment}-{suffix}``.
Limits come from the AWS documentation (see docs/aws.md, "Name limits"); cfn-lint
does not check them, so we do, before any API call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class InvalidName(ValueError):
    """A computed name breaks an AWS limit; the message names it and the rule."""


@dataclass(frozen=True)
class NameRule:
    max_length: int
    pattern: re.Pattern[str]
    description: str


_ELB_LIKE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_ECS_LIKE = re.compile(r"^[A-Za-z0-9_-]+$")
_IAM_ROLE = re.compile(r"^[A-Za-z0-9+=,.@_-]+$")

RULES: dict[str, NameRule] = {
    # Elastic Load Balancing: 32 characters, alphanumerics and hyphens, no hyphen at either end.
    "alb": NameRule(32, _ELB_LIKE, "letters, digits and hyphens, no hyphen at either end"),
    "tg": NameRule(32, _ELB_LIKE, "letters, digits and hyphens, no hyphen at either end"),
    "elb": NameRule(32, _ELB_LIKE, "letters, digits and hyphens, no hyphen at either end"),
    # CloudFormation: 128 characters, starts with a letter, alphanumerics and hyphens.
    **{
        stack_type: NameRule(
            128, re.compile(r"^[A-Za-z][A-Za-z0-9-]*$"), "starts with a letter; letters, digits, hyphens"
        )
        for stack_type in ("cluster-stack", "service-stack", "elb-stack", "trigger-stack", "ecr-stack")
    },
    # S3 bucket: 3-63 characters, lower-case letters, digits, hyphens and dots.
    "models": NameRule(
        63, re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), "lower-case letters, digits, hyphens, dots"
    ),
    "artifacts": NameRule(
        63, re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), "lower-case letters, digits, hyphens, dots"
    ),
    # ECS cluster, service, task family: 255, letters, digits, hyphens, underscores.
    "cluster": NameRule(255, _ECS_LIKE, "letters, digits, hyphens, underscores"),
    "svc": NameRule(255, _ECS_LIKE, "letters, digits, hyphens, underscores"),
    "task": NameRule(255, _ECS_LIKE, "letters, digits, hyphens, underscores"),
    "cp": NameRule(255, _ECS_LIKE, "letters, digits, hyphens, underscores"),
    # Auto Scaling group: 255; launch template: 128, letters, digits and ( ) . / _ -
    "asg": NameRule(255, re.compile(r"^[A-Za-z0-9_./()-]+$"), "letters, digits and _ . / ( ) -"),
    "lt": NameRule(128, re.compile(r"^[A-Za-z0-9_./()-]+$"), "letters, digits and _ . / ( ) -"),
    # CloudWatch Logs log group: 512, letters, digits and _ - / . #
    "logs": NameRule(512, re.compile(r"^[A-Za-z0-9_./#-]+$"), "letters, digits and _ - / . #"),
    # IAM role: 64 characters, letters, digits and + = , . @ _ -
    # (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html). Named roles
    # let another stack scope iam:PassRole to them; a generated name would be cut at 64.
    **{
        role_type: NameRule(64, _IAM_ROLE, "letters, digits and + = , . @ _ -")
        for role_type in ("cfn-role", "task-role", "exec-role", "ecs-lb-role")
    },
    # Second target group of a canary rollout (ELB rule above, 32 characters).
    "tg-alt": NameRule(32, _ELB_LIKE, "letters, digits and hyphens, no hyphen at either end"),
    # CloudWatch alarm: 1-255 characters
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html);
    # kept to characters that need no escaping in an ARN or an IAM policy.
    **{
        alarm_type: NameRule(255, re.compile(r"^[A-Za-z0-9_.-]+$"), "letters, digits and _ . -")
        for alarm_type in ("alarm-errors", "alarm-5xx", "alarm-unhealthy", "alarm-startup")
    },
    # EventBridge rule: 64 characters, letters, digits and . - _
    "status-rule": NameRule(64, re.compile(r"^[A-Za-z0-9._-]+$"), "letters, digits and . - _"),
    # ECR repository: 2-256, lower-case; single separators (. _ __ -) between letters and digits.
    "ecr": NameRule(
        256, re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$"), "lower-case letters, digits, separators . _ -"
    ),
}

# Environment, base name and suffix are name *parts*: keep them to what every rule above
# accepts, so a bad part is reported as such rather than as a broken load balancer name.
PART_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def check_name(resource_type: str, name: str) -> str:
    """Return ``name`` if it satisfies the AWS rule for ``resource_type``; raise InvalidName."""
    rule = RULES[resource_type]
    if len(name) > rule.max_length:
        raise InvalidName(
            f"{resource_type} name {name!r} is {len(name)} characters; AWS allows at most {rule.max_length}"
        )
    if not rule.pattern.match(name):
        raise InvalidName(f"{resource_type} name {name!r} breaks the AWS rule: {rule.description}")
    return name


def resource_name(base_name: str, resource_type: str, environment: str, suffix: str) -> str:
    """``{base_name}-{resource_type}-{environment}-{suffix}``, checked against its AWS limit."""
    name = f"{base_name}-{resource_type}-{environment}-{suffix}"
    return check_name(resource_type, name)


@dataclass(frozen=True)
class Namer:
    """Binds the three name parts of one environment; ``namer("alb")`` -> a checked name."""

    base_name: str
    environment: str
    suffix: str

    def __call__(self, resource_type: str) -> str:
        return resource_name(self.base_name, resource_type, self.environment, self.suffix)

    def all(self, resource_types: list[str] | tuple[str, ...]) -> dict[str, str]:
        """Every name a stack needs, checked together so the first bad one is reported."""
        return {rt: self(rt) for rt in resource_types}
