"""The ECR repository of the model server image: its settings, its name, and the push commands.

The repository is a stack of its own (infra/ecs-service/image-repository.yaml), created by
infra/ecs-service/management-scripts/create-image-repository.py from the service settings, and
named by the convention: ``{base_name}-ecr-{environment}-{suffix}``.
"""

from __future__ import annotations

from typing import ClassVar

from aurelius.settings import ServiceSettings

# Tags are immutable in the repository: every build needs a new tag.
DEFAULT_TAG = "0.1.0"


class ImageRepositorySettings(ServiceSettings):
    """The service settings file, read for the names of the repository stack."""

    name_types: ClassVar[tuple[str, ...]] = ("ecr",)
    stack_type: ClassVar[str] = "ecr-stack"


def tag_of(image: str) -> str:
    """The tag of an image reference (``repo:tag``), or DEFAULT_TAG when it has none."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last or ":" not in last:
        return DEFAULT_TAG
    return last.rsplit(":", 1)[1]


def push_commands(repository_uri: str, tag: str, region: str) -> list[str]:
    """Log Docker in to the registry, build server/ with the model's libraries
    (server/model-requirements.txt) and push it under ``tag`` (ECR user guide, "Pushing a Docker image")."""
    registry = repository_uri.split("/", 1)[0]
    image = f"{repository_uri}:{tag}"
    return [
        f"aws ecr get-login-password --region {region} | docker login --username AWS --password-stdin {registry}",
        f"docker build --build-arg MODEL_REQUIREMENTS=model-requirements.txt -t {image} server/",
        f"docker push {image}",
    ]
