"""A small local Lambda runtime: moto's Lambda invocations run our real handlers in-process.

moto would run function code in Docker, which this machine does not have (docs/moto.md#s3-notifications-and-lambda). Instead:
- an S3 notification (moto calls ``moto.s3.notifications._invoke_awslambda``) is queued and
  delivered asynchronously after a short delay, as Lambda's asynchronous invocation does;
  a handler error is retried twice, then recorded as a failure (Lambda's on-failure record);
- a synchronous invoke (``aws lambda invoke``) runs the handler at once and returns its result.

Each function runs the handler file named by the template (CodeUri + Handler), with the
environment variables CloudFormation gave the function in moto.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

log = logging.getLogger("aurelius.sandbox.lambda")

MAX_ATTEMPTS = (
    3  # Lambda asynchronous invocation: the first try and two retries (docs/aws.md#lambda-asynchronous-invocation)
)


@dataclass
class Invocation:
    function: str
    event: dict[str, Any]
    trigger: str  # "s3" or "invoke"
    attempts: int = 0
    result: Any = None
    error: str | None = None
    finished_at: float | None = None


def import_handler_file(path: Path, module_name: str) -> ModuleType:
    """Import a handler file by path under its own module name (both handlers are app.py)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LocalFunction:
    name: str
    arn: str
    handler_file: Path
    handler_name: str
    environment: dict[str, str]
    module: ModuleType | None = None

    def load(self, log: TextIO) -> Callable[[dict, Any], Any]:
        if self.module is None:
            # Powertools reads its settings when first imported; in Lambda each function has
            # its own process, here they share one, so the first function's settings win.
            for key, value in self.environment.items():
                if key.startswith("POWERTOOLS_"):
                    os.environ.setdefault(key, value)
            module = import_handler_file(self.handler_file, f"sandbox_{self.name.replace('-', '_')}")
            from aurelius.core.lambda_runtime import Config, logger

            # The function's own environment (from the template, through moto), not ours.
            module.runtime.config = Config.from_environment(self.environment)
            logger.registered_handler.setStream(log)
            self.module = module
        return getattr(self.module, self.handler_name)


class Context:
    """The parts of Lambda's context object the handlers (powertools) read."""

    def __init__(
        self, name: str = "aurelius-local", arn: str = "arn:aws:lambda:us-east-1:123456789012:function:aurelius-local"
    ):
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = 256
        self.aws_request_id = f"local-{time.time_ns()}"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


@dataclass
class LocalLambdaRuntime:
    delivery_delay: float = 0.5
    retry_delay: float = 0.2
    # Where the handlers' JSON logs and metrics go (Lambda would send them to CloudWatch Logs).
    log: TextIO = field(default_factory=lambda: sys.stdout)
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    history: list[Invocation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[tuple[float, Invocation]] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="local-lambda", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ registry
    def register(self, function: LocalFunction) -> None:
        self.functions[function.arn] = function
        self.functions[function.name] = function

    def _find(self, name_or_arn: str) -> LocalFunction | None:
        return self.functions.get(name_or_arn) or self.functions.get(name_or_arn.split(":")[-1])

    # ------------------------------------------------------------------ invocation
    def invoke_async(self, name_or_arn: str, event: dict[str, Any], trigger: str = "s3") -> bool:
        function = self._find(name_or_arn)
        if function is None:
            log.warning("no local function for %s; event dropped", name_or_arn)
            return False
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put((time.monotonic() + self.delivery_delay, Invocation(function.name, event, trigger)))
        return True

    def invoke_sync(self, name_or_arn: str, event: dict[str, Any]) -> Invocation:
        function = self._find(name_or_arn)
        if function is None:
            raise KeyError(f"no local function {name_or_arn}")
        invocation = Invocation(function.name, event, "invoke")
        self._call(function, invocation)
        self.history.append(invocation)
        return invocation

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued event has been handled (or has used its retries)."""
        return self._idle.wait(timeout)

    def _call(self, function: LocalFunction, invocation: Invocation) -> bool:
        invocation.attempts += 1
        try:
            handler = function.load(self.log)
            with contextlib.redirect_stdout(self.log):  # powertools prints metrics (EMF) to stdout
                invocation.result = handler(invocation.event, Context(function.name, function.arn))
            invocation.error = None
            return True
        except Exception as exc:  # a handler error: Lambda would retry
            invocation.error = f"{type(exc).__name__}: {exc}"
            log.warning("%s failed (attempt %d): %s", function.name, invocation.attempts, invocation.error)
            return False
        finally:
            invocation.finished_at = time.time()

    def _run(self) -> None:
        while True:
            due, invocation = self._queue.get()
            time.sleep(max(0.0, due - time.monotonic()))
            function = self._find(invocation.function)
            done = function is not None and self._call(function, invocation)
            if not done and invocation.attempts < MAX_ATTEMPTS:
                self._queue.put((time.monotonic() + self.retry_delay, invocation))
                continue
            self.history.append(invocation)
            with self._lock:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

    # ------------------------------------------------------------------ moto wiring
    def attach_to_moto(self) -> Callable[[], None]:
        """Route moto's S3 notifications and Lambda invokes to this runtime; returns the undo."""
        import moto.s3.notifications as s3_notifications
        from moto.awslambda.models import LambdaFunction

        runtime = self

        def invoke_from_s3(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            runtime.invoke_async(fn_arn, event_body, trigger="s3")

        original_invoke_lambda = LambdaFunction._invoke_lambda

        def invoke_lambda(self_fn: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            if runtime._find(self_fn.function_arn) is None:
                return original_invoke_lambda(self_fn, event)
            payload = event if isinstance(event, dict) else json.loads(event or "{}")
            invocation = runtime.invoke_sync(self_fn.function_arn, payload)
            if invocation.error:
                return json.dumps({"errorMessage": invocation.error}), True, invocation.error
            return json.dumps(invocation.result, default=str), False, ""

        original_invoke_from_s3 = s3_notifications._invoke_awslambda
        s3_notifications._invoke_awslambda = invoke_from_s3
        LambdaFunction._invoke_lambda = invoke_lambda

        def detach() -> None:
            s3_notifications._invoke_awslambda = original_invoke_from_s3
            LambdaFunction._invoke_lambda = original_invoke_lambda

        return detach
