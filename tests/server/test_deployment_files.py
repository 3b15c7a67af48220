"""The files that ship the server: Dockerfile (cannot be built here: no Docker daemon),
its pinned requirements, the EC2 install script and the systemd unit."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.signing.material import public_key_pem

from .helpers import SERVER_DIR

ROOT = SERVER_DIR.parent
ELB_DIR = ROOT / "infra" / "elb"
UNIT_NAME = "aurelius-model-server.service"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (SERVER_DIR / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def pins(path: Path) -> dict[str, str]:
    result = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            result[canonicalize_name(name)] = version
    return result


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


# ---- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_is_slim_non_root_with_a_urllib_healthcheck_and_the_module_as_cmd():
    # Given the Dockerfile
    instructions = dockerfile_instructions()
    by_name = {}
    for name, args in instructions:
        by_name.setdefault(name, []).append(args)

    # Then it builds on python:3.11-slim and runs as a non-root user
    assert instructions[0] == ("FROM", "python:3.11-slim")
    user = by_name["USER"][-1].split(":")[0]
    assert user not in ("root", "0")
    assert instructions.index(("USER", by_name["USER"][-1])) > max(
        i for i, (n, _) in enumerate(instructions) if n == "RUN"
    )
    # And it exposes 8080, checks /health with python's urllib (no curl in slim), runs the module
    assert by_name["EXPOSE"] == ["8080"]
    healthcheck = by_name["HEALTHCHECK"][0]
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"] and "urllib.request" in command[2] and "/health" in command[2]
    assert "curl" not in healthcheck
    assert json.loads(by_name["CMD"][-1]) == ["python", "-m", "aurelius_server"]
    # And the only pip install is the server's pins and the model's, in one resolve
    pip_installs = re.findall(r"pip install ([^&]+)", " ".join(by_name["RUN"]))
    assert [args.strip() for args in pip_installs] == ["-r /tmp/requirements.txt -r /tmp/model-requirements.txt"]
    assert "requirements.txt /tmp/requirements.txt" in by_name["COPY"]


def test_dockerfile_installs_the_model_requirements_file_a_build_argument_may_replace():
    # Given the Dockerfile
    instructions = dockerfile_instructions()

    # Then MODEL_REQUIREMENTS defaults to server/model-requirements.txt and is declared before it is copied
    assert ("ARG", "MODEL_REQUIREMENTS=model-requirements.txt") in instructions
    copy = ("COPY", "${MODEL_REQUIREMENTS} /tmp/model-requirements.txt")
    assert instructions.index(("ARG", "MODEL_REQUIREMENTS=model-requirements.txt")) < instructions.index(copy)
    assert (SERVER_DIR / "model-requirements.txt").is_file()


def test_model_requirements_ship_empty_and_any_line_must_be_an_exact_pin():
    # Given the shipped model-requirements.txt
    # Then it installs nothing by default (pins() reads name==version lines, and fails on others)
    assert pins(SERVER_DIR / "model-requirements.txt") == {}
    # And its example lines pin the versions the tests train with (requirements.lock)
    lock_pins = pins(ROOT / "requirements.lock")
    examples = re.findall(r"^#\s+([A-Za-z0-9_.-]+)==(\S+)$", (SERVER_DIR / "model-requirements.txt").read_text(), re.M)
    assert examples and all(lock_pins.get(canonicalize_name(name)) == version for name, version in examples)


def test_server_requirements_are_boto3_gunicorn_and_their_dependencies_pinned_as_in_the_lock():
    # Given server/requirements.txt and the project's requirements.lock
    server_pins = pins(SERVER_DIR / "requirements.txt")
    lock_pins = pins(ROOT / "requirements.lock")

    # Then every pin matches the lock
    assert {name: lock_pins.get(name) for name in server_pins} == server_pins
    # And the set is exactly boto3, gunicorn, httptools, orjson, model-signing, pyOpenSSL, picklescan and what they
    # require (no extras), nothing else
    closure, todo = set(), ["boto3", "gunicorn", "httptools", "orjson", "model-signing", "pyopenssl", "picklescan"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name not in closure:
            closure.add(name)
            for spec in importlib.metadata.requires(name) or []:
                requirement = Requirement(spec)
                if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                    todo.append(requirement.name)
    assert set(server_pins) == closure


# ---- install-server.sh and the systemd unit ------------------------------------------------


def test_install_script_is_valid_bash():
    # Given the install script / When bash parses it / Then there is no syntax error
    result = subprocess.run(["bash", "-n", str(ELB_DIR / "install-server.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_install_script_passes_shellcheck():
    # Given the install script / When shellcheck reads it / Then it has no findings
    result = subprocess.run(["shellcheck", str(ELB_DIR / "install-server.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


STUBS = {
    # `id -u` says root; `id -u aurelius` says no such user (so useradd runs)
    "id": 'echo "id $*" >>"$CALLS"; [ "$#" -eq 1 ] && [ "$1" = -u ] && { echo 0; exit 0; }; exit 1',
    "useradd": 'echo "useradd $*" >>"$CALLS"',
    "chown": 'echo "chown $*" >>"$CALLS"',
    "systemctl": 'echo "systemctl $*" >>"$CALLS"; [ "$1" = is-active ] && exit 3; exit 0',
    # `python3.11 -m venv DIR`: a venv whose python only records what it is asked to do
    "python3.11": '''echo "python3.11 $*" >>"$CALLS"
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho "venv-python $*" >>"$CALLS"\\n' >"$3/bin/python"
chmod +x "$3/bin/python"''',
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """The /opt/aurelius bundle as user data sees it: script, unit, server/."""
    bundle = tmp_path / "bundle"
    (bundle / "server").mkdir(parents=True)
    shutil.copy(ELB_DIR / "install-server.sh", bundle)
    shutil.copy(ELB_DIR / UNIT_NAME, bundle)
    shutil.copy(SERVER_DIR / "requirements.txt", bundle / "server")
    shutil.copy(SERVER_DIR / "model-requirements.txt", bundle / "server")
    shutil.copytree(
        SERVER_DIR / "aurelius_server",
        bundle / "server" / "aurelius_server",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return bundle


def run_install(bundle: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    environment = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls"),
        "DESTDIR": str(tmp_path / "root"),
        **env,
    }
    return subprocess.run(
        ["bash", str(bundle / "install-server.sh")], env=environment, capture_output=True, text=True, timeout=30
    )


def test_install_script_installs_code_venv_env_file_and_unit_then_starts_the_service(bundle, tmp_path):
    # Given the bundle and the user data's environment
    # When the install script runs (system commands stubbed, files under DESTDIR)
    result = run_install(
        bundle,
        tmp_path,
        MODEL_S3_URI="s3://models-bucket/models/model v1.pkl",
        MODEL_VERSION_ID="3HL4kqtJlcpX.roDT_Dm",
        SERVER_PORT="8081",
        AWS_REGION="eu-west-1",
    )

    # Then it succeeds
    assert result.returncode == 0, result.stderr
    root = tmp_path / "root"
    calls = (tmp_path / "calls").read_text().splitlines()
    # And the unit is the one kept in infra/elb, and every path it names was installed
    unit_text = (root / "etc/systemd/system" / UNIT_NAME).read_text()
    assert unit_text == (ELB_DIR / UNIT_NAME).read_text()
    unit = unit_settings(unit_text)
    assert (root / unit["ExecStart"][0].split()[0].lstrip("/")).is_file()
    assert (root / unit["WorkingDirectory"][0].lstrip("/")).is_dir()
    env_file = root / unit["EnvironmentFile"][0].lstrip("/")
    # And the environment file pins the model and the port for the server
    assert env_file.read_text().splitlines()[1:] == [
        'MODEL_S3_URI="s3://models-bucket/models/model v1.pkl"',
        'MODEL_VERSION_ID="3HL4kqtJlcpX.roDT_Dm"',
        "PORT=8081",
        "HOST=0.0.0.0",
        "PYTHONPATH=/opt/aurelius-model-server/app",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        'AWS_REGION="eu-west-1"',
    ]
    assert oct(env_file.stat().st_mode & 0o777) == "0o640"
    # (owned root:aurelius: the service reads it, only root writes it; chown'd before the atomic rename)
    chowned = [call.split()[-1] for call in calls if call.startswith("chown root:aurelius ")]
    assert chowned[0] == str(env_file.parent) and Path(chowned[1]).parent == env_file.parent
    # And the code sits on that PYTHONPATH, the venv got the pinned requirements
    assert (root / "opt/aurelius-model-server/app/aurelius_server/__main__.py").is_file()
    assert (
        "venv-python -m pip install --quiet --no-cache-dir --disable-pip-version-check "
        f"-r {bundle}/server/requirements.txt -r {bundle}/server/model-requirements.txt"
    ) in calls
    # And a system user was created, and the service enabled and (re)started
    assert any(call.startswith("useradd --system") and call.endswith(" aurelius") for call in calls)
    assert [call for call in calls if call.startswith("systemctl") and "is-active" not in call] == [
        "systemctl daemon-reload",
        "systemctl enable aurelius-model-server",
        "systemctl restart aurelius-model-server",
    ]


def test_install_script_hands_the_model_and_signing_settings_to_the_server(bundle, tmp_path):
    # Given the user data's environment with the model's format, scan mode and signing trust
    # (compact JSON with quotes and escaped newlines, as deploy-elb.py sends SigningTrust)
    from aurelius_server.config import Config

    pem = public_key_pem()
    trust = json.dumps({"mode": "key", "public_keys": [pem]}, separators=(",", ":"))

    # When the install script runs
    result = run_install(
        bundle,
        tmp_path,
        MODEL_S3_URI="s3://models-bucket/m.pkl",
        MODEL_VERSION_ID="v1",
        MODEL_FORMAT="joblib",
        MODEL_PICKLE_SCAN="warn",
        MODEL_SIGNING_REQUIRED="true",
        MODEL_SIGNING_TRUST=trust,
    )

    # Then the environment file names the settings and the trust file, which holds the JSON as sent
    assert result.returncode == 0, result.stderr
    root = tmp_path / "root"
    lines = (root / "etc/aurelius/model-server.env").read_text().splitlines()
    assert lines[-4:] == [
        'MODEL_FORMAT="joblib"',
        'MODEL_PICKLE_SCAN="warn"',
        'MODEL_SIGNING_REQUIRED="true"',
        "MODEL_SIGNING_TRUST_FILE=/etc/aurelius/signing-trust.json",
    ]
    trust_file = root / "etc/aurelius/signing-trust.json"
    assert trust_file.read_text() == trust + "\n"
    assert oct(trust_file.stat().st_mode & 0o777) == "0o640"
    # And the server reads that environment (as systemd passes it) into a trust it can verify with
    env = dict(line.split("=", 1) for line in lines[1:])
    env = {name: value.strip('"') for name, value in env.items()}
    env["MODEL_SIGNING_TRUST_FILE"] = str(trust_file)
    config = Config.from_env(env)
    assert (config.model_format, config.pickle_scan, config.signing_required) == ("joblib", "warn", True)
    assert config.signing_trust is not None and config.signing_trust.public_keys == (pem.encode(),)


def test_install_script_installs_another_model_requirements_file_when_told(bundle, tmp_path):
    # Given a requirements file of the model's own, outside the bundle
    own = tmp_path / "my-model-requirements.txt"
    own.write_text("scikit-learn==1.9.1\n")

    # When the install script runs with MODEL_REQUIREMENTS pointing at it
    result = run_install(
        bundle, tmp_path, MODEL_S3_URI="s3://models-bucket/m.pkl", MODEL_VERSION_ID="v1", MODEL_REQUIREMENTS=str(own)
    )

    # Then the venv got that file next to the server's pins
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text()
    assert f"-r {bundle}/server/requirements.txt -r {own}" in calls


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {
                "MODEL_S3_URI": "s3://models-bucket/m.pkl",
                "MODEL_VERSION_ID": "v1",
                "MODEL_REQUIREMENTS": "/nonexistent",
            },
            "MODEL_REQUIREMENTS '/nonexistent' is not a file",
        ),
        ({"MODEL_VERSION_ID": "v1"}, "MODEL_S3_URI is not set"),
        ({"MODEL_S3_URI": "https://x/y", "MODEL_VERSION_ID": "v1"}, "is not s3://bucket/key"),
        ({"MODEL_S3_URI": "s3://models-bucket/m.pkl"}, "MODEL_VERSION_ID is not set"),
        (
            {"MODEL_S3_URI": "s3://models-bucket/m.pkl", "MODEL_VERSION_ID": "v1", "SERVER_PORT": "80"},
            "not a port in 1024-65535",
        ),
        ({"MODEL_S3_URI": 's3://models-bucket/m"x.pkl', "MODEL_VERSION_ID": "v1"}, "quote, backslash, dollar"),
    ],
)
def test_install_script_refuses_a_bad_environment_before_changing_anything(bundle, tmp_path, env, message):
    # Given a missing or malformed variable
    # When the install script runs
    result = run_install(bundle, tmp_path, **env)

    # Then it fails with a message naming it, and has installed nothing
    assert result.returncode == 1
    assert message in result.stderr
    assert not (tmp_path / "root").exists()


def test_unit_restarts_on_failure_stops_with_sigterm_and_is_hardened():
    # Given the unit kept in infra/elb
    unit = unit_settings((ELB_DIR / UNIT_NAME).read_text())

    # Then it runs as the system user, restarts on failure (not on a config error, status 2)
    assert unit["User"] == ["aurelius"] and unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"]
    # And stops with SIGTERM, giving the server longer than its 20 s drain before SIGKILL
    assert unit["KillSignal"] == ["SIGTERM"]
    assert int(unit["TimeoutStopSec"][0]) > 20
    # And carries the hardening options
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert unit[key] == [value]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_has_no_directive_systemd_does_not_know(tmp_path):
    # Given the unit, with ExecStart pointed at a binary that exists on this machine
    text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", (ELB_DIR / UNIT_NAME).read_text())
    (tmp_path / UNIT_NAME).write_text(text)

    # When systemd checks it
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / UNIT_NAME)], capture_output=True, text=True)

    # Then it reports nothing (an unknown or misspelled key would be reported)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
