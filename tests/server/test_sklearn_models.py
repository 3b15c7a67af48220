"""Real scikit-learn models served over HTTP (moto S3 on 127.0.0.1): each format loads, each
request shape reaches the model as the model expects it, and the answers equal the same
model's in-process ``predict`` / ``predict_proba`` (exactly: JSON keeps every float's digits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aurelius_server.app import main
from aurelius_server.config import parse_s3_uri
from aurelius_server.payload import ModelInputs, parse_request
from aurelius_server.pinned_model import load_model
from aurelius_server.s3_download import ModelLoadError
from aurelius_server.smoke import SmokeTest, SmokeTestFailed

from . import real_models
from .conftest import serving
from .helpers import call, log_lines
from .real_models import COLUMNS, FORMAT_OF, SAVERS, TEXTS


@pytest.fixture(scope="session")
def numeric_model():
    return real_models.iris_numeric()


@pytest.fixture(scope="session")
def tabular_model():
    return real_models.iris_tabular()


@pytest.fixture(scope="session")
def text_model():
    return real_models.spam_text()


@pytest.fixture(scope="session")
def iris_rows() -> list[list[float]]:
    return real_models.iris_frame()[real_models.NUMERIC].to_numpy()[::10].tolist()  # 15 rows, all 3 classes


@pytest.fixture(scope="session")
def tabular_frame():
    frame = real_models.iris_frame()[COLUMNS].iloc[::10].reset_index(drop=True)
    frame.loc[0, "petal_width"] = None  # a missing value, sent as null
    return frame


@pytest.fixture(scope="module", params=list(SAVERS))
def numeric_server(request, numeric_model, session_publish, moto_endpoint, tmp_path_factory):
    saver = request.param
    published = session_publish(SAVERS[saver](numeric_model), key=f"iris-numeric/{saver}/model.pkl")
    with serving(moto_endpoint, published, tmp_path_factory.mktemp(saver)) as server:
        yield saver, server


@pytest.fixture(scope="module")
def tabular_server(tabular_model, tabular_frame, session_publish, moto_endpoint, tmp_path_factory):
    """joblib compress=3 (scikit-learn's documented way), smoke-tested with named features and labels."""
    published = session_publish(SAVERS["joblib-3"](tabular_model), key="iris-tabular/model.pkl")
    smoke_rows = [{"color": "red", **dict(zip(real_models.NUMERIC, [5.1, 3.5, 1.4, 0.2], strict=True))}]
    expected = tabular_model.predict(real_models.pd.DataFrame(smoke_rows)[COLUMNS]).tolist()
    with serving(
        moto_endpoint,
        published,
        tmp_path_factory.mktemp("tabular"),
        SMOKE_TEST_INSTANCES=json.dumps(smoke_rows),
        SMOKE_TEST_EXPECTED=json.dumps(expected),
    ) as server:
        yield server


def test_every_format_serves_the_same_predictions_and_probabilities_as_in_process(
    numeric_server, numeric_model, iris_rows
):
    # Given a numeric iris pipeline saved as pickle, joblib (compress 0 and 3) or skops, served
    saver, server = numeric_server

    # When a client asks for predictions and probabilities of the same rows
    predicted = call(server.port, "POST", "/predict", {"instances": iris_rows})
    probabilities = call(server.port, "POST", "/predict_proba", {"instances": iris_rows})

    # Then both equal the model's own answers in this process, and /version names the format
    assert predicted.status == 200 and probabilities.status == 200
    assert predicted.json == {"predictions": numeric_model.predict(iris_rows).tolist()}
    assert probabilities.json["predictions"] == numeric_model.predict_proba(iris_rows).tolist()
    version = call(server.port, "GET", "/version").json
    assert (version["format"], version["methods"]) == (FORMAT_OF[saver], ["predict", "predict_proba"])
    # And named features are refused: a model fitted on an array takes columns by position only
    named = call(server.port, "POST", "/predict", {"instances": [dict(zip("abcd", iris_rows[0], strict=True))]})
    assert named.status == 422
    assert "fitted without feature names: send rows of 4 values" in named.json["message"]


def test_rows_with_strings_and_nulls_become_the_dataframe_the_model_was_fitted_on(
    tabular_server, tabular_model, tabular_frame
):
    # Given a ColumnTransformer pipeline fitted on a DataFrame with a string column
    rows = json.loads(tabular_frame.to_json(orient="values"))  # [5.1, 3.5, 1.4, null, "red"], ...

    # When a client posts rows by position (numbers, a string, a null)
    reply = call(tabular_server.port, "POST", "/predict", {"instances": rows})

    # Then the answers equal the model's on the same DataFrame
    assert reply.status == 200, reply.json
    assert reply.json == {"predictions": tabular_model.predict(tabular_frame).tolist()}
    # And the start-up smoke test with named features and expected labels passed
    assert tabular_server.events("smoke_test_passed")


def test_named_features_in_any_key_order_and_columnar_inputs_give_the_same_answers(
    tabular_server, tabular_model, tabular_frame
):
    # Given the same rows as objects (keys in reverse order) and as TF-Serving columns
    records = json.loads(tabular_frame.to_json(orient="records"))
    objects = [dict(reversed(list(record.items()))) for record in records]
    columns = {name: [record[name] for record in records] for name in COLUMNS}

    # When both are posted
    by_name = call(tabular_server.port, "POST", "/predict_proba", {"instances": objects})
    by_column = call(tabular_server.port, "POST", "/predict", {"inputs": columns})

    # Then the columns were put in the model's order: the answers equal the in-process ones
    assert by_name.json["predictions"] == tabular_model.predict_proba(tabular_frame).tolist()
    assert by_column.json == {"outputs": tabular_model.predict(tabular_frame).tolist()}


@pytest.mark.parametrize(
    "instances, problem",
    [
        (
            [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}],
            "missing the column(s) 'color'",
        ),
        (
            [
                {
                    "sepal_length": 5.1,
                    "sepal_width": 3.5,
                    "petal_length": 1.4,
                    "petal_width": 0.2,
                    "color": "red",
                    "age": 3,
                }
            ],
            "unknown column(s) 'age'",
        ),
        ([[5.1, 3.5, 1.4, 0.2]], "instances have 4 values each; the model takes 5 features"),
        (["a scalar"], "the model takes rows of 5 features"),
        ([[5.1, 3.5, 1.4, 0.2, "red"], {"color": "red"}], "every instance must be the same kind"),
    ],
    ids=["missing-column", "unknown-column", "wrong-width", "scalar", "mixed-kinds"],
)
def test_input_the_model_cannot_take_is_422_naming_the_problem(tabular_server, instances, problem):
    # Given a model that knows its columns / When a request does not fit them
    reply = call(tabular_server.port, "POST", "/predict", {"instances": instances})

    # Then the answer is 422 invalid_shape naming what is wrong (never a 500)
    assert reply.status == 422
    assert reply.json["error"] == "invalid_shape"
    assert problem in reply.json["message"]


