"""Settings files: every shipped file is valid; bad ones name the file, the key and the rule."""

import json
from pathlib import Path

import pytest

from aurelius.settings import (
    ClusterSettings,
    ElbSettings,
    ServiceSettings,
    SettingsError,
    load_environment,
    load_environments,
    model_loading_values,
)
from tests.helpers import MINIMAL_SERVICE_SETTINGS as GOOD_SERVICE
from tests.helpers import REPO
from tests.signing.material import public_key_pem

SHIPPED = [
    ("infra/ecs-cluster/management-scripts/service-settings.yml", ClusterSettings),
    ("infra/ecs-service/management-scripts/service-settings.yml", ServiceSettings),
    ("infra/elb/management-scripts/service-settings.yml", ElbSettings),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("relative, model", SHIPPED)
def test_shipped_settings_define_local_dev_and_prod(relative, model):
    environments = load_environments(REPO / relative, model)
    assert {"local", "dev", "prod"} <= set(environments)


def test_no_two_stacks_of_one_environment_share_a_resource_name():
    # The cluster and the no-Docker stack both have an Auto Scaling group and a launch template.
    for env in ("local", "dev", "prod"):
        seen: dict[str, str] = {}
        for relative, model in SHIPPED:
            for name in load_environment(REPO / relative, model, env).names.values():
                assert name not in seen, f"{name} is in {relative} and {seen[name]}"
                seen[name] = relative


def test_valid_service_settings_give_names_by_convention(tmp_path):
    env = load_environment(write(tmp_path, GOOD_SERVICE), ServiceSettings, "local")
    assert env.stack_name == "aurelius-service-stack-local-demo"
    assert env.names["alb"] == "aurelius-alb-local-demo"
    assert env.settings.model.uri == "s3://aurelius-models-local-demo/models/model.pkl"


@pytest.mark.parametrize(
    "old, new, key, rule",
    [
        ("    image: aurelius/model-server:0.1.0\n", "", "environments.local.image", "Field required"),
        (
            "    suffix: demo\n",
            "    suffix: demo\n    desired_count: two\n",
            "environments.local.desired_count",
            "integer",
        ),
        (
            "    suffix: demo\n",
            "    suffix: demo\n    desird_count: 2\n",
            "environments.local.desird_count",
            "unknown key",
        ),
        (
            "network: {default_vpc: true}",
            "network: {default_vpc: true, vpc_id: vpc-1}",
            "environments.local.network",
            "either",
        ),
        ("base_name: aurelius", "base_name: aurelius-inference-platform", "environments.local.base_name/suffix", "32"),
        ("base_name: aurelius", "base_name: Aurelius_1", "environments.local.base_name", "lower-case"),
    ],
)
def test_bad_setting_names_file_key_and_rule(tmp_path, old, new, key, rule):
    path = write(tmp_path, GOOD_SERVICE.replace(old, new))
    with pytest.raises(SettingsError) as info:
        load_environment(path, ServiceSettings, "local")
    message = str(info.value)
    assert str(path) in message and key in message and rule in message


def test_unknown_environment_lists_the_known_ones(tmp_path):
    with pytest.raises(SettingsError, match="unknown environment .*local"):
        load_environment(write(tmp_path, GOOD_SERVICE), ServiceSettings, "staging")


@pytest.mark.parametrize(
    "text, key", [("[]", "environments"), ("environments: 3", "environments"), (": bad: yaml: [", "(file)")]
)
def test_malformed_file_is_a_settings_error(tmp_path, text, key):
    with pytest.raises(SettingsError, match=key.replace("(", r"\(").replace(")", r"\)")):
        load_environment(write(tmp_path, text), ServiceSettings, "local")


def test_missing_file_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="file not found"):
        load_environment(tmp_path / "nope.yml", ServiceSettings, "local")


SERVICE_NETWORK = GOOD_SERVICE.replace(
    "network: {default_vpc: true}",
    "network: {vpc_id: vpc-0a, subnet_ids: [subnet-01, subnet-02], load_balancer_subnet_ids: [subnet-0a, subnet-0b], load_balancer_scheme: internal}",
)


def test_service_network_separates_load_balancer_subnets_from_task_subnets(tmp_path):
    # Given task subnets, load balancer subnets and a scheme
    network = load_environment(write(tmp_path, SERVICE_NETWORK), ServiceSettings, "local").settings.network
    # Then each is kept apart
    assert network.subnet_ids == ["subnet-01", "subnet-02"]
    assert network.load_balancer_subnet_ids == ["subnet-0a", "subnet-0b"]
    assert network.load_balancer_scheme == "internal"


