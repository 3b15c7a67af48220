"""The /predict contract: the request shape in, JSON predictions out.

Request body (Content-Type application/json, at most MAX_BODY_BYTES):

    {"instances": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}

- a JSON object whose only key is ``instances``;
- ``instances``: a non-empty list of instances; each instance a non-empty list of JSON numbers
  (no strings, booleans, nulls, NaN or Infinity); every instance the same length;
- ``model.predict`` receives that list of lists as parsed (Python ints and floats).

Response body (200):

    {"predictions": [p1, p2]}

- one prediction per instance, in order. Whatever ``predict`` returns is converted with
  ``.tolist()`` when it has one (numpy arrays and scalars, pandas objects), also inside lists;
  it must then be a list as long as ``instances`` of JSON-encodable values.

Errors, any status: ``{"error": "<code>", "message": "<what to fix>"}``; the codes used here
are ``invalid_json`` (400) and ``invalid_shape`` (422).
"""

from __future__ import annotations

import json
from typing import Any


class PayloadError(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code = status, code
        super().__init__(message)


class ModelOutputError(Exception):
    """predict() returned something that is not one JSON value per instance."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_instances(body: bytes) -> list[list[int | float]]:
    """The validated ``instances`` of a /predict body. Raises PayloadError."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from None

    def shape_error(message: str) -> PayloadError:
        return PayloadError(422, "invalid_shape", f'{message}; expected {{"instances": [[number, ...], ...]}}')

    if not isinstance(document, dict):
        raise shape_error(f"the body is {_describe(document)}, not an object")
    extra = sorted(set(document) - {"instances"})
    if extra:
        raise shape_error(f"unexpected key(s) {', '.join(map(repr, extra))}")
    if "instances" not in document:
        raise shape_error('the key "instances" is missing')
    instances = document["instances"]
    if not isinstance(instances, list) or not instances:
        raise shape_error(f"instances is {_describe(instances)}")
    width = None
    for i, row in enumerate(instances):
        if not isinstance(row, list) or not row:
            raise shape_error(f"instances[{i}] is {_describe(row)}, not an array of numbers")
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise shape_error(f"instances[{i}][{j}] is {_describe(value)}, not a number")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise shape_error(f"instances[{i}] has {len(row)} values, instances[0] has {width}")
    return instances


def render_predictions(raw: Any, expected: int) -> bytes:
    """The 200 body for what predict() returned. Raises ModelOutputError."""
    predictions = plain(raw)
    if not isinstance(predictions, list):
        raise ModelOutputError(f"predict() returned {type(raw).__name__}, not a list")
    if len(predictions) != expected:
        raise ModelOutputError(f"predict() returned {len(predictions)} predictions for {expected} instances")
    try:
        return json.dumps({"predictions": predictions}, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ModelOutputError(f"predictions are not JSON-encodable: {exc}") from exc


def plain(value: Any) -> Any:
    """Lists, dicts and scalars, via .tolist() where an object offers it (without importing numpy)."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def _describe(value: Any) -> str:
    return "an empty array" if value == [] else f"a JSON {_kind(value)}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
