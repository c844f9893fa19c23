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
6. What the stack must write to disk before it answers (``vidmod.emulator.persistence``): StartExecution,
   StopExecution and SendTask* call ``Listeners`` before their answer leaves, and every history event is
   passed to ``on_history_event`` as the engine adds it.
7. Speed: the engine parses the whole ASL definition with antlr4 at CreateStateMachine and again for every
   execution (half a second of CPU for ours, under the GIL), and every JSONPath on every use. The parse is kept
   per definition (each execution runs a deep copy of the program, 30 ms); parsed JSONPaths are cached.
8. DescribeMapRun looks through every execution's worker and ListMapRuns through the execution's, but a
   worker has no environment until its thread starts (an execution just started, or one waiting for its
   worker on a busy machine): moto then answers 500 (AttributeError). Such an execution has no map run yet.
9. Step Functions' own integration (``arn:aws:states:::states:startExecution``, the moderation starting its
   audit): the ASL names the parameters as the API reference does (``StateMachineArn``, ``Name``, ``Input``) and
   moto hands them to boto3 as they are (which wants ``stateMachineArn``: KeyError → States.Runtime); the answer
   reaches the state as AWS gives it, ``{"ExecutionArn", "StartDate"}`` (epoch milliseconds), not boto3's shape.
``tests/emulator/test_moto_patches.py`` fails loudly if a moto upgrade changes any of the patched internals.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version