def test_service_network_defaults_to_an_internet_facing_load_balancer_in_the_task_subnets(tmp_path):
    network = load_environment(write(tmp_path, GOOD_SERVICE), ServiceSettings, "local").settings.network
    assert network.load_balancer_scheme == "internet-facing" and network.load_balancer_subnet_ids is None


@pytest.mark.parametrize(
    "old, new, rule",
    [
        ("load_balancer_scheme: internal", "load_balancer_scheme: public", "String should match pattern"),
        (
            "load_balancer_subnet_ids: [subnet-0a, subnet-0b]",
            "load_balancer_subnet_ids: [subnet-0a]",
            "at least two subnets",
        ),
        (
            "load_balancer_subnet_ids: [subnet-0a, subnet-0b]",
            "load_balancer_subnet_ids: [subnet-0a, sg-1]",
            "not a subnet id",
        ),
    ],
)
def test_bad_service_network_names_file_key_and_rule(tmp_path, old, new, rule):
    path = write(tmp_path, SERVICE_NETWORK.replace(old, new))
    with pytest.raises(SettingsError) as info:
        load_environment(path, ServiceSettings, "local")
    assert "environments.local.network" in str(info.value) and rule in str(info.value)


def test_load_balancer_subnets_need_an_explicit_vpc(tmp_path):
    text = GOOD_SERVICE.replace(
        "network: {default_vpc: true}", "network: {default_vpc: true, load_balancer_subnet_ids: [subnet-0a, subnet-0b]}"
    )
    with pytest.raises(SettingsError, match="load_balancer_subnet_ids needs vpc_id"):
        load_environment(write(tmp_path, text), ServiceSettings, "local")


def test_prod_example_puts_an_internet_facing_load_balancer_in_other_subnets_than_the_tasks():
    network = load_environment(REPO / SHIPPED[1][0], ServiceSettings, "prod").settings.network
    assert network.load_balancer_scheme == "internet-facing"
    assert network.load_balancer_subnet_ids and not set(network.load_balancer_subnet_ids) & set(network.subnet_ids)


def test_network_of_cluster_settings_rejects_load_balancer_keys(tmp_path):
    # Only the service has a load balancer with its own subnets: a cluster file with the key is a typo
    text = (
        (REPO / SHIPPED[0][0])
        .read_text()
        .replace("\n      default_vpc: true", "\n      default_vpc: true\n      load_balancer_scheme: internal", 1)
    )
    with pytest.raises(SettingsError, match="unknown key"):
        load_environment(write(tmp_path, text), ClusterSettings, "local")


# --- how the server loads the model, and whom it trusts (issue 16, issue 17) ------------------

SIGNED = (
    GOOD_SERVICE + "    signing:\n      required: true\n      trust: {mode: key, public_keys: [keys/publisher.pub]}\n"
)


def public_key_file(path: Path, curve=None) -> str:
    pem = public_key_pem(curve)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# the ML platform's release key\n" + pem)
    return pem


def test_model_loading_and_signing_default_to_auto_refuse_and_not_required(tmp_path):
    # Given settings without model loading or signing keys
    env = load_environment(write(tmp_path, GOOD_SERVICE), ServiceSettings, "local")

    # When the stack parameters are computed / Then auto, refuse, not required, no trust
    assert model_loading_values(env) == {
        "ModelFormat": "auto",
        "SkopsTrustedTypes": "",
        "PickleScan": "refuse",
        "SigningRequired": "false",
        "SigningTrust": "",
    }


def test_trusted_public_keys_are_read_relative_to_the_settings_file_into_compact_json(tmp_path):
    # Given a key file next to the settings (with a comment line), format and scan settings
    pem = public_key_file(tmp_path / "keys/publisher.pub")
    text = SIGNED.replace(
        "model: {bucket: aurelius-models-local-demo, key: models/model.pkl}",
        "model: {bucket: aurelius-models-local-demo, key: models/model.pkl, format: skops, "
        "skops_trusted_types: [sklearn.pipeline.Pipeline, numpy.dtype], pickle_scan: warn}",
    )
    env = load_environment(write(tmp_path, text), ServiceSettings, "local")

    # When the stack parameters are computed
    values = model_loading_values(env)

    # Then the trust is the key itself as compact JSON (what the server's MODEL_SIGNING_TRUST reads)
    assert values["SigningRequired"] == "true"
    assert values["SigningTrust"] == json.dumps({"mode": "key", "public_keys": [pem]}, separators=(",", ":"))
    assert (values["ModelFormat"], values["PickleScan"]) == ("skops", "warn")
    assert values["SkopsTrustedTypes"] == "sklearn.pipeline.Pipeline,numpy.dtype"


