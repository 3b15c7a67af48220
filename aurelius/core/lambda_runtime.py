"""What both Lambda handlers share: configuration, clients, and reporting of outcomes.

Configuration comes from environment variables declared in template.yaml. Clients are made
once per execution environment, lazily (a moto mock or a test's Stubber must be in place
before the first client), and are injectable. Reporting maps reconcile actions to log level,
metric and notification in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config as BotoConfig

from aurelius.core.decision import Action
from aurelius.core.notifications import Notifier
from aurelius.core.reconcile import Outcome, Target, reconcile

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME
# Namespace from POWERTOOLS_METRICS_NAMESPACE (template.yaml); the default keeps a handler
# that runs without it (a test, the sandbox) from failing on its metrics.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "aurelius"))
# No powertools Tracer: it needs the AWS X-Ray SDK, which reaches end of support on 2027-02-25
# (https://docs.aws.amazon.com/xray/latest/devguide/xray-daemon-eos.html). With Tracing: Active
# (template.yaml) Lambda records each invocation's segments itself; see docs/aws.md.

METRIC_FOR_ACTION = {
    Action.STARTED: "DeploysStarted",
    Action.IN_SYNC: "DeploysSkipped",
    Action.SKIPPED: "DeploysSkipped",
    Action.DEFERRED: "DeploysDeferred",
    Action.ALARM: "DeploysFailed",
    Action.CANCELLED: "DeploysCancelled",
}
REJECTED_METRIC = "EventsRejected"

# Standard retry mode: exponential backoff with jitter for throttles and 5xx.
BOTO_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)


class ConfigError(RuntimeError):
    """A required environment variable is missing (a template error, not an event error)."""


@dataclass(frozen=True)
class Config:
    stack_name: str
    bucket: str
    key: str
    role_arn: str | None
    topic_arn: str | None
    force_refresh: bool

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Config:
        environ = os.environ if environ is None else environ
        required = ("SERVICE_STACK_NAME", "MODEL_BUCKET", "MODEL_KEY")
        missing = [name for name in required if not environ.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            stack_name=environ["SERVICE_STACK_NAME"],
            bucket=environ["MODEL_BUCKET"],
            key=environ["MODEL_KEY"],
            role_arn=environ.get("CLOUDFORMATION_ROLE_ARN") or None,
            topic_arn=environ.get("NOTIFICATION_TOPIC_ARN") or None,
            force_refresh=environ.get("FORCE_REFRESH", "false").lower() == "true",
        )

    @property
    def target(self) -> Target:
        return Target(self.stack_name, self.bucket, self.key, self.role_arn)


@dataclass
class Clients:
    """boto3 clients, made on first use and kept for the life of the execution environment."""

    _made: dict[str, Any] = field(default_factory=dict)

    def get(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = boto3.client(service, config=BOTO_CONFIG)
        return self._made[service]


class Runtime:
    """One per handler module. Tests replace ``config`` and ``clients``."""

    def __init__(self, config: Config | None = None, clients: Clients | None = None):
        self._config, self.clients = config, clients or Clients()

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = Config.from_environment()
        return self._config

    @config.setter
    def config(self, value: Config) -> None:
        self._config = value

    def reject(self, reason: str) -> dict[str, Any]:
        logger.warning("event rejected", extra={"reason": reason, "stack": self.config.stack_name})
        metrics.add_metric(name=REJECTED_METRIC, unit=MetricUnit.Count, value=1)
        return {"action": "rejected", "reason": reason}

    def reconcile(self, trigger: str, refresh: bool = False) -> dict[str, Any]:
        config = self.config
        logger.append_keys(stack=config.stack_name, model_uri=f"s3://{config.bucket}/{config.key}", trigger=trigger)
        outcome = reconcile(
            config.target, s3=self.clients.get("s3"), cfn=self.clients.get("cloudformation"), refresh=refresh
        )
        self.report(outcome)
        return outcome.as_dict()

    def report(self, outcome: Outcome) -> None:
        logger.append_keys(model_version=outcome.wanted_version, deployed_version=outcome.deployed_version)
        metrics.add_metric(name=METRIC_FOR_ACTION[outcome.action], unit=MetricUnit.Count, value=1)
        fields = {
            "action": outcome.action.value,
            "reason": outcome.reason,
            "stack_status": outcome.stack_status,
            "finding": outcome.finding,
        }
        if outcome.action is Action.ALARM:
            logger.error("reconcile needs a human", extra=fields)
        elif outcome.action in (Action.SKIPPED, Action.CANCELLED):
            logger.warning(f"reconcile {outcome.action.value}", extra=fields)
        else:
            logger.info("reconcile done", extra=fields)
        self.notify(outcome)

    def notify(self, outcome: Outcome) -> None:
        """One SNS message per problem, and one when it clears (aurelius.core.notifications)."""
        if not self.config.topic_arn:
            return
        done = Notifier(
            self.clients.get("sns"),
            self.config.topic_arn,
            warn=lambda message, **extra: logger.warning(message, extra=extra),
        ).handle(outcome)
        if done != "nothing":
            logger.info("notification", extra={"notification": done})
