"""YAML settings, one block per environment, validated into typed objects.

A settings file that breaks a rule raises ``SettingsError`` naming the file, the key and the
rule, before any AWS call. Unknown keys are errors too: a typo must not silently fall back
to a default.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from aurelius.naming import PART_PATTERN, InvalidName, Namer


class SettingsError(ValueError):
    """A settings file is unusable. ``str()`` is ``file: key: rule``."""

    def __init__(self, path: Path | str, key: str, rule: str):
        self.path, self.key, self.rule = str(path), key, rule
        super().__init__(f"{self.path}: {key}: {rule}")


def _check_cidr(value: str) -> str:
    # IPv4 only: the templates' security group rules use CidrIp.
    ipaddress.IPv4Network(value)  # raises ValueError naming the bad address
    return value


Cidr = Annotated[str, AfterValidator(_check_cidr)]
BucketName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
InstanceType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_subnets(value: list[str] | None) -> list[str] | None:
    if value is not None:
        if len(value) < 2:
            raise ValueError("list at least two subnets in different Availability Zones (load balancers need two)")
        for subnet in value:
            if not re.match(r"^subnet-[0-9a-f]+$", subnet):
                raise ValueError(f"{subnet!r} is not a subnet id (subnet-...)")
    return value


class Network(_Strict):
    """Either ``default_vpc: true`` or an explicit ``vpc_id`` with ``subnet_ids``."""

    default_vpc: bool = False
    vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]+$")
    subnet_ids: list[str] | None = None

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str] | None) -> list[str] | None:
        return _check_subnets(value)

    @model_validator(mode="after")
    def _one_form(self) -> Network:
        explicit = self.vpc_id is not None or self.subnet_ids is not None
        if self.default_vpc == explicit:
            raise ValueError("set either default_vpc: true, or both vpc_id and subnet_ids")
        if explicit and (self.vpc_id is None or self.subnet_ids is None):
            raise ValueError("vpc_id and subnet_ids go together")
        return self


class ServiceNetwork(Network):
    """The service's network: tasks in ``subnet_ids``, the load balancer in its own subnets.

    An internet-facing load balancer needs public subnets while the tasks (no public IP) need
    private subnets with a NAT gateway or VPC endpoints; one list cannot serve both.
    ``load_balancer_subnet_ids`` defaults to ``subnet_ids`` (fine for an internal load balancer
    and for the default VPC of the local sandbox).
    """

    load_balancer_subnet_ids: list[str] | None = None
    load_balancer_scheme: str = Field(default="internet-facing", pattern=r"^(internet-facing|internal)$")

    @field_validator("load_balancer_subnet_ids")
    @classmethod
    def _load_balancer_subnets(cls, value: list[str] | None) -> list[str] | None:
        return _check_subnets(value)

    @model_validator(mode="after")
    def _load_balancer_needs_explicit_vpc(self) -> ServiceNetwork:
        if self.load_balancer_subnet_ids is not None and self.default_vpc:
            raise ValueError("load_balancer_subnet_ids needs vpc_id and subnet_ids (not default_vpc)")
        return self


class Capacity(_Strict):
    min: int = Field(ge=0)
    max: int = Field(ge=1)
    desired: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Capacity:
        if not self.min <= self.desired <= self.max:
            raise ValueError("needs min <= desired <= max")
        return self


# A fully qualified Python name (module.Name), as skops.io.get_untrusted_types reports them.
QualifiedName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")]
# The longest value CloudFormation accepts for one parameter
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html, "Parameter value").
MAX_PARAMETER_BYTES = 4096


class ModelLocation(_Strict):
    """Where the model lives (the bucket must have versioning on) and how the server loads it.

    ``format``: ``auto`` (told from the content) or ``pickle``, ``joblib``, ``skops`` to force
    one (MODEL_FORMAT); ``skops_trusted_types``: types a skops file may hold beyond skops'
    defaults (MODEL_SKOPS_TRUSTED_TYPES); ``pickle_scan``: ``refuse`` (default) or ``warn`` a
    pickle or joblib file that imports os, subprocess, eval... (MODEL_PICKLE_SCAN).
    """

    bucket: BucketName
    key: str = Field(min_length=1, max_length=1024)
    format: Literal["auto", "pickle", "joblib", "skops"] = "auto"
    skops_trusted_types: list[QualifiedName] = Field(default_factory=list)
    pickle_scan: Literal["refuse", "warn"] = "refuse"

    @field_validator("skops_trusted_types")
    @classmethod
    def _fits_a_parameter(cls, value: list[str]) -> list[str]:
        if len(",".join(value).encode()) > MAX_PARAMETER_BYTES:
            raise ValueError(f"longer than {MAX_PARAMETER_BYTES} bytes joined (a CloudFormation parameter value)")
        return value

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class EnvironmentSettings(_Strict):
    """What every stack's environment block has."""

    base_name: str
    suffix: str
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    network: Network
    tags: dict[str, str] = Field(default_factory=dict)

    # The names this kind of stack creates (resource types of aurelius.naming).
    name_types: ClassVar[tuple[str, ...]] = ()
    stack_type: ClassVar[str] = ""

    @field_validator("base_name", "suffix")
    @classmethod
    def _name_part(cls, value: str) -> str:
        if not PART_PATTERN.match(value):
            raise ValueError("lower-case letters and digits, single hyphens inside, starting with a letter")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 40:
            raise ValueError("at most 40 tags (CloudFormation stack tag limit is 50; aurelius keeps room)")
        for key in value:
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} uses the reserved aws: prefix")
        return value


