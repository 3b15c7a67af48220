"""The image repository script against moto: its stack, the repository, the printed commands.

Docker is not on this machine: what is tested is the repository and the exact commands printed,
not a build. moto records the repository's name and tag mutability; it does not apply the
lifecycle policy or the scan setting from a stack (tests/unit/test_templates.py checks those in
the template), so the tests assert what the script sends.
"""

from __future__ import annotations

import json

import boto3
import pytest

from aurelius.doctor.links import check_image
from tests.helpers import IMAGE_REPOSITORY_STACK, load_script

SCRIPT = "infra/ecs-service/management-scripts/create-image-repository.py"
REPOSITORY = "aurelius-ecr-local-demo"
URI = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}"


@pytest.fixture
def script():
    return load_script(SCRIPT)


def test_creates_the_repository_named_by_convention_and_prints_the_push_commands(aws, script, capsys):
    # When the repository is created for environment local
    assert script.main(["--environment", "local", "--keep-images", "5"]) == 0
    out = capsys.readouterr().out
    # Then its own stack holds an immutable-tag repository named by the convention
    stack = aws.stack(IMAGE_REPOSITORY_STACK)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert aws.parameters(IMAGE_REPOSITORY_STACK) == {"RepositoryName": REPOSITORY, "KeepImages": "5"}
    (repository,) = boto3.client("ecr").describe_repositories(repositoryNames=[REPOSITORY])["repositories"]
    assert repository["repositoryUri"] == URI and repository["imageTagMutability"] == "IMMUTABLE"
    # and the exact commands and the image value (the settings' tag) are printed, in order
    lines = [line.strip() for line in out.splitlines()]
    login = f"aws ecr get-login-password --region us-east-1 | docker login --username AWS --password-stdin {URI.split('/')[0]}"
    build, push = (
        f"docker build --build-arg MODEL_REQUIREMENTS=model-requirements.txt -t {URI}:0.1.0 server/",
        f"docker push {URI}:0.1.0",
    )
    assert lines.index(login) < lines.index(build) < lines.index(push) < lines.index(f"image: {URI}:0.1.0")


def test_the_printed_image_is_what_doctor_finds_once_pushed(aws, script, capsys):
    # Given the repository, and the image pushed as printed (moto takes a manifest in place of docker push)
    assert script.main(["--environment", "local", "--tag", "0.2.0"]) == 0
    image = next(
        line.split("image: ", 1)[1]
        for line in capsys.readouterr().out.splitlines()
        if line.strip().startswith("image: ")
    )
    ecr = boto3.client("ecr")
    # When doctor looks for it before and after the push
    before = check_image(lambda region: boto3.client("ecr", region_name=region), image, "local")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {},
        "layers": [],
    }
    ecr.put_image(repositoryName=REPOSITORY, imageManifest=json.dumps(manifest), imageTag="0.2.0")
    after = check_image(lambda region: boto3.client("ecr", region_name=region), image, "local")
    # Then it is missing first (with the script as the fix), there after
    assert image == f"{URI}:0.2.0"
    assert before.status == "fail" and "create-image-repository.py --environment local" in before.fix
    assert after.status == "ok"


def test_a_second_run_changes_nothing_and_prints_the_commands_again(aws, script, capsys):
    assert script.main(["--environment", "local"]) == 0
    capsys.readouterr()
    assert script.main(["--environment", "local"]) == 0
    out = capsys.readouterr().out
    assert "no changes" in out and f"docker push {URI}:0.1.0" in out


def test_dry_run_creates_nothing(aws, script, capsys):
    assert script.main(["--environment", "local", "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert IMAGE_REPOSITORY_STACK not in aws.stack_names()
    assert boto3.client("ecr").describe_repositories()["repositories"] == []


@pytest.mark.parametrize("argv", [["--keep-images", "0"], ["--keep-images", "many"], ["--environment", "staging"]])
def test_bad_arguments_exit_2_before_any_aws_call(monkeypatch, script, argv):
    monkeypatch.setattr(
        boto3.session, "Session", lambda *a, **k: pytest.fail("AWS reached") if "staging" in argv else _no_stack()
    )
    full = argv if "--environment" in argv else ["--environment", "local", *argv]
    try:
        code = script.main(full)
    except SystemExit as exc:  # argparse: not a number
        code = exc.code
    assert code == 2


def _no_stack():
    """A session whose clients must never be used: --keep-images is checked before any call."""

    class Session:
        region_name = "us-east-1"

        def client(self, service):
            pytest.fail(f"{service} client created for bad arguments")

    return Session()
