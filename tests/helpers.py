"""Small shared test helpers: sample events and handler modules."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType

from aurelius.sandbox.local_lambda import Context, import_handler_file

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
EVENTS = TESTS / "events"


def load_event(name: str) -> dict:
    """A fresh copy of tests/events/<name>.json (tests may mutate it)."""
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8")))


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py under a unique name (both handlers are called app)."""
    return import_handler_file(REPO / "functions" / function / "app.py", f"handler_{function}")


def load_script(relative: str) -> ModuleType:
    """Import a management script (its file name has hyphens) as a module."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


# A Lambda context object for handler calls (the sandbox's, so there is one definition).
LambdaContext = Context