import moto
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.settings import moto_server_port
from moto.stepfunctions.exceptions import ResourceNotFound
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
    ResourceEvalS3 as ItemReaderS3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3 import (
    ResourceEvalS3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from vidmod.emulator import lambda_service
from vidmod_contracts.times import iso_millis

MOTO_VERSION = "5.2.5"
if version("moto") != MOTO_VERSION:  # pragma: no cover - the guard itself
    raise ImportError(f"{__name__} patches moto {MOTO_VERSION} internals; found moto {moto.__version__}")


SDK_SERVICE_NAMES = {"sagemakera2iruntime": "sagemaker-a2i-runtime"}  # ASL aws-sdk name → boto3 name


def _ignore(*_args) -> None:
    return None


@dataclass
class Listeners:
    """What the stack hears from the engine; each call happens before the API call it reports answers."""

    on_execution_end: Callable[[object], None] = _ignore  # execution (moto's), once it has ended
    on_execution_start: Callable[[object], None] = _ignore  # execution, started (or found by name and input)
    on_execution_stop: Callable[[object], None] = _ignore  # execution, StopExecution accepted
    on_history_event: Callable[[str, datetime, dict], None] = _ignore  # execution ARN, start time, event
    on_callback: Callable[[str, str], None] = _ignore  # operation, task token: SendTask* accepted


LISTENERS = Listeners()


def _invoke_lambda(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
    payload = json.loads(event) if isinstance(event, str | bytes) and event else (event or {})
    result, errored, logs = lambda_service.invoke_by_name(self.function_name, payload)
    return json.dumps(result), errored, logs


_PARSED: dict[str, tuple] = {}  # ASL definition → (program, parse tree): parsed once, never run itself
_PARSED_LOCK = threading.Lock()
_original_parse = AmazonStateLanguageParser.parse
_original_entrypoint = execution_worker.ExecutionWorker._get_evaluation_entrypoint


def _parse_once(definition: str) -> tuple:
    """AmazonStateLanguageParser.parse, once per definition (CreateStateMachine, then every execution)."""
    with _PARSED_LOCK:
        parsed = _PARSED.get(definition)
        if parsed is None:
            parsed = _PARSED[definition] = _original_parse(definition)  # a definition that fails is not kept
    return parsed


def _evaluation_entrypoint(self):
    """Each execution runs its own copy of the parsed program (its states keep per-execution values)."""
    return copy.deepcopy(_parse_once(self._evaluation_details.state_machine_details.definition)[0])


_original_environment = execution_worker.ExecutionWorker._get_evaluation_environment


def _evaluation_environment(self):
    environment = _original_environment(self)
    execution = environment.states.context_object.context_object_data["Execution"]
    start = execution.get("StartTime")
    if start is not None and not isinstance(start, str):
        execution["StartTime"] = iso_millis(start)
        _stamp_execution_started(environment.event_manager, start)
        _report_history(environment.event_manager, execution["Id"], start)
    return environment


class _ReportingList(list):
    """The engine's history list: every event appended is also handed to ``on_history_event``."""

    def __init__(self, events, report: Callable[[dict], None]):
        super().__init__(events)
        self._report = report

    def append(self, event) -> None:
        super().append(event)
        self._report(event)

    def __deepcopy__(self, memo: dict) -> list:
        """GetExecutionHistory deep-copies the list: a plain list, or every event would be reported again."""
        return copy.deepcopy(list(self), memo)

    def __copy__(self) -> list:
        return list(self)


def _report_history(event_manager, execution_arn: str, start: datetime) -> None:
    event_manager._history_event_list = _ReportingList(
        event_manager._history_event_list, lambda event: LISTENERS.on_history_event(execution_arn, start, event)
    )


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
    LISTENERS.on_execution_end(self.execution)


_ORIGINAL_BACKEND = {
    name: getattr(StepFunctionsParserBackend, name)
    for name in ("start_execution", "stop_execution", "send_task_success", "send_task_failure", "send_task_heartbeat")
}


def _start_execution(self, *args, **kwargs):
    execution = _ORIGINAL_BACKEND["start_execution"](self, *args, **kwargs)
    LISTENERS.on_execution_start(execution)
    return execution


def _stop_execution(self, *args, **kwargs):
    """As in AWS, a stop also ends a task waiting on a token without heartbeats (moto's engine would wait on
    until the token's timeout): its waits are interrupted, so the execution ends ABORTED now."""
    execution = _ORIGINAL_BACKEND["stop_execution"](self, *args, **kwargs)
    LISTENERS.on_execution_stop(execution)
    environment = getattr(getattr(execution, "exec_worker", None), "env", None)
    if environment is not None:
        for endpoint in list(environment.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()
    return execution


def _callback(operation: str):
    original = _ORIGINAL_BACKEND[operation]

    def accepted(self, task_token, *args, **kwargs):
        result = original(self, task_token, *args, **kwargs)  # raises when the token is unknown or gone
        LISTENERS.on_callback(operation, task_token)
        return result

    return accepted


_ENGINE_CLIENT_MODULES = (  # every engine module that imports boto_client_for
    "state_map.result_writer.resource_eval.resource_eval_s3",
    "state_map.item_reader.eval.resource_eval_s3",
    "state_task.lambda_eval_utils",
    "state_task.service.state_task_service_aws_sdk",
    "state_task.service.state_task_service_dynamodb",
    "state_task.service.state_task_service_events",
    "state_task.service.state_task_service_sfn",
    "state_task.service.state_task_service_sqs",
    "state_task.service.state_task_service_sns",
)


@functools.lru_cache(maxsize=256)
def _client(region: str, service: str, port: int):
    return boto_client.boto_client_for(region=region, service=service)


def _engine_client(region: str, service: str, state_credentials=None):
    """moto's engine builds a new boto3 client for every task it runs (~10 ms of CPU each, on every state of
    every execution); clients are thread-safe and ignore the credentials here, so one is kept per service,
    region and endpoint port (several stacks may run in one process, one after another)."""
    return _client(region, service, moto_server_port())


def _write_map_results(env, resource_runtime_part, state_credentials) -> None:
    """A Distributed Map's ResultWriter as AWS writes it: each item's result in ``SUCCEEDED_0.json`` (a JSON
    array of {"Output", "Status", …}) listed by ``manifest.json`` — moto writes an empty manifest only, and
    `vidmod backfill` reads its summary from these files in AWS and locally alike."""
    parameters, outputs = env.stack.pop(), env.stack.pop()
    s3 = ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
    record = env.map_run_record_pool_manager.get_all().pop()
    prefix = parameters.get("Prefix", "")
    prefix = f"{prefix}/" if prefix and not prefix.endswith("/") else prefix
    folder = f"{prefix}{record.map_run_arn.split(':')[-1]}/"
    results = [
        {"ExecutionArn": f"{record.map_run_arn}:{index}", "Output": json.dumps(output), "Status": "SUCCEEDED"}
        for index, output in enumerate(outputs or [])
    ]
    files = []
    if results:
        body = json.dumps(results).encode()
        s3.put_object(Bucket=parameters["Bucket"], Key=f"{folder}SUCCEEDED_0.json", Body=body)
        files.append({"Key": f"{folder}SUCCEEDED_0.json", "Size": len(body)})
    manifest = {
        "DestinationBucket": parameters["Bucket"],
        "MapRunArn": record.map_run_arn,
        "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": files},
    }
    s3.put_object(Bucket=parameters["Bucket"], Key=f"{folder}manifest.json", Body=json.dumps(manifest).encode())
    env.stack.append(
        {
            "MapRunArn": record.map_run_arn,
            "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": f"{folder}manifest.json"},
        }
    )


def _list_every_object(env, resource_runtime_part, state_credentials) -> None:
    """A Distributed Map's listObjectsV2 ItemReader as AWS runs it: every page (moto reads the first 1,000
    keys only) and no objects → no items (moto fails on the missing ``Contents``)."""
    s3 = ItemReaderS3._get_s3_client(resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
    pages = s3.get_paginator("list_objects_v2").paginate(**env.stack.pop())
    env.stack.append([item for page in pages for item in page.get("Contents", [])])


def _map_runs(execution) -> list:
    """The execution's map run records; none while its worker has no environment yet."""
    env = getattr(getattr(execution, "exec_worker", None), "env", None)
    return [] if env is None else env.map_run_record_pool_manager.get_all()


def _describe_map_run(self, map_run_arn: str) -> dict:
    for execution in self._get_executions():
        for record in _map_runs(execution):
            if record.map_run_arn == map_run_arn:
                return record.describe()
    raise ResourceNotFound(map_run_arn)  # moto's own answers 500: its exception needs a message


def _list_map_runs(self, execution_arn: str) -> dict:
    execution = self.describe_execution(execution_arn=execution_arn)
    return {"mapRuns": [record.list_item() for record in _map_runs(execution)]}


_ORIGINAL_SFN_TASK = StateTaskServiceSfn._eval_service_task


def _sfn_service_task(self, env, resource_runtime_part, normalised_parameters: dict, state_credentials) -> None:
    """``states:startExecution`` (and the other Step Functions actions): ASL's parameter names → boto3's, and
    boto3's answer → the one a state gets in AWS (``ExecutionArn``, ``StartDate`` in epoch milliseconds)."""
    client = _engine_client(resource_runtime_part.region, "stepfunctions")
    operation = client.meta.service_model.operation_model(
        client.meta.method_to_api_mapping[self._get_boto_service_action()]
    )
    members = {name.lower(): name for name in operation.input_shape.members}
    for key in list(normalised_parameters):
        if key not in members.values() and key.lower() in members:
            normalised_parameters[members[key.lower()]] = normalised_parameters.pop(key)
    _ORIGINAL_SFN_TASK(self, env, resource_runtime_part, normalised_parameters, state_credentials)
    response = env.stack.pop()
    env.stack.append(
        {
            name[:1].upper() + name[1:]: int(value.timestamp() * 1000) if isinstance(value, datetime) else value
            for name, value in response.items()
        }
    )


def install(endpoint_url: str, listeners: Listeners | None = None) -> None:
    """Apply the patches (idempotent) and point the engine's aws-sdk calls at the local endpoint."""
    global LISTENERS
    LISTENERS = listeners or Listeners()
    os.environ["MOTO_PORT"] = endpoint_url.rsplit(":", 1)[-1]
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    LambdaFunction._invoke_lambda = _invoke_lambda
    execution_worker.ExecutionWorker._get_evaluation_environment = _evaluation_environment
    execution_worker.ExecutionWorker._get_evaluation_entrypoint = _evaluation_entrypoint
    AmazonStateLanguageParser.parse = staticmethod(_parse_once)
    for module in (json_path, result_path):  # jsonpath_ng's parse, cached (expressions are reusable)
        if not hasattr(module.parse, "cache_info"):
            module.parse = functools.lru_cache(maxsize=4096)(module.parse)
    state_module.StateData = _state_data
    BaseExecutionWorkerCommunication.terminated = _terminated
    StepFunctionsParserBackend.start_execution = _start_execution
    StepFunctionsParserBackend.stop_execution = _stop_execution
    StepFunctionsParserBackend.describe_map_run = _describe_map_run
    StepFunctionsParserBackend.list_map_runs = _list_map_runs
    for operation in ("send_task_success", "send_task_failure", "send_task_heartbeat"):
        setattr(StepFunctionsParserBackend, operation, _callback(operation))
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES.update(SDK_SERVICE_NAMES)
    StateTaskServiceSfn._eval_service_task = _sfn_service_task
    ResourceEvalS3._handle_put_object = staticmethod(_write_map_results)
    ItemReaderS3._handle_list_objects_v2 = staticmethod(_list_every_object)
    for name in _ENGINE_CLIENT_MODULES:
        module = importlib.import_module(f"moto.stepfunctions.parser.asl.component.state.exec.{name}")
        module.boto_client_for = _engine_client
