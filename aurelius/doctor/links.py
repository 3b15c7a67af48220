"""The links of one environment's chain, one check each (aurelius.doctor.chain runs them in order).

Each takes boto3 clients (or fakes) and what it needs from the settings or earlier links, and
returns a Check; none of them writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
)

from aurelius.core.aws_errors import S3_NOT_FOUND, error_code
from aurelius.core.decision import MODEL_URI_PARAMETER, NOT_UPDATABLE
from aurelius.core.model_signature import Signature, signature_status
from aurelius.core.model_version import (
    ModelAccessDenied,
    ModelMissing,
    ModelVersion,
    VersioningDisabled,
    current_model_version,
)
from aurelius.core.stacks import describe_stack, stack_outputs, stack_parameters
from aurelius.doctor.check import ACCESS_DENIED, ERROR, FAIL, NOT_CHECKABLE, OK, SKIPPED, Check, failed_call

CLUSTER_SCRIPT = "python infra/ecs-cluster/management-scripts/create-cluster.py"
SERVICE_SCRIPT = "python infra/ecs-service/management-scripts/deploy-service.py"
REPOSITORY_SCRIPT = "python infra/ecs-service/management-scripts/create-image-repository.py"

SERVICE_ROLE_OUTPUT = "CloudFormationServiceRoleArn"

# A private ECR image URI: ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/REPOSITORY(:TAG|@DIGEST)
ECR_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?::(?P<tag>[\w][\w.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


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
        if error_code(exc) in S3_NOT_FOUND:
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
    return read_model_object(s3, bucket, key)[0]


def read_model_object(s3, bucket: str, key: str) -> tuple[Check, ModelVersion | None]:
    """The model reader's own HeadObject (aurelius.core.model_version), its answers put in doctor's
    words, and the newest version it found."""
    name = "model object"
    uri = f"s3://{bucket}/{key}"
    try:
        found = current_model_version(s3, bucket, key)
    except ModelMissing:
        return Check(name, FAIL, f"no model at {uri}", f"aws s3 cp model.pkl {uri}"), None
    except ModelAccessDenied:
        # Without s3:ListBucket, a missing key also answers 403 (S3 HeadObject API reference).
        return Check(
            name,
            ERROR,
            f"{uri}: access denied (missing, or the caller lacks s3:GetObject / s3:ListBucket)",
            "run doctor as a principal allowed s3:GetObject and s3:ListBucket on the model",
        ), None
    except VersioningDisabled:
        return Check(
            name,
            FAIL,
            f"{uri} has no version id (uploaded before versioning was on?)",
            f"upload it again: aws s3 cp model.pkl {uri}",
        ), None
    except (ClientError, BotoCoreError) as exc:
        return failed_call(name, exc, "s3:GetObject (HeadObject)"), None
    return Check(name, OK, f"{uri} version {found.version_id}, {found.size} bytes"), found


def check_signature(s3, name: str, version: ModelVersion, required: bool | None, environment: str) -> Check:
    """Whether ``version`` has its signature object (aurelius.core.model_signature: one
    HeadObject on the sidecar; presence only, the model server verifies it).

    ``required``: the service stack's SigningRequired (None: no service stack yet). Unsigned is
    a failure only where signing is required: the redeployer skips such a version and the
    server refuses it.
    """
    try:
        status = signature_status(s3, version)
    except (ClientError, BotoCoreError) as exc:
        return failed_call(name, exc, "s3:GetObject (HeadObject of the signature)")
    if status.state is Signature.UNREADABLE:
        return Check(name, ERROR, status.reason, "run doctor as a principal allowed s3:GetObject on the signatures")
    if status.signed:
        return Check(name, OK, f"version {version.version_id} is signed ({status.key})")
    if required:
        return Check(
            name,
            FAIL,
            f"not signed, and the service stack requires signed models: {status.reason}",
            f"publish it signed: aurelius publish --environment {environment} MODEL --key KEY.pem "
            "(or upload a newer, signed version)",
        )
    why = "no service stack yet to say whether signing is required" if required is None else "signing not required"
    return Check(name, OK, f"not signed ({why}): {status.reason}")


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
    pinned = stack_parameters(stack).get(MODEL_URI_PARAMETER)
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