def test_a_model_raising_on_well_formed_input_is_still_a_500(tabular_server):
    # Given a well-formed row whose number column holds a word
    # When posted / Then scikit-learn raises, and the client gets the generic 500
    reply = call(tabular_server.port, "POST", "/predict", {"instances": [["five", 3.5, 1.4, 0.2, "red"]]})
    assert reply.status == 500
    assert reply.json["error"] == "prediction_failed"


def test_a_text_pipeline_takes_one_string_per_instance(text_model, session_publish, moto_endpoint, tmp_path):
    # Given a TfidfVectorizer + LogisticRegression pipeline, pickled and served
    published = session_publish(SAVERS["pickle"](text_model), key="spam/model.pkl")
    texts = ["free cash now", "see you at lunch", TEXTS[0]]
    with serving(moto_endpoint, published, tmp_path) as server:
        # When a client posts scalars (strings)
        predicted = call(server.port, "POST", "/predict", {"instances": texts})
        probabilities = call(server.port, "POST", "/predict_proba", {"instances": texts})

    # Then the answers equal the in-process ones
    assert predicted.json == {"predictions": text_model.predict(texts).tolist()}
    assert probabilities.json["predictions"] == text_model.predict_proba(texts).tolist()


def test_a_skops_file_loads_only_with_its_non_default_types_trusted(
    tabular_model, tabular_frame, session_publish, aws_env
):
    # Given the tabular pipeline as a skops file (it holds numpy.dtype, which skops does not trust by default)
    published = session_publish(SAVERS["skops"](tabular_model), key="iris-tabular/skops.pkl")
    location = parse_s3_uri(published.uri)

    # When loaded without trusting it, it is refused, naming the type and the setting
    with pytest.raises(ModelLoadError) as refused:
        load_model(location, published.version_id)
    assert "not trusted: numpy.dtype" in str(refused.value)
    assert "MODEL_SKOPS_TRUSTED_TYPES" in str(refused.value)

    # And with the type trusted it loads, as skops, and predicts as the original
    loaded = load_model(location, published.version_id, trusted_types=("numpy.dtype",))
    assert loaded.format == "skops"
    assert loaded.model.predict(tabular_frame).tolist() == tabular_model.predict(tabular_frame).tolist()

    # And the smoke test checks the instances against the model's columns before predict
    smoke = SmokeTest([{"color": "red"}])
    with pytest.raises(SmokeTestFailed) as failed:
        smoke.run(loaded)
    assert failed.value.check == "instances"
    assert "missing the column(s) 'petal_length'" in str(failed.value)


