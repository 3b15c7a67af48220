"""Gaps of the pinned moto release that the sandbox and the tests fill (see docs/moto.md).

1. moto 5.2.5 executes a change set without rebuilding the stack's outputs, so a stack created
   or updated through a change set (as our management scripts do) reports no Outputs. AWS does.
   We rebuild them after the change set is applied.
2. moto 5.2.5 ignores UpdateStack's ClientRequestToken: the stack events of the update carry
   none. On AWS every event an operation writes carries the token of the call that started it,
   and aurelius relies on that: the failed-version mark and `aurelius history` read which model
   version each update tried from the token of its stack events (aurelius.core.reconcile). We copy
   the token onto the events that the UpdateStack call added (moto updates synchronously, so
   they are all of that update's events); DescribeStackEvents then returns it.
3. moto 5.2.5 has no CloudFormation model for AWS::CloudWatch::Alarm (it skips the resource),
   answers neither TargetGroup.TargetGroupFullName nor LoadBalancer.LoadBalancerFullName (the
   alarms' dimensions), and lists every skipped resource, and every resource whose Condition
   is false, in DescribeStackResources as an entry with no type and no id. AWS creates the
   alarm and never lists a resource whose condition is false. We create the alarms through
   moto's CloudWatch (name, threshold, comparison, periods, math expressions: enough for
   DescribeAlarms), answer the two attributes from the ARNs, and drop the entries of
   resources that were not created.
4. moto 5.2.5 keeps a list item that resolves to AWS::NoValue (``- !If [cond, item,
   !Ref AWS::NoValue]``) as a null item; CloudFormation removes it. The task definition's
   optional environment variables rely on it. We drop such items.

The sandbox also emulates, on demand, what moto cannot do at all: the rollback that ECS and
CloudFormation perform when a new model version never turns healthy (``emulate_rollback``).

Only moto's in-process objects are touched; nothing here runs against AWS. Re-check on every
moto upgrade and delete what moto fixed.
"""

from __future__ import annotations

from typing import Any

_applied = False


def _rebuild_outputs_after_change_set() -> None:
    from moto.cloudformation.models import ChangeSet

    original = ChangeSet.apply

    def apply_and_rebuild_outputs(self) -> None:  # type: ignore[no-untyped-def]
        original(self)
        self.stack.template_dict = self.template_dict
        self.stack.output_map = self.stack._create_output_map()

    ChangeSet.apply = apply_and_rebuild_outputs


def _tag_update_events_with_request_token() -> None:
    from moto.cloudformation.responses import CloudFormationResponse

    original = CloudFormationResponse.update_stack

    def update_stack_keeping_token(self):  # type: ignore[no-untyped-def]
        token = self._get_param("ClientRequestToken")
        stack_name = self._get_param("StackName")
        before = None
        if token:
            try:
                before = len(self.cloudformation_backend.get_stack(stack_name).events)
            except Exception:  # an unknown stack: let the original call raise moto's own error
                before = None
        result = original(self)
        if token and before is not None:
            for event in self.cloudformation_backend.get_stack(stack_name).events[before:]:
                event.client_request_token = token
        return result

    CloudFormationResponse.update_stack = update_stack_keeping_token


_MODELS: list[type] = []


def _cloudwatch_alarms_in_stacks() -> None:
    from moto.cloudformation import parsing

    _stack_alarm_model()
    _elbv2_full_names()
    # moto caches its type -> model map on first use.
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    _created_resources_only()


def _stack_alarm_model() -> None:
    """A CloudFormation model for AWS::CloudWatch::Alarm (moto registers one by defining the class)."""
    from moto.cloudwatch.models import MetricDataQuery, cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    class StackAlarm(CloudFormationModel):
        """An AWS::CloudWatch::Alarm of a stack; Ref is the alarm name, as on AWS."""

        def __init__(self, name: str):
            self.name = name

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> StackAlarm:
            props = cloudformation_json["Properties"]
            queries = [
                MetricDataQuery(
                    query_id=m["Id"],
                    label=m.get("Label", ""),
                    period=m.get("MetricStat", {}).get("Period"),
                    return_data=str(m.get("ReturnData", True)).lower(),
                    expression=m.get("Expression"),
                )
                for m in props.get("Metrics", [])
                if m  # an item under a false condition is gone already
            ]
            cloudwatch_backends[account_id][region_name].put_metric_alarm(
                name=resource_name,
                namespace=props.get("Namespace"),
                metric_name=props.get("MetricName"),
                comparison_operator=props["ComparisonOperator"],
                evaluation_periods=int(props["EvaluationPeriods"]),
                period=int(props["Period"]) if "Period" in props else None,
                threshold=float(props["Threshold"]),
                statistic=props.get("Statistic"),
                description=props.get("AlarmDescription", ""),
                dimensions=[],
                alarm_actions=[],
                metric_data_queries=queries or None,
                treat_missing_data=props.get("TreatMissingData"),
            )
            return cls(resource_name)

        @classmethod
        def update_from_cloudformation_json(  # type: ignore[misc]
            cls,
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> StackAlarm:
            cloudwatch_backends[account_id][region_name].delete_alarms([original_resource.name])
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
        ) -> None:
            cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

    # moto finds models by CloudFormationModel.__subclasses__(), which holds weak references: keep one.
    _MODELS.append(StackAlarm)


