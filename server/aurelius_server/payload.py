"""The /predict and /predict_proba contract: KServe / TensorFlow-Serving V1 requests in, JSON out.

Request body (Content-Type application/json, at most MAX_BODY_BYTES), one of:

    {"instances": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]}                rows
    {"instances": [[5.1, 3.5, "red"], [6.2, null, "blue"]]}                    rows, any JSON scalars
    {"instances": [{"sepal_length": 5.1, "color": "red"}, ...]}                named features
    {"instances": ["free money now", "lunch at noon?"]}                        scalars (text)
    {"inputs": {"sepal_length": [5.1, 6.2], "color": ["red", "blue"]}}        columnar (named)
    {"inputs": [[5.1, 3.5, 1.4, 0.2]]}                                         same as "instances"

- every instance is the same kind of JSON value: a row (a non-empty array of numbers, strings,
  booleans and nulls; null is a missing value), an object (feature name -> scalar), or a scalar;
- rows all have the same width, and the model's width when it knows one (``n_features_in_``);
- what ``predict`` receives: numbers-only rows for a model without feature names as parsed (a
  list of lists, no pandas); rows for a model fitted on a DataFrame (``feature_names_in_``)
  become a DataFrame with those columns, by position; objects become a DataFrame in the
  model's column order (every object has every column, no other; a model without
  ``feature_names_in_`` takes the first object's keys, in order); scalars a list.
  pandas is imported only for the two DataFrame shapes. A DataFrame of numbers only is one
  float64 block; with strings, booleans or nulls, pandas infers each column's dtype.

Response body (200): ``{"predictions": [...]}`` (``{"outputs": [...]}`` for an ``inputs``
request, as TF-Serving answers): one value per instance, in order; numpy and pandas results
via ``.tolist()`` (``predict_proba``: one list of floats per instance).

Errors, any status: ``{"error": "<code>", "message": "<what to fix>"}``; the codes used here
are ``invalid_json`` (400) and ``invalid_shape`` (422).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import orjson

_SCALARS = (str, int, float, bool, type(None))
EXPECTED = (
    'expected {"instances": [...]} of rows [1.0, "red", null], objects {"feature": value} or scalars, '
    'or {"inputs": {"feature": [values]}}'
)


class PayloadError(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code = status, code
        super().__init__(message)


class ModelOutputError(Exception):
    """The model returned something that is not one JSON value per instance."""


def _shape_error(message: str) -> PayloadError:
    return PayloadError(422, "invalid_shape", f"{message}; {EXPECTED}")


@dataclass(frozen=True)
class ModelInputs:
    """What the model says about its input, read once when it loads."""

    feature_names: tuple[str, ...] | None = None  # feature_names_in_: fitted on a DataFrame
    n_features: int | None = None  # n_features_in_

    @classmethod
    def of(cls, model: Any) -> ModelInputs:
        names, width = _attribute(model, "feature_names_in_"), _attribute(model, "n_features_in_")
        names = tuple(str(name) for name in names) if names is not None else None
        width = len(names) if names is not None else width if isinstance(width, int) else None
        return cls(names, width)


def _attribute(model: Any, name: str) -> Any:
    try:
        return getattr(model, name, None)
    except Exception:  # a property of an unfitted step, or of a pipeline that does not delegate it
        return None


@dataclass(frozen=True)
class Batch:
    """A validated request: what the model method receives, and how to answer."""

    data: Any
    count: int
    answer_key: str = "predictions"


def parse_request(body: bytes, inputs: ModelInputs) -> Batch:
    """The validated batch of a /predict body. Raises PayloadError."""
    try:
        document = orjson.loads(body)  # strict RFC 8259: no NaN / Infinity, valid UTF-8 only
    except orjson.JSONDecodeError as exc:
        raise PayloadError(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _shape_error(f"the body is {_describe(document)}, not an object")
    keys = set(document)
    if keys == {"instances"}:
        return validate_instances(document["instances"], inputs)
    if keys == {"inputs"}:
        return _columnar(document["inputs"], inputs)
    if not keys:
        raise _shape_error('the key "instances" is missing')
    extra = sorted(keys - {"instances"} if "instances" in keys else keys - {"inputs"})
    raise _shape_error(f"unexpected key(s) {', '.join(map(repr, extra))}")


# Made once: json.dumps with an option builds a new encoder at every call. The answer is encoded
# by the standard library, not orjson: orjson writes NaN as null, and a model that returns NaN or
# infinity gets a 500 (ModelOutputError) here, not a null prediction the client may take for one.
_ENCODER = json.JSONEncoder(allow_nan=False)


def validate_instances(
    instances: Any, inputs: ModelInputs, answer_key: str = "predictions", build: bool = True
) -> Batch:
    """Parsed ``instances`` -> what the model receives. Raises PayloadError (422) naming the problem.

    The /predict handler and the smoke test both call this (the smoke test with the parsed
    SMOKE_TEST_INSTANCES, first with ``ModelInputs()`` and ``build=False`` to check the shape
    before the model loads: no DataFrame, no pandas).
    """
    if not isinstance(instances, list) or not instances:
        raise _shape_error(f"instances is {_describe(instances)}")
    first = instances[0]
    if isinstance(first, list):
        return _rows(instances, inputs, answer_key, build)
    if isinstance(first, dict):
        return _objects(instances, inputs, answer_key, build)
    _same_kind(instances, _SCALARS, "a scalar")
    if inputs.n_features is not None:
        raise _shape_error(
            f"instances are scalars (instances[0] is {_describe(first)}) but the model takes rows of "
            f"{inputs.n_features} features"
        )
    return Batch(instances, len(instances), answer_key)


def _same_kind(instances: list[Any], kind: type | tuple[type, ...], name: str) -> None:
    for i, instance in enumerate(instances):
        if not isinstance(instance, kind):
            raise _shape_error(
                f"instances[{i}] is {_describe(instance)} and instances[0] {name}: every instance must be the same kind"
            )


def _rows(instances: list[Any], inputs: ModelInputs, answer_key: str, build: bool) -> Batch:
    width = len(instances[0])
    numbers_only = True
    for i, row in enumerate(instances):
        if not isinstance(row, list):
            raise _shape_error(
                f"instances[{i}] is {_describe(row)} and instances[0] an array: every instance must be the same kind"
            )
        if not row:
            raise _shape_error(f"instances[{i}] is an empty array")
        for j, value in enumerate(row):
            kind = type(value)
            if kind is not float and kind is not int:
                if not isinstance(value, _SCALARS):
                    raise _shape_error(
                        f"instances[{i}][{j}] is {_describe(value)}, not a number, string, boolean or null"
                    )
                numbers_only = False
        if len(row) != width:
            raise _shape_error(f"instances[{i}] has {len(row)} values, instances[0] has {width}")
    if inputs.n_features is not None and width != inputs.n_features:
        raise _shape_error(f"instances have {width} values each; the model takes {inputs.n_features} features")
    if inputs.feature_names is not None and build:
        return Batch(_frame(instances, inputs.feature_names, numbers_only), len(instances), answer_key)
    return Batch(instances, len(instances), answer_key)


def _objects(instances: list[Any], inputs: ModelInputs, answer_key: str, build: bool = True) -> Batch:
    _same_kind(instances, dict, "an object")
    if inputs.feature_names is None and inputs.n_features is not None:
        # Fitted on an array: it takes columns by position, and an object's keys have no order.
        raise _shape_error(f"the model was fitted without feature names: send rows of {inputs.n_features} values")
    columns = inputs.feature_names or tuple(instances[0])
    if not columns:
        raise _shape_error("instances[0] is an empty object")
    expected = set(columns)
    numbers_only = True
    for i, instance in enumerate(instances):
        names = set(instance)
        if names != expected:
            missing, unknown = sorted(expected - names), sorted(names - expected)
            problem = (
                f"is missing the column(s) {', '.join(map(repr, missing))}"
                if missing
                else f"has the unknown column(s) {', '.join(map(repr, unknown))}"
            )
            raise _shape_error(f"instances[{i}] {problem}; the columns are {', '.join(map(repr, columns))}")
        for name, value in instance.items():
            kind = type(value)
            if kind is not float and kind is not int:
                if not isinstance(value, _SCALARS):
                    raise _shape_error(
                        f"instances[{i}][{name!r}] is {_describe(value)}, not a number, string, boolean or null"
                    )
                numbers_only = False
    if not build:
        return Batch(instances, len(instances), answer_key)
    rows = [[instance[name] for name in columns] for instance in instances]
    return Batch(_frame(rows, columns, numbers_only), len(instances), answer_key)


def _frame(rows: list[list[Any]], columns: tuple[str, ...], numbers_only: bool) -> Any:
    """A DataFrame of ``rows`` (values in ``columns`` order). Numbers only: one float64 block,
    about twice as fast to build as pandas' per-column inference, and the same dtype whether a
    client wrote 5 or 5.0; otherwise pandas infers each column's dtype."""
    pandas = _pandas()
    if numbers_only:
        import numpy  # pandas requires it

        return pandas.DataFrame(numpy.array(rows, dtype=numpy.float64), columns=_column_index(columns), copy=False)
    return pandas.DataFrame(rows, columns=_column_index(columns))


