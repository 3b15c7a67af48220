"""Issue 20: with scaling on, no deploy resets the task count that scaling (or a person) set.

moto creates and updates the ECS service from the stack (DesiredCount included: an update that
sends it sets the service's desired count, one that omits it leaves the count alone, as AWS
documents for AWS::ECS::Service), but skips Application Auto Scaling resources
(docs/moto.md): the scale-out is done by hand here with ecs:UpdateService, which is what
Application Auto Scaling calls. What moto cannot show (the scalable target and its policies) is
checked on the template in tests/unit/test_service_scaling_template.py.
"""

from __future__ import annotations

import pytest

from aurelius.core.reconcile import Action, Target, reconcile
from tests.helpers import BUCKET, CLUSTER, KEY, MINIMAL_SERVICE_SETTINGS, SERVICE_STACK

SCALING = "    scaling: {min: 2, max: 6, requests_per_target: 100}\n"
FIXED = "    desired_count: 2\n"


def settings_file(tmp_path, extra: str, image: str = "aurelius/model-server:0.1.0"):
    path = tmp_path / f"service-settings-{len(list(tmp_path.iterdir()))}.yml"
    path.write_text(MINIMAL_SERVICE_SETTINGS.replace("aurelius/model-server:0.1.0", image) + extra)
    return path


def desired_count(aws) -> int:
    (service,) = aws.ecs.describe_services(cluster=CLUSTER, services=["aurelius-svc-local-demo"])["services"]
    return service["desiredCount"]


def scale_out_by_hand(aws, count: int) -> None:
    # What Application Auto Scaling does on a scale-out: ecs:UpdateService with a desired count.
    aws.ecs.update_service(cluster=CLUSTER, service="aurelius-svc-local-demo", desiredCount=count)
    assert desired_count(aws) == count


def deploy(scripts, path) -> None:
    assert scripts["service"].main(["--environment", "local", "--settings", str(path)]) == 0


def redeploy(aws, refresh: bool = False) -> None:
    """The redeployer's UpdateStack (UsePreviousTemplate, UsePreviousValue for every parameter
    but the model's, or the DeploymentNonce with ``refresh``)."""
    outcome = reconcile(Target(SERVICE_STACK, BUCKET, KEY), s3=aws.s3, cfn=aws.cfn, refresh=refresh)
    assert outcome.action is Action.STARTED, outcome


# moto updates a resource only when one of the parameters it refers to changed (docs/moto.md):
# the service refers to DeploymentNonce (the redeployer's refresh) and ModelLoadSeconds (its
# HealthCheckGracePeriodSeconds), not to the model version, whose new task definition AWS
# would also send to the service. Each step below makes moto update the service resource.
STEPS = ["new model", "redeployer refresh", "settings change"]


def run_step(aws, scripts, tmp_path, step: str, settings: str) -> None:
    if step == "new model":
        aws.upload(2)
        redeploy(aws)
    elif step == "redeployer refresh":
        redeploy(aws, refresh=True)
    else:
        # A person's deploy: a new image and a longer model load (the service's grace period)
        changed = settings + "    rollout: {model_load_seconds: 900}\n"
        deploy(scripts, settings_file(tmp_path, changed, image="aurelius/model-server:0.2.0"))
        assert aws.parameters()["ModelLoadSeconds"] == "900"


def test_with_scaling_no_update_changes_the_scaled_count(aws, scripts, tmp_path):
    # Given a service deployed with scaling on (2 to 6 tasks) and scaled out to 5
    aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    deploy(scripts, settings_file(tmp_path, SCALING))
    assert aws.parameters()["ScalingMaxCapacity"] == "6"
    scale_out_by_hand(aws, 5)
    for step in STEPS:
        # When the stack is updated (a model update, a refresh, a person's settings change)
        run_step(aws, scripts, tmp_path, step, SCALING)
        # Then the service still runs 5 tasks
        assert desired_count(aws) == 5, step


@pytest.mark.parametrize("step", STEPS[1:])
def test_without_scaling_an_update_sets_the_count_from_the_settings(aws, scripts, tmp_path, step):
    # Given a fixed-count service (desired_count 2) that someone scaled to 5 by hand
    aws.upload(1)
    aws.ecs.create_cluster(clusterName=CLUSTER)
    deploy(scripts, settings_file(tmp_path, FIXED))
    scale_out_by_hand(aws, 5)
    # When the service resource is updated (the template sends DesiredCount 2)
    run_step(aws, scripts, tmp_path, step, FIXED)
    # Then the count is back to 2: the trap scaling avoids by leaving DesiredCount out
    assert desired_count(aws) == 2
