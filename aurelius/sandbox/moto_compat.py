"""Gaps of the pinned moto release that the sandbox and the tests fill (see ../shared/notes/moto.md).

1. moto 5.2.5 executes a change set without rebuilding the stack's outputs, so a stack created
   or updated through a change set (as our management scripts do) reports no Outputs. AWS does.
   We rebuild them after the change set is applied.
2. moto 5.2.5 ignores UpdateStack's ClientRequestToken: the stack events of the update carry
   none. On AWS every event an operation writes carries the token of the call that started it,
   and aurelius relies on that: the failed-version mark and `aurelius history` read which model
   version each update tried from the token of its stack events (aurelius.core.reconcile). We copy
   the token onto the events that the UpdateStack call added (moto updates synchronously, so
   they are all of that update's events); DescribeStackEvents then returns it.

Only moto's in-process objects are touched; nothing here runs against AWS. Re-check on every
moto upgrade and delete what moto fixed.
"""

from __future__ import annotations

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


def apply() -> None:
    global _applied
    if _applied:
        return
    _rebuild_outputs_after_change_set()
    _tag_update_events_with_request_token()
    _applied = True