@functools.lru_cache(maxsize=16)
def _column_index(columns: tuple[str, ...]) -> Any:
    """The pandas Index of a model's columns, made once: building it from a list costs most of a
    one-row DataFrame's construction (about 50 of 60 us here). An Index is immutable, so every
    request's DataFrame may share it."""
    return _pandas().Index(columns)


def _pandas() -> Any:
    """pandas, imported only for the DataFrame shapes (``pinned_model`` checks it is there for a
    model fitted on a DataFrame; without it, named features are refused, not a 500)."""
    try:
        import pandas
    except ModuleNotFoundError:
        raise PayloadError(
            501, "not_implemented", "named features need pandas, which this server does not have: send rows"
        ) from None
    return pandas


def _columnar(value: Any, inputs: ModelInputs) -> Batch:
    """TF-Serving's columnar ``inputs``: {"name": [v1, v2, ...], ...} (or a list, as ``instances``)."""
    if isinstance(value, list):
        return validate_instances(value, inputs, "outputs")
    if not isinstance(value, dict) or not value:
        raise _shape_error(f"inputs is {_describe(value)}")
    lengths = set()
    for name, column in value.items():
        if not isinstance(column, list) or not column:
            raise _shape_error(f"inputs[{name!r}] is {_describe(column)}, not a non-empty array (one value per row)")
        lengths.add(len(column))
    if len(lengths) != 1:
        raise _shape_error(f"the inputs columns have different lengths ({', '.join(map(str, sorted(lengths)))})")
    names = list(value)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*value.values(), strict=True)]
    return _objects(rows, inputs, "outputs")


def render(raw: Any, batch: Batch, method: str = "predict") -> bytes:
    """The 200 body for what the model method returned. Raises ModelOutputError."""
    predictions = plain(raw)
    if not isinstance(predictions, list):
        raise ModelOutputError(f"{method}() returned {type(raw).__name__}, not a list")
    if len(predictions) != batch.count:
        raise ModelOutputError(f"{method}() returned {len(predictions)} results for {batch.count} instances")
    try:
        return _ENCODER.encode({batch.answer_key: predictions}).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ModelOutputError(f"the results are not JSON-encodable: {exc}") from exc


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
