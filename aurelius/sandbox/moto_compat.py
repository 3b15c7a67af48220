"""Gaps of the pinned moto release that the sandbox and the tests fill (see ../shared/notes/moto.md).

moto 5.2.5 executes a change set without rebuilding the stack's outputs, so a stack created
or updated through a change set (as our management scripts do) reports no Outputs. AWS does.
We rebuild them after the change set is applied. Only moto's in-process objects are touched;
nothing here runs against AWS. Re-check on every moto upgrade and delete what moto fixed.
"""

from __future__ import annotations

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.cloudformation.models import ChangeSet

    original = ChangeSet.apply

    def apply_and_rebuild_outputs(self) -> None:  # type: ignore[no-untyped-def]
        original(self)
        self.stack.template_dict = self.template_dict
        self.stack.output_map = self.stack._create_output_map()

    ChangeSet.apply = apply_and_rebuild_outputs
    _applied = True