class VpcEndpoints(_Strict):
    """The VPC endpoints the cluster stack creates for private subnets without a NAT gateway.

    ``route_table_ids``: the route tables of the cluster's subnets (S3 gateway endpoint);
    ``client_cidr``: who may reach the interface endpoints on 443 (the VPC's CIDR).
    """

    route_table_ids: list[str] = Field(min_length=1)
    client_cidr: Cidr

    @field_validator("route_table_ids")
    @classmethod
    def _route_tables(cls, value: list[str]) -> list[str]:
        for table in value:
            if not re.match(r"^rtb-[0-9a-f]+$", table):
                raise ValueError(f"{table!r} is not a route table id (rtb-...)")
        return value


class ClusterSettings(EnvironmentSettings):
    instance_type: InstanceType
    capacity: Capacity
    # Optional: S3 gateway + ECR, Logs and ECS interface endpoints in the cluster's subnets.
    vpc_endpoints: VpcEndpoints | None = None
    # Share of the cluster's capacity that managed scaling aims to use. 100 packs instances
    # full; below 100 keeps spare room for the extra tasks of a 200 % rolling deploy.
    target_capacity_percent: int = Field(default=100, ge=1, le=100)
    ami_parameter: str = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"

    name_types: ClassVar[tuple[str, ...]] = ("cluster", "asg", "lt", "cp")
    stack_type: ClassVar[str] = "cluster-stack"

    @model_validator(mode="after")
    def _endpoints_need_explicit_subnets(self) -> ClusterSettings:
        if self.vpc_endpoints is not None and self.network.default_vpc:
            raise ValueError("vpc_endpoints needs network.vpc_id and subnet_ids (the default VPC's subnets are public)")
        return self