def _elbv2_full_names() -> None:
    # The alarms' dimensions read TargetGroup.TargetGroupFullName, which moto's target group
    # does not answer: "targetgroup/NAME/ID", the end of its ARN, as on AWS.
    from moto.elbv2.models import FakeTargetGroup

    def has_cfn_attr(cls, attr: str) -> bool:  # type: ignore[no-untyped-def]
        return attr == "TargetGroupFullName"

    def get_cfn_attribute(self, attribute_name: str) -> str:  # type: ignore[no-untyped-def]
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name != "TargetGroupFullName":
            raise UnformattedGetAttTemplateException()
        return self.arn.split(":")[-1]

    if not hasattr(FakeTargetGroup, "get_cfn_attribute"):
        FakeTargetGroup.has_cfn_attr = classmethod(has_cfn_attr)
        FakeTargetGroup.get_cfn_attribute = get_cfn_attribute

    # ... and LoadBalancer.LoadBalancerFullName, which moto declares and does not implement:
    # "app/NAME/ID", the end of its ARN.
    from moto.elbv2.models import FakeLoadBalancer

    balancer_attribute = FakeLoadBalancer.get_cfn_attribute

    def balancer_get_cfn_attribute(self, attribute_name: str) -> Any:  # type: ignore[no-untyped-def]
        if attribute_name == "LoadBalancerFullName":
            return self.arn.split(":loadbalancer/", 1)[1]
        return balancer_attribute(self, attribute_name)

    FakeLoadBalancer.get_cfn_attribute = balancer_get_cfn_attribute


def _created_resources_only() -> None:
    """DescribeStackResources and ListStackResources leave out the resources moto skipped."""
    from moto.cloudformation.models import CloudFormationBackend

    def created_only(resources: Any) -> list[Any]:
        return [r for r in resources if r is not None]

    describe, listing = CloudFormationBackend.describe_stack_resources, CloudFormationBackend.list_stack_resources

    def describe_stack_resources(self, stack_name: str, logical_resource_id: str):  # type: ignore[no-untyped-def]
        stack, resources = describe(self, stack_name, logical_resource_id)
        return stack, created_only(resources)

    def list_stack_resources(self, stack_name_or_id: str):  # type: ignore[no-untyped-def]
        stack, resources = listing(self, stack_name_or_id)
        return stack, created_only(resources)

    CloudFormationBackend.describe_stack_resources = describe_stack_resources
    CloudFormationBackend.list_stack_resources = list_stack_resources


def _drop_novalue_list_items() -> None:
    from moto.cloudformation import parsing

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        cleaned = original(resource_json, resources_map)  # recurses through this wrapper
        if isinstance(resource_json, list) and isinstance(cleaned, list):
            return [item for item in cleaned if item is not None]
        return cleaned

    parsing.clean_json = clean_json


# Stack-level statuses of an update, and what the same step is called during a rollback.
_AS_ROLLBACK = {
    "UPDATE_IN_PROGRESS": "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_COMPLETE": "UPDATE_ROLLBACK_COMPLETE",
}


def emulate_rollback(cfn, stack_name: str, previous: dict[str, str], token: str, reason: str) -> None:
    """What CloudFormation does after ECS reports the update's deployment failed (circuit
    breaker or deployment alarm), done to moto's in-process stack, which cannot run tasks.

    CloudFormation re-applies the previous parameters (``previous``: the parameters that the
    failed update changed, with their old values; so the task definition gets a new revision
    pinned to the old model), writes the rollback's stack events with the failed update's
    ClientRequestToken, and leaves the stack UPDATE_ROLLBACK_COMPLETE. The sandbox only:
    the stack must live in this process's moto.
    """
    from moto.cloudformation.models import cloudformation_backends

    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    account, region = stack["StackId"].split(":")[4], stack["StackId"].split(":")[3]
    moto_stack = cloudformation_backends[account][region].get_stack(stack_name)
    before = len(moto_stack.events)
    cfn.update_stack(
        StackName=stack_name,
        UsePreviousTemplate=True,
        Parameters=[
            {"ParameterKey": p["ParameterKey"], "ParameterValue": previous[p["ParameterKey"]]}
            if p["ParameterKey"] in previous
            else {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
            for p in stack["Parameters"]
        ],
        Capabilities=stack.get("Capabilities") or ["CAPABILITY_NAMED_IAM"],
    )
    for event in moto_stack.events[before:]:
        event.client_request_token = token
        if event.resource_type == "AWS::CloudFormation::Stack":
            event.resource_status = _AS_ROLLBACK.get(event.resource_status, event.resource_status)
            event.resource_status_reason = reason if event.resource_status == "UPDATE_ROLLBACK_IN_PROGRESS" else None
    moto_stack.status = "UPDATE_ROLLBACK_COMPLETE"


def apply() -> None:
    global _applied
    if _applied:
        return
    _rebuild_outputs_after_change_set()
    _tag_update_events_with_request_token()
    _cloudwatch_alarms_in_stacks()
    _drop_novalue_list_items()
    _applied = True
