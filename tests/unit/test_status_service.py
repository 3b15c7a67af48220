"""`aurelius status` beyond the model: tasks, deployment alarms in ALARM, signatures (issue 17 item 5).

Fakes stand in for ECS, Application Auto Scaling and CloudWatch (moto does not run tasks, and a
deployment alarm in ALARM needs metric data moto does not evaluate); each fake records the
requests so the test pins down what is asked.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from aurelius.cli.output import signed_cell, status_notes, tasks_cell
from aurelius.core.model_signature import Signature, SignatureStatus
from aurelius.history import ObjectVersion
from aurelius.infra_checks import TaskCount
from aurelius.status import ALARM_NOTE, IN_SYNC, EnvironmentStatus, ServiceClients, service_health

SERVICE_ARN = "arn:aws:ecs:us-east-1:123456789012:service/the-cluster/the-service"
ALARMS = ["five-hundreds", "prediction-errors"]


class Fake:
    def __init__(self, **answers):
        self.answers, self.calls = answers, []

    def __getattr__(self, operation):
        def call(**kwargs):
            self.calls.append((operation, kwargs))
            answer = self.answers[operation]
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


def fakes(scalable=True, describe_alarms=None):
    service = {
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/the-cluster",
        "serviceName": "the-service",
        "desiredCount": 3,
        "runningCount": 2,
        "deploymentConfiguration": {"alarms": {"alarmNames": ALARMS, "enable": True, "rollback": True}},
    }
    targets = [
        {
            "ResourceId": "service/the-cluster/the-service",
            "ScalableDimension": "ecs:service:DesiredCount",
            "MinCapacity": 2,
            "MaxCapacity": 6,
        }
    ]
    return {
        "ecs": Fake(describe_services={"services": [service]}),
        "application-autoscaling": Fake(describe_scalable_targets={"ScalableTargets": targets if scalable else []}),
        "cloudwatch": Fake(
            describe_alarms=describe_alarms
            or {
                "MetricAlarms": [
                    {"AlarmName": "five-hundreds", "StateValue": "ALARM"},
                    {"AlarmName": "prediction-errors", "StateValue": "OK"},
                ]
            }
        ),
    }


def test_tasks_and_the_deployment_alarms_already_in_alarm_are_read_for_the_stacks_service():
    # Given a scaled service with two deployment alarms, one in ALARM
    made = fakes()
    # When
    count, in_alarm, note = service_health(SERVICE_ARN, ServiceClients(made.__getitem__))
    # Then
    assert count == TaskCount(desired=3, running=2, minimum=2, maximum=6) and note is None
    assert in_alarm == ("five-hundreds",)
    assert made["ecs"].calls == [("describe_services", {"cluster": "the-cluster", "services": [SERVICE_ARN]})]
    assert made["application-autoscaling"].calls == [
        ("describe_scalable_targets", {"ServiceNamespace": "ecs", "ResourceIds": ["service/the-cluster/the-service"]})
    ]
    assert made["cloudwatch"].calls == [("describe_alarms", {"AlarmNames": ALARMS})]


def test_a_refused_read_is_a_note_not_a_failed_status():
    made = fakes()
    made["application-autoscaling"].answers["describe_scalable_targets"] = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "DescribeScalableTargets"
    )
    count, in_alarm, note = service_health(SERVICE_ARN, ServiceClients(made.__getitem__))
    assert count is None and in_alarm == () and "AccessDeniedException" in note


def signature(state: Signature) -> SignatureStatus:
    return SignatureStatus(state, f"reason {state}")


def environment(**kwargs) -> EnvironmentStatus:
    base = dict(
        environment="prod",
        stack_name="s",
        model_uri="s3://b/k",
        state=IN_SYNC,
        reason="",
        deployed_version="v1",
        newest=ObjectVersion("v2"),
    )
    return EnvironmentStatus(**{**base, **kwargs})


def test_the_table_and_notes_say_what_is_signed_the_tasks_and_the_alarm_that_will_not_protect():
    # Given prod requires signing, the deployed v1 is signed, the newest v2 is not
    r = environment(
        signing_required=True,
        deployed_signature=signature(Signature.SIGNED),
        newest_signature=signature(Signature.NO_SIGNATURE),
        tasks=TaskCount(3, 2, 2, 6),
        alarms_in_alarm=("five-hundreds",),
    )
    # Then
    assert signed_cell(r) == "yes/no (required)"
    assert tasks_cell(r.tasks) == "2/3 [2-6]"
    notes = status_notes(r)
    assert "prod: newest version not signed: reason no-signature" in notes
    assert "prod: 2/3 tasks running, scaling 2-6" in notes
    assert f"prod: deployment alarm five-hundreds is in ALARM: {ALARM_NOTE}" in notes
    # and --json carries the same
    data = r.as_dict()
    assert data["newest_signature"]["signed"] is False and data["deployed_signature"]["state"] == "signed"
    assert data["tasks"] == {"desired": 3, "running": 2, "min": 2, "max": 6}
    assert data["deployment_alarms_in_alarm"] == [{"name": "five-hundreds", "note": ALARM_NOTE}]


def test_an_unsigned_environment_shows_the_column_without_a_note_per_version():
    r = environment(deployed_signature=signature(Signature.NO_DIGEST), newest_signature=signature(Signature.NO_DIGEST))
    assert signed_cell(r) == "no/no"
    assert not any("not signed" in line for line in status_notes(r))