class SmokeTest(_Strict):
    """Rows the model must predict before its task turns healthy (the server's SMOKE_TEST_* environment).

    ``expected`` (one number per row) and ``tolerance`` are optional; the model object's S3 user
    metadata ``aurelius-smoke-expected`` / ``aurelius-smoke-tolerance`` override them per version.
    """

    instances: list[list[FiniteFloat]] = Field(min_length=1)
    expected: list[FiniteFloat] | None = None
    tolerance: FiniteFloat | None = Field(default=None, ge=0)

    @field_validator("instances")
    @classmethod
    def _rows(cls, value: list[list[float]]) -> list[list[float]]:
        if any(not row for row in value):
            raise ValueError("every row needs at least one number")
        if len({len(row) for row in value}) > 1:
            raise ValueError("every row needs the same number of values (the model's features)")
        return value

    @model_validator(mode="after")
    def _one_expected_per_row(self) -> SmokeTest:
        if self.expected is not None and len(self.expected) != len(self.instances):
            raise ValueError(f"expected has {len(self.expected)} values for {len(self.instances)} rows (one per row)")
        if self.tolerance is not None and self.expected is None:
            raise ValueError("tolerance needs expected (the values it applies to)")
        return self


class DeploymentAlarms(_Strict):
    """Thresholds of the service stack's deployment alarms (ECS rolls back when one fires).

    Each alarm fires after ``evaluation_periods`` periods of ``period_seconds`` in breach.
    """

    # PredictionErrors / Predictions of the new model version, in percent.
    error_rate_percent: FiniteFloat = Field(default=5.0, gt=0, le=100)
    # HTTPCode_Target_5XX_Count of the target group(s), per period.
    target_5xx_count: int = Field(default=10, ge=1)
    # UnHealthyHostCount of the target group(s) (maximum in a period).
    unhealthy_hosts: int = Field(default=1, ge=1)
    # CloudWatch metric alarms: period 10, 30 or a multiple of 60 seconds.
    period_seconds: int = Field(default=60, ge=10, le=86400)
    evaluation_periods: int = Field(default=2, ge=1, le=10)

    @field_validator("period_seconds")
    @classmethod
    def _period(cls, value: int) -> int:
        if value not in (10, 30) and value % 60:
            raise ValueError("10, 30 or a multiple of 60 seconds (CloudWatch alarm periods)")
        return value


class Rollout(_Strict):
    """How a new task definition revision takes traffic.

    ``rolling`` (default): ECS rolling update with the circuit breaker and the deployment alarms.
    ``canary``: ECS native canary: ``canary_percent`` of the traffic for
    ``canary_bake_minutes``, then all of it, then ``bake_minutes`` before the old tasks stop.
    The deployment alarms roll back either strategy.
    ``deadline_seconds``: how long an update aurelius started may run before the redeployer
    cancels it; default: derived from these settings and the template's health check.
    ``model_load_seconds``: the longest a good model may take to turn healthy.
    """

    strategy: Literal["rolling", "canary"] = "rolling"
    # ECS: 0.1-100 in steps of 0.1; 100 would be blue/green, not a canary.
    canary_percent: FiniteFloat = Field(default=10.0, ge=0.1, lt=100)
    canary_bake_minutes: int = Field(default=5, ge=0, le=1440)
    bake_minutes: int = Field(default=5, ge=0, le=1440)
    deadline_seconds: int | None = Field(default=None, ge=60, le=86400)
    # The longest a good model takes from task start to its first healthy answer (download,
    # unpickle, smoke test). ECS ignores the load balancer's health checks this long
    # (HealthCheckGracePeriodSeconds) and the unhealthy-targets alarm waits this long before it
    # counts, so a slow good model is never rolled back; a model that fails to load is rolled
    # back by the start-up failure alarm within minutes, whatever this value.
    model_load_seconds: int = Field(default=600, ge=0, le=7200)
    alarms: DeploymentAlarms = Field(default_factory=DeploymentAlarms)

    @field_validator("canary_percent")
    @classmethod
    def _tenths(cls, value: float) -> float:
        if abs(value * 10 - round(value * 10)) > 1e-9:
            raise ValueError("a multiple of 0.1 (ECS CanaryPercent)")
        return value


