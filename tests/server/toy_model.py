"""Tiny models the server tests pickle. This module must stay importable by the server process:
unpickling looks the classes up by module name."""

from __future__ import annotations

import threading
import time
from pathlib import Path


class LinearModel:
    """predict: one number per instance, sum(w * x) + bias."""

    def __init__(self, weights: list[float], bias: float = 0.0):
        self.weights, self.bias = weights, bias

    def predict(self, instances):
        return [sum(w * x for w, x in zip(self.weights, row, strict=False)) + self.bias for row in instances]


class ArrayLike:
    """Stands in for a numpy array: the server must call .tolist(), never import numpy."""

    def __init__(self, values):
        self.values = values

    def tolist(self):
        return list(self.values)


class ArrayModel:
    def predict(self, instances):
        return ArrayLike([ArrayLike([sum(row), len(row)]) for row in instances])


class FailingModel:
    SECRET = "database password is hunter2"

    def predict(self, instances):
        raise RuntimeError(self.SECRET)


class WrongCountModel:
    def predict(self, instances):
        return [0.0] * (len(instances) + 1)


class NotAModel:
    predict = "not callable"


# In-process only: a predict() that holds until the test releases it.
GATE_ENTERED = threading.Event()
GATE_RELEASE = threading.Event()


class GatedModel:
    def predict(self, instances):
        GATE_ENTERED.set()
        if not GATE_RELEASE.wait(timeout=10):
            raise TimeoutError("the test never released the gate")
        return [len(row) for row in instances]


class SlowModel:
    """For a server in another process: predict() creates ``marker`` (so the test knows it is
    running), then takes ``delay`` seconds."""

    def __init__(self, delay: float, marker: str):
        self.delay, self.marker = delay, marker

    def predict(self, instances):
        Path(self.marker).touch()
        time.sleep(self.delay)
        return [sum(row) for row in instances]


def _linear_once_released(release: str, weights: list[float]) -> LinearModel:
    deadline = time.monotonic() + 30
    while not Path(release).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never released the load")
        time.sleep(0.02)
    return LinearModel(weights)


class SlowToLoad:
    """Unpickles into a LinearModel only once the file ``release`` exists: a model load that
    takes as long as the test wants (for a server in another process)."""

    def __init__(self, release: str, weights: list[float]):
        self.release, self.weights = release, weights

    def __reduce__(self):
        return _linear_once_released, (self.release, self.weights)


class CountingModel:
    """predict: the row sums; pure-Python work of about ``loops`` iterations per call."""

    def __init__(self, loops: int = 0):
        self.loops = loops

    def predict(self, instances):
        total = 0
        for i in range(self.loops):
            total += i
        return [sum(row) for row in instances]
