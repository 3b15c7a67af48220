"""The models `make demo` uploads: a good one and one whose ``predict`` raises.

The demo pickles instances of these classes; the real model server, run for one step of the
demo, unpickles them (it runs with this repository on its PYTHONPATH, so it can import this
module). aurelius' own code only pickles them: a pickle runs code when it is loaded.
"""

from __future__ import annotations


class DemoModel:
    """A linear model: one weighted sum per row, a finite number for any row of numbers."""

    def __init__(self, version: int):
        self.version = version
        self.weights = (0.5 * version, 1.0)

    def predict(self, rows: list[list[float]]) -> list[float]:
        return [sum(w * x for w, x in zip(self.weights, row, strict=False)) for row in rows]


class BrokenModel:
    """A model that loads fine and fails on real input (the smoke test's rows)."""

    def __init__(self, version: int):
        self.version = version

    def predict(self, rows: list[list[float]]) -> list[float]:
        raise ValueError(f"demo model v{self.version} was trained on 3 features, got {len(rows[0]) if rows else 0}")
