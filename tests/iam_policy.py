"""IAM policy evaluation and CloudFormation intrinsic resolution for the offline IAM proofs.

Evaluation uses moto's IAM statement matcher (``moto.iam.access_control.IAMPolicyStatement``)
for Action and Resource, with three corrections, because moto's evaluator is not IAM:

- IAM action names are case-insensitive; moto compares them case-sensitively. Actions are
  lower-cased on both sides before matching.
- moto turns a Resource pattern into a regular expression without escaping it ("." matches any
  character). Patterns are escaped here, "*" kept as a wildcard and "?" made one character.
- moto answers DENIED when an Allow statement's Condition does not match (in IAM the statement
  just does not apply), knows only StringEquals, and treats a missing context key as a match.
  Conditions are therefore stripped before moto sees a statement and evaluated here strictly:
  a missing key fails (unless ...IfExists), an operator this module does not know raises, so a
  policy that uses one cannot pass by accident.

Then, as IAM does: an explicit Deny that applies wins, otherwise an Allow that applies allows,
otherwise the request is implicitly denied.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes: an action on one resource ARN with its context keys."""

    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        context = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{context}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _escape_resource(pattern: str) -> str:
    # moto replaces "*" by ".*" and anchors the pattern; escape everything else ourselves.
    return "".join("*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _glob(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _condition_holds(operator: str, expected: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    if operator.startswith(("ForAnyValue:", "ForAllValues:")):
        raise NotImplementedError(f"condition operator {operator} is not evaluated by tests/iam_policy.py")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    compare = {
        "StringEquals": lambda want, got: want == got,
        "StringLike": _glob,
        "ArnEquals": _glob,  # ArnEquals and ArnLike both accept wildcards in IAM
        "ArnLike": _glob,
        "Bool": lambda want, got: str(want).lower() == str(got).lower(),
    }.get(base)
    negated = {
        "StringNotEquals": "StringEquals",
        "StringNotLike": "StringLike",
        "ArnNotEquals": "ArnEquals",
        "ArnNotLike": "ArnLike",
    }
    if compare is None and base not in negated:
        raise NotImplementedError(f"condition operator {operator} is not evaluated by tests/iam_policy.py")
    lowered = {k.lower(): v for k, v in context.items()}
    for key, wanted in expected.items():
        if key.lower() not in lowered:
            if if_exists:
                continue
            # A missing key never matches a positive operator; negated ones match it.
            if base in negated:
                continue
            return False
        got_values = [str(v) for v in _as_list(lowered[key.lower()])]
        if base in negated:
            positive = {"StringEquals": lambda w, g: w == g, "StringLike": _glob, "ArnEquals": _glob, "ArnLike": _glob}[
                negated[base]
            ]
            if any(positive(str(w), g) for w in _as_list(wanted) for g in got_values):
                return False
        elif not any(compare(str(w), g) for w in _as_list(wanted) for g in got_values):
            return False
    return True


def _statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    stripped = {k: v for k, v in statement.items() if k != "Condition"}
    for element in ("Action", "NotAction"):
        if element in stripped:
            stripped[element] = [a.lower() for a in _as_list(stripped[element])]
    if "Resource" in stripped:
        stripped["Resource"] = [_escape_resource(r) for r in _as_list(stripped["Resource"])]
    if "NotResource" in stripped:
        raise NotImplementedError("NotResource is not evaluated by tests/iam_policy.py")
    # Evaluate as an Allow: moto then answers PERMITTED exactly when Action and Resource match.
    stripped["Effect"] = "Allow"
    matched = IAMPolicyStatement(stripped).is_action_permitted(request.action.lower(), request.resource)
    if matched != PermissionResult.PERMITTED:
        return False
    return all(
        _condition_holds(op, expected, request.context) for op, expected in statement.get("Condition", {}).items()
    )


def allowed(documents: Iterable[Mapping[str, Any]], request: Request) -> bool:
    """True when the identity policies ``documents`` allow ``request`` (no explicit Deny applies)."""
    allow = False
    for document in documents:
        for statement in _as_list(document["Statement"]):
            if _statement_applies(statement, request):
                if statement["Effect"] == "Deny":
                    return False
                allow = True
    return allow


def without_action(documents: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    """A copy of ``documents`` with ``action`` removed from every statement that lists it."""
    documents = copy.deepcopy(documents)
    removed = False
    for document in documents:
        for statement in _as_list(document["Statement"]):
            actions = _as_list(statement.get("Action", []))
            if action in actions:
                statement["Action"] = [a for a in actions if a != action]
                removed = True
    assert removed, f"{action} is not in the policy"
    return documents


class Resolver:
    """Resolves the intrinsic functions policy documents use: Ref, Fn::Sub, Fn::GetAtt, Fn::Join.

    ``parameters`` are stack parameter values; ``physical`` maps a logical id (for Ref) or
    ``LogicalId.Attribute`` (for Fn::GetAtt) to its value in the sample account. Anything else
    raises KeyError naming what is missing.
    """

    def __init__(self, parameters: Mapping[str, str], physical: Mapping[str, str] | None = None):
        self.values = {**PSEUDO, **parameters, **(physical or {})}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._lookup(arg)
            if key == "Fn::GetAtt":
                name = ".".join(arg) if isinstance(arg, list) else arg
                return self._lookup(name)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self(v) for k, v in arg[1].items()})
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(extra.get(m.group(1)) or self._lookup(m.group(1))), text)
            if key == "Fn::Join":
                return arg[0].join(str(self(v)) for v in arg[1])
            if key.startswith("Fn::"):
                raise KeyError(f"intrinsic {key} is not resolved by tests/iam_policy.py")
        return {k: self(v) for k, v in value.items()}

    def _lookup(self, name: str) -> str:
        if name not in self.values:
            raise KeyError(f"no sample value for {name!r}")
        return self.values[name]


def dumps(requests: Iterable[Any]) -> str:
    return "\n".join(json.dumps(r, default=str) if not isinstance(r, str) else r for r in requests)
