"""The pickle scan (picklescan) and the guarded loaders: a malicious pickle is refused and never runs.

Each malicious model is made in the test: an object whose ``__reduce__`` makes unpickling call a
dangerous function that would create a marker file. The marker must not exist afterwards.
"""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from aurelius_server import pickle_scan
from aurelius_server.config import ConfigError


class Payload:
    """Unpickling it calls ``function(*arguments)``; pickling it runs nothing."""

    def __init__(self, function, *arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


def payloads(marker: Path) -> dict[str, Payload]:
    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": Payload(os.system, f"touch {marker}"),
        "subprocess.call": Payload(subprocess.call, ["touch", str(marker)]),
        "builtins.exec": Payload(builtins.exec, touch),
        "builtins.eval": Payload(builtins.eval, touch),
    }


@pytest.fixture(scope="module")
def sklearn_model():
    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(features, labels)


@pytest.mark.parametrize("kind", ["os.system", "subprocess.call", "builtins.exec", "builtins.eval"])
def test_a_malicious_pickle_is_refused_by_the_scan_and_never_runs(tmp_path, kind):
    # Given a pickle that would call a dangerous function on load
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(payloads(marker)[kind]))
    # When scanned under refuse
    result = pickle_scan.scan(str(path), "pickle")
    # Then it is dangerous, refused naming the import, and nothing ran
    assert result.dangerous and result.dangerous_imports
    with pytest.raises(pickle_scan.PickleRefused, match="can run arbitrary code"):
        pickle_scan.enforce(result, "refuse")
    # And the guarded loader refuses it too, before the import is used
    with pytest.raises(pickle_scan.PickleRefused):
        pickle_scan.load_pickle_guarded(str(path), "refuse")
    assert not marker.exists()


def test_the_test_payload_really_runs_when_unpickled_without_the_guard(tmp_path):
    # Given the os.system payload / When a separate process unpickles it plainly
    marker = tmp_path / "ran"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(payloads(marker)["os.system"]))
    subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"], check=True)
    # Then the marker exists: the refusal above is what keeps it from running
    assert marker.exists()


def test_warn_mode_reports_the_same_findings_and_does_not_refuse(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(payloads(tmp_path / "pwned")["os.system"]))
    result = pickle_scan.scan(str(path), "pickle")
    pickle_scan.enforce(result, "warn")  # no exception
    assert result.as_json()["dangerous_imports"] == result.dangerous_imports != []


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_sklearn_models_as_joblib_files_pass_and_load_guarded(tmp_path, sklearn_model, compress):
    # Given a scikit-learn model saved with joblib (uncompressed or compressed)
    path = tmp_path / "model.joblib"
    joblib.dump(sklearn_model, path, compress=compress)
    # When scanned / Then nothing dangerous; sklearn's classes are only "suspicious" (logged)
    result = pickle_scan.scan(str(path), "joblib")
    assert not result.dangerous
    assert "sklearn.linear_model._logistic.LogisticRegression" in result.as_json()["suspicious_imports"]
    pickle_scan.enforce(result, "refuse")
    # And the guarded joblib load returns a working model
    found = []
    loaded = pickle_scan.load_joblib_guarded(str(path), "refuse", found.append)
    assert (loaded.predict(load_iris().data[:5]) == sklearn_model.predict(load_iris().data[:5])).all()
    assert all(finding.level == "suspicious" for finding in found)


def test_a_plain_sklearn_pickle_passes_completely(tmp_path, sklearn_model):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(sklearn_model, protocol=5))
    result = pickle_scan.scan(str(path), "pickle")
    assert (result.dangerous, result.complete) == (False, True)
    assert isinstance(pickle_scan.load_pickle_guarded(str(path), "refuse"), LogisticRegression)


def test_a_compressed_joblib_payload_is_found_after_decompression(tmp_path):
    # Given a compressed joblib file whose pickle imports os.system (picklescan alone sees only zlib bytes)
    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump({"evil": payloads(marker)["os.system"]}, path, compress=3)
    # When scanned / Then the import is found and refused
    result = pickle_scan.scan(str(path), "joblib")
    assert result.dangerous
    assert any("decompressed (zlib)" in note for note in result.notes)
    assert not marker.exists()


def test_a_payload_hidden_after_a_joblib_array_escapes_the_scan_but_not_the_guarded_load(tmp_path):
    # Given a joblib file with a numpy array first, then the payload (the scan's documented limit)
    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": np.arange(1000), "evil": payloads(marker)["os.system"]}, path)
    # When scanned / Then the scan says it stopped at the array (incomplete), without the import
    result = pickle_scan.scan(str(path), "joblib")
    assert not result.complete and not result.dangerous
    assert any("first numpy array" in note for note in result.notes)
    # And when loaded guarded / Then the import is refused when resolved, and nothing ran
    with pytest.raises(pickle_scan.PickleRefused, match="posix.system|os.system"):
        pickle_scan.load_joblib_guarded(str(path), "refuse")
    assert not marker.exists()


def test_a_payload_inside_a_joblib_object_array_is_refused_by_the_guarded_load(tmp_path):
    # Given an object-dtype array holding the payload (joblib pickles it as a nested stream)
    marker = tmp_path / "pwned"
    array = np.empty(2, dtype=object)
    array[0], array[1] = 1, payloads(marker)["builtins.exec"]
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": np.arange(10), "objects": array}, path)
    # When loaded guarded / Then refused, nothing ran
    with pytest.raises(pickle_scan.PickleRefused, match="builtins.exec"):
        pickle_scan.load_joblib_guarded(str(path), "refuse")
    assert not marker.exists()


def test_bytes_that_are_not_a_pickle_are_refused_not_passed(tmp_path):
    # Given a file the scanner cannot read as a pickle (picklescan's public API would report it clean)
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x05\xff\xfe garbage")
    # Then the scan fails closed
    result = pickle_scan.scan(str(path), "pickle")
    assert result.dangerous and not result.dangerous_imports
    with pytest.raises(pickle_scan.PickleRefused, match="could not be scanned"):
        pickle_scan.enforce(result, "refuse")


def test_skops_files_are_not_pickles_and_are_not_scanned(tmp_path):
    result = pickle_scan.scan(str(tmp_path / "unused"), "skops")
    assert (result.dangerous, result.complete, result.findings) == (False, True, ())


@pytest.mark.parametrize(("value", "mode"), [(None, "refuse"), ("", "refuse"), ("WARN", "warn"), ("refuse", "refuse")])
def test_the_mode_defaults_to_refuse(value, mode):
    env = {} if value is None else {"MODEL_PICKLE_SCAN": value}
    assert pickle_scan.mode_from_env(env) == mode


def test_an_unknown_mode_is_a_config_error_naming_the_variable():
    with pytest.raises(ConfigError, match="MODEL_PICKLE_SCAN 'off' is not one of refuse, warn"):
        pickle_scan.mode_from_env({"MODEL_PICKLE_SCAN": "off"})