class Scaling(_Strict):
    """Target tracking of the service's task count (Application Auto Scaling).

    ``min``..``max`` tasks; ``requests_per_target`` (ALB requests per task per minute) and/or
    ``cpu_percent`` (average CPU of the service's tasks) are the targets. With two targets AWS
    scales out when either asks and in only when both allow it. Cooldowns in seconds.
    """

    min: int = Field(ge=1, le=1000)
    max: int = Field(ge=1, le=1000)
    requests_per_target: int | None = Field(default=None, ge=1)
    cpu_percent: FiniteFloat | None = Field(default=None, ge=1, le=100)
    scale_in_cooldown: int = Field(default=300, ge=0, le=3600)
    scale_out_cooldown: int = Field(default=60, ge=0, le=3600)

    @model_validator(mode="after")
    def _range_and_target(self) -> Scaling:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be at most max ({self.max})")
        if self.requests_per_target is None and self.cpu_percent is None:
            raise ValueError("set requests_per_target and/or cpu_percent (what to track)")
        return self


class KeyTrust(_Strict):
    """Trust ECDSA (P-256, P-384, P-521) public keys: PEM files, relative to the settings file."""

    mode: Literal["key"]
    public_keys: list[str] = Field(min_length=1)


class CertificateTrust(_Strict):
    """Trust a CA of your own: PEM certificate files (the root at least), relative to the settings file."""

    mode: Literal["certificate"]
    certificate_chain: list[str] = Field(min_length=1)


class SigstoreTrust(_Strict):
    """Sigstore keyless: the signer's OIDC identity and issuer (the task then needs Sigstore's public services)."""

    mode: Literal["sigstore"]
    identity: str = Field(min_length=1)
    issuer: str = Field(pattern=r"^https://\S+$")


class Signing(_Strict):
    """Who may publish a model this environment loads (docs/threat-model.md).

    ``required``: the redeployer skips a version without a signature and the server refuses
    one whose signature is missing or does not verify. ``trust``: the keys, CA or Sigstore
    identity to verify with. The files are read, checked and sent (as the stack parameter
    SigningTrust, the server's MODEL_SIGNING_TRUST) only when this environment is deployed, so
    an operator fills in prod's key file without the other environments needing it.
    """

    required: bool = False
    trust: Annotated[KeyTrust | CertificateTrust | SigstoreTrust, Field(discriminator="mode")] | None = None

    @model_validator(mode="after")
    def _required_needs_trust(self) -> Signing:
        if self.required and self.trust is None:
            raise ValueError("required: true needs trust (the public keys, certificates or Sigstore identity to check)")
        return self

    def trust_json(self, source: Path, key: str) -> str:
        """The trust as the server reads it (MODEL_SIGNING_TRUST): compact JSON with the PEM
        texts, "" without trust. ``key`` is this block's place in ``source`` for errors.
        Raises SettingsError naming the file, the key and the rule."""
        trust = self.trust
        if trust is None:
            return ""
        if isinstance(trust, SigstoreTrust):
            document: dict[str, Any] = {"mode": "sigstore", "identity": trust.identity, "issuer": trust.issuer}
        elif isinstance(trust, KeyTrust):
            document = {
                "mode": "key",
                "public_keys": [
                    _public_key_pem(source, f"{key}.trust.public_keys.{i}", name)
                    for i, name in enumerate(trust.public_keys)
                ],
            }
        else:
            document = {
                "mode": "certificate",
                "certificate_chain": [
                    pem
                    for i, name in enumerate(trust.certificate_chain)
                    for pem in _certificate_pems(source, f"{key}.trust.certificate_chain.{i}", name)
                ],
            }
        text = json.dumps(document, separators=(",", ":"))
        if len(text.encode()) > MAX_PARAMETER_BYTES:
            raise SettingsError(
                source,
                f"{key}.trust",
                f"the trust material is {len(text.encode())} bytes as JSON; a CloudFormation parameter value holds "
                f"at most {MAX_PARAMETER_BYTES}: trust fewer keys, or only your CA's root certificate "
                "(the signature carries the signing certificate and its intermediates)",
            )
        return text


