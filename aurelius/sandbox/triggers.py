"""Install the trigger stack (template.yaml) into moto, as `sam deploy` would on AWS.

moto does not translate SAM (docs/moto.md#cloudformation): we transform the template locally with
aws-sam-translator, the library SAM itself uses, with the parameters of a samconfig.toml
environment; upload each function's code as a zip; create the plain stack; then fill the gaps
moto leaves on the bucket (versioning and the S3 notification are not applied from a stack).
"""

from __future__ import annotations

import io
import json
import shlex
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from aurelius.sandbox.local_lambda import LocalFunction, LocalLambdaRuntime
from aurelius.scripts.stack_deploy import StackDeployer, StackSpec, parameter

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
SAMCONFIG = REPO / "samconfig.toml"


class _NoManagedPolicyLookups:
    """aws-sam-translator asks for managed policy names -> ARNs; ours are all given as ARNs."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class TriggerStack:
    stack_name: str
    parameters: dict[str, str]
    functions: dict[str, str]  # logical id -> function ARN

    @property
    def bucket(self) -> str:
        return self.parameters["ModelBucketName"]

    @property
    def key(self) -> str:
        return self.parameters["ModelKey"]


def samconfig_deploy_parameters(config_env: str, path: Path = SAMCONFIG) -> tuple[str, dict[str, str]]:
    """Stack name and parameter overrides of one samconfig.toml environment."""
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    deploy = config[config_env]["deploy"]["parameters"]
    overrides = dict(item.split("=", 1) for item in shlex.split(deploy.get("parameter_overrides", "")))
    return deploy["stack_name"], overrides


def translate(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    return transform(template, parameters, _NoManagedPolicyLookups())


def function_handlers(template: dict[str, Any]) -> dict[str, tuple[Path, str]]:
    """Logical id -> (handler file, handler function) of each function in the SAM template."""
    handlers = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource["Properties"]
            module_name, handler_name = props["Handler"].rsplit(".", 1)
            handlers[logical_id] = ((REPO / props["CodeUri"]).resolve() / f"{module_name}.py", handler_name)
    return handlers


def point_code_at(template: dict[str, Any], bucket: str) -> None:
    """Replace each function's local CodeUri by s3://bucket/<LogicalId>.zip, as sam package does."""
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{bucket}/{logical_id}.zip"


def _zip(handler_dir: Path) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(handler_dir.glob("*.py")):
            archive.write(path, path.name)
    return raw.getvalue()


def install_trigger_stack(session, runtime: LocalLambdaRuntime, config_env: str = "local", out=print) -> TriggerStack:
    s3, cfn = session.client("s3"), session.client("cloudformation")
    stack_name, params = samconfig_deploy_parameters(config_env)
    template = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))

    # `sam deploy` uploads the built code to a bucket of its own (resolve_s3); so do we.
    code_bucket = f"aurelius-sam-artifacts-{config_env}"
    s3.create_bucket(Bucket=code_bucket)
    handler_files = function_handlers(template)
    for logical_id, (handler_file, _) in handler_files.items():
        s3.put_object(Bucket=code_bucket, Key=f"{logical_id}.zip", Body=_zip(handler_file.parent))
    point_code_at(template, code_bucket)

    # The functions' Layers entry (the powertools layer, `{{resolve:ssm:...}}` of a public AWS
    # parameter) stays as it is: moto 5.2.5 creates an AWS::Lambda::Function from a stack
    # without reading its Layers, so neither the parameter nor the layer has to exist here. The
    # handlers run in this process with the pip-installed powertools of the same pinned version.
    plain = translate(template, params)
    template_parameters = plain.get("Parameters", {})
    spec = StackSpec(
        stack_name=stack_name,
        template_body=json.dumps(plain),
        # Every parameter explicit: moto mishandles defaults on later updates (docs/moto.md#cloudformation).
        parameters=[parameter(k, params.get(k, v.get("Default", ""))) for k, v in template_parameters.items()],
        # As samconfig.toml: the template names its CloudFormation service role.
        capabilities=("CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"),
    )
    StackDeployer(cfn, out=out, poll_seconds=0.2).deploy(spec)

    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    # Resource types moto skips show up as empty rows (docs/moto.md#cloudformation): keep the real ones.
    physical = {
        r.get("LogicalResourceId"): r.get("PhysicalResourceId") for r in resources if r.get("LogicalResourceId")
    }
    lambda_client = session.client("lambda")
    functions: dict[str, str] = {}
    for logical_id, (handler_file, handler_name) in handler_files.items():
        configuration = lambda_client.get_function_configuration(FunctionName=physical[logical_id])
        runtime.register(
            LocalFunction(
                name=configuration["FunctionName"],
                arn=configuration["FunctionArn"],
                handler_file=handler_file,
                handler_name=handler_name,
                environment=configuration.get("Environment", {}).get("Variables", {}),
            )
        )
        functions[logical_id] = configuration["FunctionArn"]

    trigger = TriggerStack(stack_name, params, functions)
    if params.get("CreateModelBucket", "true") == "true":
        _fill_bucket_gaps(s3, trigger)
    return trigger


def _fill_bucket_gaps(s3, trigger: TriggerStack) -> None:
    """What the template declares on the bucket and moto does not apply from a stack."""
    s3.put_bucket_versioning(Bucket=trigger.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=trigger.bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": trigger.functions["RedeployServiceFunction"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": trigger.key},
                                {"Name": "suffix", "Value": trigger.key},
                            ]
                        }
                    },
                }
            ]
        },
    )
