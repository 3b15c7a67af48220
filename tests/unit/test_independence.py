"""infra/ecs-cluster and infra/ecs-service never refer to each other (docs/design.md#cluster-and-service-are-independent)."""

import re

import pytest

from tests.helpers import REPO

CLUSTER, SERVICE = REPO / "infra/ecs-cluster", REPO / "infra/ecs-service"


def files(tree):
    return [p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


@pytest.mark.parametrize(
    "tree, forbidden",
    [
        (CLUSTER, r"ecs-service|ecs_service|ImportValue|Export:"),
        (SERVICE, r"ecs-cluster|ecs_cluster|ImportValue|Export:|create-cluster|create_cluster"),
    ],
)
def test_no_file_of_one_tree_names_the_other(tree, forbidden):
    offenders = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in files(tree)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(forbidden, line)
    ]
    assert files(tree), f"{tree} is empty"
    assert offenders == []


def test_service_gets_the_cluster_by_name_from_its_own_settings():
    template = (SERVICE / "template.yaml").read_text()
    assert "ClusterName:" in template and "Cluster: !Ref ClusterName" in template
