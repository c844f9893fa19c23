"""What moto's Step Functions engine does not do, added in one place (pinned to moto 5.2.5).

moto runs ASL for real (``execute_state_machine``), but:
1. Lambda invocation needs Docker: ``LambdaFunction._invoke_lambda`` is replaced by a subprocess running
   the real handler from ``functions/`` (``vidmod.local.lambda_runner``) with the template's environment,
   the local endpoint, the function's timeout, and Lambda's error shape.
2. The context object's ``$$.Execution.StartTime`` is a ``datetime`` (AWS gives an ISO-8601 string), which
   breaks any state that puts it in a payload, and ``$$.State.EnteredTime`` has microseconds and ``+00:00``:
   both become the string AWS gives (milliseconds, ``Z``), so decision records look the same in both places.
   The ExecutionStarted history event is stamped with the execution's start time, as in AWS (moto stamps it
   when its worker thread gets there, up to a second later on a busy machine).
3. The engine passes the ASL service name straight to boto3; Step Functions' names that differ from boto3's
   (``sagemakera2iruntime`` → ``sagemaker-a2i-runtime``) are added to its override table.
4. In server mode the engine sends every ``aws-sdk:*`` call to ``localhost:$MOTO_PORT``: the gateway sets
   MOTO_PORT to itself so Rekognition and A2I calls reach the local implementations.
5. Step Functions sends "Step Functions Execution Status Change" to EventBridge when an execution ends; moto
   does not. ``BaseExecutionWorkerCommunication.terminated`` now also calls ``install``'s ``on_execution_end``
   with the execution, and the stack publishes the event AWS would send.
``tests/local/test_engine.py`` fails loudly if a moto upgrade changes any of the patched internals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version

import moto
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

MOTO_VERSION = "5.2.5"
if version("moto") != MOTO_VERSION:  # pragma: no cover - the guard itself
    raise ImportError(f"vidmod.local.engine patches moto {MOTO_VERSION} internals; found moto {moto.__version__}")


@dataclass(frozen=True)
class LocalFunction:
    name: str
    arn: str
    code_dir: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]


REGISTRY: dict[str, LocalFunction] = {}
SDK_SERVICE_NAMES = {"sagemakera2iruntime": "sagemaker-a2i-runtime"}  # ASL aws-sdk name → boto3 name
SETTINGS: dict = {"endpoint_url": "", "region": "us-east-1", "on_execution_end": None}


def register(function: LocalFunction) -> None:
    REGISTRY[function.name] = function


def invoke(function: LocalFunction, event: object) -> tuple[object, bool, str]:
    """Run the handler in a fresh subprocess; returns (result or Lambda error dict, errored, logs)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    env.update(function.environment)
    env.update(
        {
            "AWS_ENDPOINT_URL": SETTINGS["endpoint_url"],
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": SETTINGS["region"],
            "AWS_DEFAULT_REGION": SETTINGS["region"],
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
            "VIDMOD_FUNCTION_ARN": function.arn,
            "POWERTOOLS_DEV": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "vidmod.local.lambda_runner", function.code_dir, function.handler],
            input=json.dumps(event),
            capture_output=True,
            text=True,
            env=env,
            timeout=function.timeout,
        )
    except subprocess.TimeoutExpired as expired:
        logs = (expired.stderr or b"").decode() if isinstance(expired.stderr, bytes) else (expired.stderr or "")
        return (
            {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {function.timeout:.2f} seconds"},
            True,
            logs,
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return (
            {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"handler process exited with {done.returncode}: {done.stderr[-2000:]}",
            },
            True,
            done.stderr,
        )
    outcome = json.loads(lines[-1])
    if outcome["ok"]:
        return outcome["result"], False, done.stderr
    return outcome["error"], True, done.stderr


def _invoke_lambda(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
    function = REGISTRY.get(self.function_name)
    if function is None:
        error = {"errorType": "ResourceNotFoundException", "errorMessage": f"{self.function_name} is not local code"}
        return json.dumps(error), True, ""
    payload = json.loads(event) if isinstance(event, str | bytes) and event else (event or {})
    result, errored, logs = invoke(function, payload)
    return json.dumps(result), errored, logs


_original_environment = execution_worker.ExecutionWorker._get_evaluation_environment


def aws_timestamp(moment: datetime | str) -> str:
    """The context object's timestamp format in AWS: ``2026-11-25T11:31:27.357Z``."""
    moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _evaluation_environment(self):
    environment = _original_environment(self)
    execution = environment.states.context_object.context_object_data["Execution"]
    start = execution.get("StartTime")
    if start is not None and not isinstance(start, str):
        execution["StartTime"] = aws_timestamp(start)
        _stamp_execution_started(environment.event_manager, start)
    return environment


def _stamp_execution_started(event_manager, start: datetime) -> None:
    add_event = event_manager.add_event

    def add_event_stamped(*args, **kwargs):
        if kwargs.get("event_type") == HistoryEventType.ExecutionStarted and kwargs.get("timestamp") is None:
            kwargs["timestamp"] = start
        return add_event(*args, **kwargs)

    event_manager.add_event = add_event_stamped


def _state_data(EnteredTime: str, Name: str) -> dict:  # called as moto calls StateData(EnteredTime=, Name=)
    return {"EnteredTime": aws_timestamp(EnteredTime), "Name": Name}


_original_terminated = BaseExecutionWorkerCommunication.terminated


def _terminated(self) -> None:
    _original_terminated(self)
    listener = SETTINGS["on_execution_end"]
    if listener is not None:
        listener(self.execution)


def install(
    endpoint_url: str, region: str = "us-east-1", on_execution_end: Callable[[object], None] | None = None
) -> None:
    """Apply the patches (idempotent) and point engine and handlers at the local endpoint."""
    SETTINGS.update(endpoint_url=endpoint_url, region=region, on_execution_end=on_execution_end)
    os.environ["MOTO_PORT"] = endpoint_url.rsplit(":", 1)[-1]
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    LambdaFunction._invoke_lambda = _invoke_lambda
    execution_worker.ExecutionWorker._get_evaluation_environment = _evaluation_environment
    state_module.StateData = _state_data
    BaseExecutionWorkerCommunication.terminated = _terminated
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES.update(SDK_SERVICE_NAMES)
