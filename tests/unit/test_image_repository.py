"""The image repository's name rule and push commands (aurelius.scripts.image_repository, aurelius.naming)."""

from __future__ import annotations

import pytest

from aurelius.naming import InvalidName, check_name, resource_name
from aurelius.scripts.image_repository import push_commands, tag_of


def test_repository_names_follow_the_convention_and_the_ecr_rule():
    # Given the name parts of an environment
    # Then the repository is {base_name}-ecr-{environment}-{suffix}, its stack the -ecr-stack- one
    assert resource_name("aurelius", "ecr", "prod", "ml") == "aurelius-ecr-prod-ml"
    assert resource_name("aurelius", "ecr-stack", "prod", "ml") == "aurelius-ecr-stack-prod-ml"


@pytest.mark.parametrize("name", ["Aurelius-ecr", "aurelius--", "-aurelius", "aurelius.", "a" * 257])
def test_names_ecr_refuses_are_refused_before_any_call(name):
    with pytest.raises(InvalidName, match="ecr name"):
        check_name("ecr", name)


@pytest.mark.parametrize(
    "image, tag",
    [
        ("aurelius/model-server:0.1.0", "0.1.0"),
        ("localhost:5000/model-server", "0.1.0"),
        ("r/model@sha256:" + "a" * 64, "0.1.0"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/aurelius-ecr-prod-ml:2026-11-26", "2026-11-26"),
    ],
)
def test_the_default_tag_is_the_settings_images_tag(image, tag):
    assert tag_of(image) == tag


def test_push_commands_log_in_to_the_registry_build_server_and_push_the_tag():
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/aurelius-ecr-prod-ml"
    assert push_commands(uri, "0.2.0", "eu-west-1") == [
        (
            "aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        ),
        f"docker build --build-arg MODEL_REQUIREMENTS=model-requirements.txt -t {uri}:0.2.0 server/",
        f"docker push {uri}:0.2.0",
    ]
