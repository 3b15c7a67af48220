"""Small shared test helpers: the names of environment ``local``, sample events and handler modules."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from aurelius.sandbox.local_lambda import Context, import_handler_file
from aurelius.settings import ClusterSettings, ElbSettings, ServiceSettings, load_environment

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
EVENTS = TESTS / "events"

# The names of environment `local` (the sandbox and the tests), read from the settings files the
# sandbox deploys and computed by aurelius.naming, so the tests and the sandbox cannot drift apart.
_SCRIPTS = "management-scripts/service-settings.yml"
_SERVICE = load_environment(REPO / "infra/ecs-service" / _SCRIPTS, ServiceSettings, "local")
_CLUSTER = load_environment(REPO / "infra/ecs-cluster" / _SCRIPTS, ClusterSettings, "local")
_ELB = load_environment(REPO / "infra/elb" / _SCRIPTS, ElbSettings, "local")

BUCKET = _SERVICE.settings.model.bucket  # aurelius-models-local-demo
KEY = _SERVICE.settings.model.key  # models/model.pkl
MODEL_URI = _SERVICE.settings.model.uri
SERVICE_STACK = _SERVICE.stack_name  # aurelius-service-stack-local-demo
CLUSTER = _SERVICE.settings.cluster_name  # aurelius-cluster-local-demo, the service's cluster by name
CLUSTER_STACK = _CLUSTER.stack_name  # aurelius-cluster-stack-local-demo
ELB_STACK = _ELB.stack_name  # aurelius-elb-stack-local-vm
ARTIFACTS = _ELB.settings.artifact_bucket  # aurelius-artifacts-local-demo
# Named by the convention alone, not by the code under test: samconfig.toml names the trigger
# stack (test_trigger_template.py checks it), create-image-repository.py the repository's stack.
TRIGGER_STACK = _SERVICE.namer("trigger-stack")  # aurelius-trigger-stack-local-demo
IMAGE_REPOSITORY_STACK = _SERVICE.namer("ecr-stack")  # aurelius-ecr-stack-local-demo


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


class CallLog:
    """The AWS operations the clients it watches make, in order (botocore's before-call event)."""

    def __init__(self) -> None:
        self.operations: list[str] = []

    def watch(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self._record, unique_id=f"tests-call-log-{id(self)}")
        return client

    def _record(self, model, **_: Any) -> None:
        self.operations.append(model.name)

    def before(self, operation: str) -> list[str]:
        """The operations made before the first ``operation`` (all of them if it was not made)."""
        return self.operations[: self.operations.index(operation)] if operation in self.operations else self.operations


# A Lambda context object for handler calls (the sandbox's, so there is one definition).
LambdaContext = Context


# The smallest valid service settings file (one `local` environment), for settings tests to extend.
MINIMAL_SERVICE_SETTINGS = """
environments:
  local:
    base_name: aurelius
    suffix: demo
    cluster_name: aurelius-cluster-local-demo
    network: {default_vpc: true}
    image: aurelius/model-server:0.1.0
    model: {bucket: aurelius-models-local-demo, key: models/model.pkl}
"""
