"""What moto's Step Functions engine does not do, added in one place (pinned to moto 5.2.5).

moto runs ASL for real (``execute_state_machine``), but:
1. Lambda invocation needs Docker: ``LambdaFunction._invoke_lambda`` is replaced by the local Lambda
   (``vidmod.emulator.lambda_service``), which runs the real handler from ``functions/`` with its layers, the
   template's environment, the local endpoint, the function's timeout, and Lambda's error shape.
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
``tests/emulator/test_moto_patches.py`` fails loudly if a moto upgrade changes any of the patched internals.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
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

from vidmod.emulator import lambda_service
from vidmod_contracts.times import iso_millis

MOTO_VERSION = "5.2.5"
if version("moto") != MOTO_VERSION:  # pragma: no cover - the guard itself
    raise ImportError(f"{__name__} patches moto {MOTO_VERSION} internals; found moto {moto.__version__}")


SDK_SERVICE_NAMES = {"sagemakera2iruntime": "sagemaker-a2i-runtime"}  # ASL aws-sdk name → boto3 name
SETTINGS: dict = {"on_execution_end": None}


def _invoke_lambda(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
    payload = json.loads(event) if isinstance(event, str | bytes) and event else (event or {})
    result, errored, logs = lambda_service.invoke_by_name(self.function_name, payload)
    return json.dumps(result), errored, logs


_original_environment = execution_worker.ExecutionWorker._get_evaluation_environment


def _evaluation_environment(self):
    environment = _original_environment(self)
    execution = environment.states.context_object.context_object_data["Execution"]
    start = execution.get("StartTime")
    if start is not None and not isinstance(start, str):
        execution["StartTime"] = iso_millis(start)
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
    return {"EnteredTime": iso_millis(EnteredTime), "Name": Name}


_original_terminated = BaseExecutionWorkerCommunication.terminated


def _terminated(self) -> None:
    _original_terminated(self)
    listener = SETTINGS["on_execution_end"]
    if listener is not None:
        listener(self.execution)


def install(endpoint_url: str, on_execution_end: Callable[[object], None] | None = None) -> None:
    """Apply the patches (idempotent) and point the engine's aws-sdk calls at the local endpoint."""
    SETTINGS.update(on_execution_end=on_execution_end)
    os.environ["MOTO_PORT"] = endpoint_url.rsplit(":", 1)[-1]
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    LambdaFunction._invoke_lambda = _invoke_lambda
    execution_worker.ExecutionWorker._get_evaluation_environment = _evaluation_environment
    state_module.StateData = _state_data
    BaseExecutionWorkerCommunication.terminated = _terminated
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES.update(SDK_SERVICE_NAMES)