def test_a_missing_library_fails_the_start_naming_the_module_and_where_to_declare_it(
    session_publish, aws_env, capsys, restore_logging
):
    # Given a pickle of a class from a library the server does not have
    published = session_publish(b"\x80\x04caurelius_missing_library\nModel\n)\x81.", key="missing/model.pkl")

    # When the server starts
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "MODEL_S3_URI": published.uri,
        "MODEL_VERSION_ID": published.version_id,
    }
    code = main(env)

    # Then it exits 1 with one startup_failed line naming the module and the requirements file
    errors = [line for line in log_lines(capsys.readouterr().out) if line["level"] == "ERROR"]
    assert code == 1
    assert [line["event"] for line in errors] == ["startup_failed"]
    assert "the pickle file needs the module 'aurelius_missing_library'" in errors[0]["message"]
    assert "add it to server/model-requirements.txt" in errors[0]["message"]


def test_numbers_only_rows_do_not_import_pandas():
    # Given a fresh interpreter and a model without feature names
    script = (
        "import sys\n"
        "from aurelius_server.payload import ModelInputs, parse_request\n"
        "batch = parse_request(b'{\"instances\": [[1, 2.5], [3, 4]]}', ModelInputs(None, 2))\n"
        "print(batch.data, 'pandas' in sys.modules)\n"
    )
    # When it parses numbers-only rows / Then they reach the model as parsed, and pandas stayed out
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[[1, 2.5], [3, 4]] False"


def test_named_numbers_become_one_float_frame_in_the_model_column_order_and_mixed_rows_keep_their_types():
    # Given a model fitted on a DataFrame with columns a, b
    inputs = ModelInputs(("a", "b"), 2)

    # When numbers arrive as objects in another key order, and as a row mixing a number and a string
    numbers = parse_request(b'{"instances": [{"b": 2, "a": 1}, {"a": 3.5, "b": -1}]}', inputs).data
    mixed = parse_request(b'{"instances": [[1, "x"], [2, null]]}', inputs).data

    # Then the numbers are float64 columns in the model's order (5 and 5.0 give the same dtype)
    assert list(numbers.columns) == ["a", "b"] and [str(dtype) for dtype in numbers.dtypes] == ["float64", "float64"]
    assert numbers.to_numpy().tolist() == [[1.0, 2.0], [3.5, -1.0]]
    # And a mixed row keeps its integer column and its text column (null as missing)
    assert str(mixed.dtypes["a"]) == "int64"
    assert mixed["b"].tolist()[0] == "x" and mixed["b"].isna().tolist() == [False, True]