def test_a_certificate_chain_file_becomes_one_entry_per_certificate(tmp_path):
    # Given a CA bundle file holding the root and the intermediate
    from tests.signing.material import make_pki

    pki = make_pki(tmp_path / "pki", "operator")
    (tmp_path / "ca.pem").write_bytes(pki.root.read_bytes() + pki.intermediate.read_bytes())
    text = GOOD_SERVICE + "    signing:\n      trust: {mode: certificate, certificate_chain: [ca.pem]}\n"
    env = load_environment(write(tmp_path, text), ServiceSettings, "local")

    # When read / Then each certificate is its own PEM string in the JSON
    trust = json.loads(model_loading_values(env)["SigningTrust"])
    assert trust["mode"] == "certificate" and len(trust["certificate_chain"]) == 2
    assert trust["certificate_chain"][0] == pki.root.read_text()


@pytest.mark.parametrize(
    "signing, key, rule",
    [
        ("    signing: {required: true}\n", "environments.local.signing", "required: true needs trust"),
        (
            "    signing: {trust: {mode: key}}\n",
            "environments.local.signing.trust.key.public_keys",
            "Field required",
        ),
        (
            "    signing: {trust: {mode: sigstore, identity: ci@example.com, issuer: http://plain}}\n",
            "environments.local.signing.trust.sigstore.issuer",
            "pattern",
        ),
        ("    signing: {trust: {mode: gpg}}\n", "environments.local.signing.trust", "mode"),
        ("    signing: {requird: true}\n", "environments.local.signing.requird", "unknown key"),
    ],
)
def test_bad_signing_settings_name_file_key_and_rule(tmp_path, signing, key, rule):
    path = write(tmp_path, GOOD_SERVICE + signing)
    with pytest.raises(SettingsError) as info:
        load_environment(path, ServiceSettings, "local")
    message = str(info.value)
    assert str(path) in message and key in message and rule in message


@pytest.mark.parametrize(
    "model, key",
    [
        ("format: onnx", "environments.local.model.format"),
        ("pickle_scan: ignore", "environments.local.model.pickle_scan"),
        ("skops_trusted_types: [Pipeline]", "environments.local.model.skops_trusted_types.0"),
    ],
)
def test_bad_model_loading_settings_name_the_key(tmp_path, model, key):
    text = GOOD_SERVICE.replace("key: models/model.pkl}", f"key: models/model.pkl, {model}}}")
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        load_environment(write(tmp_path, text), ServiceSettings, "local")


def test_a_missing_or_wrong_trust_file_is_refused_when_that_environment_is_deployed(tmp_path):
    # Given signing settings whose key file is not there yet: loading the file works (other
    # environments stay deployable) ...
    path = write(tmp_path, SIGNED)
    env = load_environment(path, ServiceSettings, "local")

    # ... and computing this environment's parameters names the file, the key and the rule
    with pytest.raises(SettingsError) as info:
        model_loading_values(env)
    assert str(path) in str(info.value) and "environments.local.signing.trust.public_keys.0" in str(info.value)
    assert "cannot read" in str(info.value) and "publisher.pub" in str(info.value)

    # And an RSA key (model-signing verifies ECDSA keys only) is refused by name
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/publisher.pub").write_bytes(
        rsa_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SettingsError, match="ECDSA P-256, P-384 or P-521"):
        model_loading_values(env)


def test_trust_longer_than_a_cloudformation_parameter_is_refused(tmp_path):
    # Given 30 trusted keys: more than the 4,096 bytes a CloudFormation parameter value holds
    names = [f"keys/k{i}.pub" for i in range(30)]
    for name in names:
        public_key_file(tmp_path / name)
    text = GOOD_SERVICE + f"    signing:\n      trust: {{mode: key, public_keys: [{', '.join(names)}]}}\n"
    env = load_environment(write(tmp_path, text), ServiceSettings, "local")

    # When the parameters are computed / Then the limit is named, before any AWS call
    with pytest.raises(SettingsError, match="at most 4096") as info:
        model_loading_values(env)
    assert "environments.local.signing.trust" in str(info.value)


def test_shipped_prod_requires_signatures_and_local_does_not():
    # prod ships signing required (the operator puts the key file in place); the shipped local
    # stays unsigned for the tests (`make demo` turns it on with its own throwaway key)
    for relative, model in SHIPPED[1:]:
        environments = load_environments(REPO / relative, model)
        assert environments["prod"].settings.signing.required is True
        assert environments["prod"].settings.signing.trust.mode == "key"
        assert environments["local"].settings.signing.required is False
