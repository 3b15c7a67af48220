"""Small shared test helpers: sample events and handler modules."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
EVENTS = TESTS / "events"


def load_event(name: str) -> dict:
    """A fresh copy of tests/events/<name>.json (tests may mutate it)."""
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8")))


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py under a unique name (both handlers are called app)."""
    path = REPO / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"handler_{function}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def load_script(relative: str) -> ModuleType:
    """Import a management script (its file name has hyphens) as a module."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


class LambdaContext:
    """The attributes Lambda's context object has that powertools reads."""

    function_name = "aurelius-test-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:aurelius-test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/aurelius-test-function"
    log_stream_name = "2026/11/26/[$LATEST]0"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000
