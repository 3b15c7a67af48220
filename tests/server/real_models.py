"""Real scikit-learn models, trained on data scikit-learn ships, and their bytes in each format.

Trained once per test session (conftest's session fixtures): CPU time, not correctness, is what
a second training would cost.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pandas as pd
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
COLUMNS = [*NUMERIC, "color"]
COLORS = np.array(["red", "green", "blue"])
TEXTS = ["free money now", "win a cash prize", "claim your free prize", "lunch at noon?", "meeting moved to ten"]
SPAM = [1, 1, 1, 0, 0]


def iris_numeric() -> Any:
    """StandardScaler + LogisticRegression fitted on a numpy array: no feature names."""
    features, target = load_iris(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, target)


def iris_frame() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame
    frame.columns = [*NUMERIC, "target"]
    frame["color"] = COLORS[frame.index % 3]  # a categorical column, as most tabular models have
    return frame


def iris_tabular() -> Any:
    """ColumnTransformer (imputed, scaled numbers + OneHotEncoder on ``color``) fitted on a DataFrame."""
    frame = iris_frame()
    columns = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            ("color", OneHotEncoder(handle_unknown="ignore"), ["color"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame[COLUMNS], frame["target"])


def spam_text() -> Any:
    """TfidfVectorizer + LogisticRegression on a tiny list of texts."""
    return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(TEXTS, SPAM)


def _joblib(compress: int) -> Callable[[Any], bytes]:
    def dump(model: Any) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(model, buffer, compress=compress)
        return buffer.getvalue()

    return dump


SAVERS: dict[str, Callable[[Any], bytes]] = {
    "pickle": pickle.dumps,
    "joblib-0": _joblib(0),
    "joblib-3": _joblib(3),
    "skops": skops.io.dumps,
}
FORMAT_OF = {"pickle": "pickle", "joblib-0": "joblib", "joblib-3": "joblib", "skops": "skops"}
