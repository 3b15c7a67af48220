"""The chain: every link of one environment, in the order of the first deploy.

A link that needs a missing one is skipped, so the first problem shown is the first missing link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.core.decision import MODEL_VERSION_PARAMETER, signing_required
from aurelius.core.model_version import ModelMissing, ModelVersion, current_model_version
from aurelius.core.stacks import stack_outputs, stack_parameters
from aurelius.doctor.check import FAIL, OK, Check, failed_call, skipped
from aurelius.doctor.iam import Arns, check_role_permissions, function_needs, passed_roles, service_role_needs
from aurelius.doctor.infra import (
    check_cluster_room,
    check_deployment_alarms,
    check_same_vpc,
    check_service_linked_role,
    check_task_egress,
    describe_service,
    task_subnet_ids,
)
from aurelius.doctor.links import (
    SERVICE_ROLE_OUTPUT,
    check_bucket,
    check_cluster,
    check_credentials,
    check_image,
    check_notifications,
    check_service_stack,
    check_service_stack_role,
    check_signature,
    check_stack_exists,
    check_trigger_functions,
    check_versioning,
    read_model_object,
)
from aurelius.infra_checks import ECS_SCALING_SERVICE, ELB_SERVICE
from aurelius.settings import Environment, ServiceSettings

if TYPE_CHECKING:  # only the type: aurelius.cli imports this package, not the other way round
    from aurelius.cli.clients import ClientFactory

# Account ids no real account has: AWS's documentation example (moto's default) and
# LocalStack's default. Against them, answers moto fakes or skips are "not checkable here".
SIMULATED_ACCOUNTS = frozenset({"123456789012", "000000000000"})

# The trigger stack's function environment (template.yaml, Globals) that must name this service.
FUNCTION_ENVIRONMENT = ("SERVICE_STACK_NAME", "MODEL_BUCKET", "MODEL_KEY")


def short_function_name(function_name: str, stack_name: str) -> str:
    """``{stack}-{LogicalId}-{random}`` (CloudFormation's generated name) -> ``LogicalId``."""
    rest = function_name.removeprefix(f"{stack_name}-")
    return rest.rsplit("-", 1)[0] if rest != function_name and "-" in rest else function_name


def run_checks(env: Environment[ServiceSettings], clients: ClientFactory, simulated: bool | None = None) -> list[Check]:
    """Every link, in the order of the first deploy. A link that needs a missing one is skipped."""
    region = env.settings.region
    try:
        sts = clients("sts", region)
        region = region or sts.meta.region_name
    except (BotoCoreError, ClientError) as exc:
        return [
            Check(
                "credentials and region",
                FAIL,
                f"no AWS client: {exc}",
                "export AWS_REGION (or set region: in the settings)",
            )
        ]
    credentials, identity = check_credentials(sts, region)
    if identity is None:
        return [credentials]
    if simulated is None:
        simulated = identity["Account"] in SIMULATED_ACCOUNTS
    if simulated:
        credentials = Check(
            credentials.name, OK, credentials.detail + " (a simulator: some checks cannot be answered here)"
        )
    arns = Arns(identity["Arn"].split(":")[1], region, identity["Account"])
    chain = _Chain(env, clients, region, simulated, arns)
    # In this order: each step records what the later ones need.
    links = [
        chain.cluster,
        chain.trigger,
        chain.bucket,
        chain.model,
        chain.service,
        chain.signatures,
        chain.placement,
        chain.deployment_alarms,
        chain.function_roles,
        chain.service_role,
    ]
    return [credentials, *(check for link in links for check in link())]


@dataclass
class _Chain:
    """The links after the credentials; each step records what the later ones need."""

    env: Environment[ServiceSettings]
    clients: ClientFactory
    region: str
    simulated: bool
    arns: Arns
    trigger_stack: dict[str, Any] | None = None
    functions: list[dict[str, Any]] = field(default_factory=list)
    bucket_exists: bool = False
    service_stack: dict[str, Any] | None = None
    ecs_service: dict[str, Any] | None = None
    ecs_service_error: Exception | None = None
    newest: ModelVersion | None = None

    def __post_init__(self) -> None:
        self.cfn, self.s3 = self.clients("cloudformation", self.region), self.clients("s3", self.region)
        self.ecs = self.clients("ecs", self.region)
        self.trigger_name = self.env.namer("trigger-stack")
        self.sam_fix = f"sam build && sam deploy --config-env {self.env.name}"

    def cluster(self) -> list[Check]:
        settings = self.env.settings
        return check_cluster(self.ecs, settings.cluster_name, self.env.name, self.simulated)

    def trigger(self) -> list[Check]:
        check, self.trigger_stack = check_stack_exists(self.cfn, "trigger stack", self.trigger_name, self.sam_fix)
        if self.trigger_stack is None:
            return [check, skipped("trigger functions", f"needs the trigger stack {self.trigger_name}")]
        model = self.env.settings.model
        expected = dict(zip(FUNCTION_ENVIRONMENT, (self.env.stack_name, model.bucket, model.key), strict=True))
        functions_check, self.functions = check_trigger_functions(
            self.cfn,
            self.clients("lambda", self.region),
            self.trigger_name,
            expected,
            f"set the names in samconfig.toml [{self.env.name}.deploy.parameters], then {self.sam_fix}",
        )
        return [check, functions_check]

    def bucket(self) -> list[Check]:
        bucket, trigger = self.env.settings.model.bucket, self.trigger_stack
        creates_bucket = (
            None if trigger is None else stack_parameters(trigger).get("CreateModelBucket", "true") != "false"
        )
        check, self.bucket_exists = check_bucket(self.s3, bucket, creates_bucket, self.env.name)
        if not self.bucket_exists:
            return [
                check,
                skipped("model bucket versioning", "needs the bucket"),
                skipped("model bucket notifications", "needs the bucket"),
            ]
        if trigger is None:
            notifications = skipped(
                "model bucket notifications", "needs the trigger stack (it says which kind of bucket this is)"
            )
        else:
            arns = [f["FunctionArn"] for f in self.functions]
            notifications = check_notifications(self.s3, bucket, bool(creates_bucket), arns, self.env.name)
        return [check, check_versioning(self.s3, bucket), notifications]

    def model(self) -> list[Check]:
        model = self.env.settings.model
        image = check_image(
            lambda image_region: self.clients("ecr", image_region), self.env.settings.image, self.env.name
        )
        if not self.bucket_exists:
            return [image, skipped("model object", "needs the bucket")]
        check, self.newest = read_model_object(self.s3, model.bucket, model.key)
        return [image, check]

    def signatures(self) -> list[Check]:
        """The newest and the deployed model versions: signed? Unsigned fails where the stack requires signing."""
        newest, deployed_name = "newest model signature", "deployed model signature"
        parameters = stack_parameters(self.service_stack) if self.service_stack else {}
        required = signing_required(parameters) if self.service_stack else None
        checks = [
            check_signature(self.s3, newest, self.newest, required, self.env.name)
            if self.newest
            else skipped(newest, "needs the model object")
        ]
        deployed_id = parameters.get(MODEL_VERSION_PARAMETER)
        if not deployed_id:
            return [*checks, skipped(deployed_name, "needs the service stack")]
        if self.newest and deployed_id == self.newest.version_id:
            return [*checks, Check(deployed_name, checks[0].status, f"the newest: {checks[0].detail}", checks[0].fix)]
        model = self.env.settings.model
        try:
            deployed = current_model_version(self.s3, model.bucket, model.key, deployed_id)
        except ModelMissing:
            return [*checks, Check(deployed_name, FAIL, f"deployed version {deployed_id} of {model.uri} is gone")]
        except (ClientError, BotoCoreError) as exc:
            return [*checks, failed_call(deployed_name, exc, "s3:GetObjectVersion (HeadObject)")]
        return [*checks, check_signature(self.s3, deployed_name, deployed, required, self.env.name)]

    def service(self) -> list[Check]:
        check, self.service_stack = check_service_stack(
            self.cfn, self.env.stack_name, self.env.settings.model.uri, self.env.name
        )
        if self.service_stack is not None:
            try:
                self.ecs_service = describe_service(self.ecs, self.env.settings.cluster_name, self.env.names["svc"])
            except (ClientError, BotoCoreError) as exc:
                self.ecs_service_error = exc  # the deployment alarms check reports it
        if self.service_stack is None or self.trigger_stack is None:
            return [check, skipped("service stack role", "needs the service stack and the trigger stack")]
        return [check, check_service_stack_role(self.service_stack, self.trigger_stack, self.env.name)]

    def placement(self) -> list[Check]:
        """Where the tasks go: one VPC with the instances, a way out of their subnets, room in the cluster."""
        settings = self.env.settings
        ec2 = self.clients("ec2", self.region)
        room = check_cluster_room(
            self.ecs,
            self.clients("autoscaling", self.region),
            ec2,
            settings.cluster_name,
            settings.most_tasks,
            settings.cpu,
            settings.memory,
            self.simulated,
        )
        deployed = stack_parameters(self.service_stack) if self.service_stack else {}
        subnet_ids = task_subnet_ids(self.ecs_service, deployed, settings.network.subnet_ids)
        names = ("cluster and tasks in one VPC", "task subnets reach AWS")
        if not subnet_ids:
            why = "needs the task subnets (the service stack's TaskSubnetIds, or network.subnet_ids)"
            return [*(skipped(n, why) for n in names), room]
        try:
            subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
        except (ClientError, BotoCoreError) as exc:
            return [*(failed_call(n, exc, "ec2:DescribeSubnets") for n in names), room]
        return [
            check_same_vpc(self.ecs, ec2, settings.cluster_name, subnets, self.simulated),
            check_task_egress(ec2, subnets, self.region, self.simulated),
            room,
        ]

    def deployment_alarms(self) -> list[Check]:
        if self.ecs_service_error is not None:
            return [failed_call("deployment alarms", self.ecs_service_error, "ecs:DescribeServices")]
        if self.ecs_service is None:
            return [skipped("deployment alarms", f"needs the ECS service {self.env.names['svc']}")]
        cloudwatch = self.clients("cloudwatch", self.region)
        return [check_deployment_alarms(cloudwatch, self.ecs_service, self.simulated, self.env.name)]

    @property
    def service_role_arn(self) -> str | None:
        return stack_outputs(self.trigger_stack).get(SERVICE_ROLE_OUTPUT) if self.trigger_stack else None

    def function_roles(self) -> list[Check]:
        if not self.functions:
            return [skipped("function role", "needs the trigger functions")]
        model = self.env.settings.model
        stack_arn = self.service_stack["StackId"] if self.service_stack else self.arns.stack(self.env.stack_name)
        topic = self.functions[0].get("Environment", {}).get("Variables", {}).get("NOTIFICATION_TOPIC_ARN")
        needs = function_needs(self.arns, model.bucket, model.key, stack_arn, self.service_role_arn, topic)
        roles = {f["Role"]: short_function_name(f["FunctionName"], self.trigger_name) for f in self.functions}
        iam = self.clients("iam", self.region)
        fix = f"the functions' policy is in template.yaml: {self.sam_fix}"
        return [
            check_role_permissions(iam, f"role of {function}", role, needs, fix, self.simulated)
            for role, function in sorted(roles.items(), key=lambda item: item[1])
        ]

    def service_role(self) -> list[Check]:
        """The service role: a model update's needs, and the service-linked roles it may have to create."""
        role = self.service_role_arn
        if not role:
            return [skipped("service role", "needs the trigger stack's service role")]
        unread: list[Check] = []
        try:
            passed = passed_roles(self.cfn, self.env.stack_name, self.arns) if self.service_stack else {}
        except (ClientError, BotoCoreError) as exc:
            # The simulation below still covers the ECS actions; say which roles went unchecked.
            passed = {}
            unread = [failed_call("service stack roles", exc, "cloudformation:GetTemplate / DescribeStackResources")]
        settings, names = self.env.settings, self.env.names
        needs = service_role_needs(self.arns, settings.cluster_name, names["svc"], names["task"], passed)
        fix = f"the service role is in template.yaml: {self.sam_fix}"
        iam = self.clients("iam", self.region)
        services = [ELB_SERVICE, *([ECS_SCALING_SERVICE] if settings.scaling else [])]
        return [
            *unread,
            check_role_permissions(iam, "service role", role, needs, fix, self.simulated),
            *(check_service_linked_role(iam, s, role, self.arns, self.simulated, fix) for s in services),
        ]