def _trust_file(source: Path, key: str, name: str) -> bytes:
    path = Path(name) if Path(name).is_absolute() else Path(source).resolve().parent / name
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(source, key, f"cannot read {path}: {exc.strerror or exc}") from None


def _public_key_pem(source: Path, key: str, name: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from aurelius.signing import SUPPORTED_CURVES

    data = _trust_file(source, key, name)  # a SettingsError of its own (SettingsError is a ValueError)
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError:
        raise SettingsError(source, key, f"{name} is not a PEM public key") from None
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name not in SUPPORTED_CURVES:
        raise SettingsError(source, key, f"{name}: model signing keys are ECDSA P-256, P-384 or P-521")
    # Re-encoded: only the key itself, whatever comments the file had (the parameter is small).
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _certificate_pems(source: Path, key: str, name: str) -> list[str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    data = _trust_file(source, key, name)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise SettingsError(source, key, f"{name} holds no PEM certificate") from None
    return [certificate.public_bytes(serialization.Encoding.PEM).decode() for certificate in certificates]


class ServiceSettings(EnvironmentSettings):
    cluster_name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    image: str = Field(min_length=1)
    container_port: int = Field(default=8080, ge=1024, le=65535)
    cpu: int = Field(default=256, ge=128)
    memory: int = Field(default=512, ge=128)
    desired_count: int = Field(default=2, ge=1)
    allowed_ingress_cidr: Cidr = "0.0.0.0/0"
    model: ModelLocation
    network: ServiceNetwork
    smoke_test: SmokeTest | None = None
    rollout: Rollout = Field(default_factory=Rollout)
    # Off (None): the service runs desired_count tasks. On: Application Auto Scaling moves the
    # count between scaling.min and scaling.max, and no deploy ever sets it (the template omits
    # DesiredCount).
    scaling: Scaling | None = None
    signing: Signing = Field(default_factory=Signing)
    # A new settings key that reaches the container: a field here, a parameter in
    # infra/ecs-service/template.yaml (under an "Environment" entry of the container) and one
    # parameter(...) line in deploy-service.py's build().

    @model_validator(mode="after")
    def _one_way_to_count(self) -> ServiceSettings:
        if self.scaling is not None and "desired_count" in self.model_fields_set:
            raise ValueError("desired_count and scaling exclude each other (scaling.min is the starting count)")
        return self

    @property
    def starting_count(self) -> int:
        """Tasks when the service is created: desired_count, or scaling.min."""
        return self.scaling.min if self.scaling else self.desired_count

    @property
    def most_tasks(self) -> int:
        """The largest desired count the service can have: desired_count, or scaling.max."""
        return self.scaling.max if self.scaling else self.desired_count

    # cfn-role is the trigger stack's CloudFormation service role, found by this name.
    name_types: ClassVar[tuple[str, ...]] = (
        "alb",
        "tg",
        "svc",
        "task",
        "logs",
        "task-role",
        "exec-role",
        "cfn-role",
        # safe rollout: the canary's second target group and traffic-shifting role, the deployment alarms
        "tg-alt",
        "ecs-lb-role",
        "alarm-errors",
        "alarm-5xx",
        "alarm-unhealthy",
        "alarm-startup",
    )
    stack_type: ClassVar[str] = "service-stack"


class ElbSettings(EnvironmentSettings):
    instance_type: InstanceType
    capacity: Capacity
    # Instances in subnet_ids; the load balancer in load_balancer_subnet_ids (default: the
    # same) with load_balancer_scheme, as for the ECS service.
    network: ServiceNetwork
    server_port: int = Field(default=8080, ge=1024, le=65535)
    allowed_ingress_cidr: Cidr = "0.0.0.0/0"
    ami_parameter: str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    model: ModelLocation
    # Bucket for the server bundle the instances install from (deploy-elb.py uploads it there).
    artifact_bucket: BucketName
    signing: Signing = Field(default_factory=Signing)

    name_types: ClassVar[tuple[str, ...]] = ("elb", "asg", "lt")
    stack_type: ClassVar[str] = "elb-stack"


S = TypeVar("S", bound=EnvironmentSettings)


def model_loading_values(env: Environment[ServiceSettings] | Environment[ElbSettings]) -> dict[str, str]:
    """The stack parameters that tell the server how to load the model and whom to trust
    (ModelFormat, SkopsTrustedTypes, PickleScan, SigningRequired, SigningTrust: its MODEL_FORMAT,
    MODEL_SKOPS_TRUSTED_TYPES, MODEL_PICKLE_SCAN, MODEL_SIGNING_REQUIRED, MODEL_SIGNING_TRUST).

    Both deploy scripts send them on every deploy; the redeployer keeps them (UsePreviousValue),
    so trust changes only with a deploy, never with an upload. The trust files are read here,
    for this environment only. Raises SettingsError (file, key, rule).
    """
    model, signing = env.settings.model, env.settings.signing
    return {
        "ModelFormat": model.format,
        "SkopsTrustedTypes": ",".join(model.skops_trusted_types),
        "PickleScan": model.pickle_scan,
        "SigningRequired": "true" if signing.required else "false",
        "SigningTrust": signing.trust_json(env.source, f"environments.{env.name}.signing"),
    }


class Environment(Generic[S]):
    """One validated environment: its settings, its names, and where they came from."""

    def __init__(self, name: str, settings: S, source: Path):
        self.name, self.settings, self.source = name, settings, source
        self.namer = Namer(settings.base_name, name, settings.suffix)
        self.names = self.namer.all(settings.name_types)
        self.stack_name = self.namer(settings.stack_type)

    def __repr__(self) -> str:
        return f"Environment({self.name!r}, {self.source})"


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("function-after",))


def load_environments(path: Path | str, model: type[S]) -> dict[str, Environment[S]]:
    """Read and validate every environment block of a settings file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(path, "(file)", "file not found") from None
    except yaml.YAMLError as exc:
        raise SettingsError(path, "(file)", f"not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("environments"), Mapping):
        raise SettingsError(path, "environments", "required: a mapping of environment name to settings")
    unknown_top = set(raw) - {"environments"}
    if unknown_top:
        raise SettingsError(path, sorted(unknown_top)[0], "unknown key (only 'environments' is allowed at the top)")

    environments: dict[str, Environment[S]] = {}
    for env_name, block in raw["environments"].items():
        prefix = f"environments.{env_name}"
        if not isinstance(env_name, str) or not PART_PATTERN.match(env_name):
            raise SettingsError(
                path, prefix, "environment names are lower-case letters and digits, starting with a letter"
            )
        if not isinstance(block, Mapping):
            raise SettingsError(path, prefix, "must be a mapping")
        try:
            settings = model.model_validate(dict(block))
        except ValidationError as exc:
            first = exc.errors()[0]
            key = _key_path(first["loc"])
            rule = first["msg"].removeprefix("Value error, ")
            if first["type"] == "extra_forbidden":
                rule = "unknown key"
            raise SettingsError(path, f"{prefix}.{key}" if key else prefix, rule) from None
        try:
            environments[env_name] = Environment(env_name, settings, path)
        except InvalidName as exc:
            raise SettingsError(path, f"{prefix}.base_name/suffix", str(exc)) from None
    return environments


def load_environment(path: Path | str, model: type[S], environment: str) -> Environment[S]:
    """The one environment a script was asked for; an unknown name is a SettingsError."""
    environments = load_environments(path, model)
    if environment not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise SettingsError(path, f"environments.{environment}", f"unknown environment (this file defines: {known})")
    return environments[environment]
