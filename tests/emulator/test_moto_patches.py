"""The engine patches and the template reader: fail loudly if a moto upgrade moves what they patch."""

from __future__ import annotations

import dataclasses
import inspect
from importlib.metadata import version
from pathlib import Path

import pytest

from vidmod.emulator import lambda_service
from vidmod.emulator import moto_patches as engine
from vidmod.emulator.template import FunctionSpec, Resolver, TemplateError, read_resources

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/x"
ECHO = FunctionSpec(
    "Echo",
    "echo",
    "arn:aws:lambda:us-east-1:123456789012:function:echo",
    FIXTURES / "echo",
    "app.lambda_handler",
    5,
    128,
    {"GREETING": "hello"},
)


def test_moto_is_the_pinned_version_and_the_patched_internals_still_exist():
    assert version("moto") == engine.MOTO_VERSION
    from moto.awslambda.models import LambdaFunction
    from moto.s3 import notifications
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    assert list(inspect.signature(LambdaFunction._invoke_lambda).parameters) == ["self", "event"]
    assert "_get_evaluation_environment" in vars(ExecutionWorker)
    from moto.stepfunctions.parser.asl.component.state import state

    assert "StateData" in vars(state) and 'context_object_data["State"] = StateData(' in inspect.getsource(state)
    source = inspect.getsource(ExecutionWorker._execution_logic)
    assert "self.env.event_manager.add_event(" in source and "event_type=HistoryEventType.ExecutionStarted" in source
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    assert isinstance(StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES, dict)
    assert "moto_server_port()" in inspect.getsource(boto_client.boto_client_for)
    assert list(inspect.signature(notifications.send_event).parameters) == ["account_id", "event_name", "bucket", "key"]


def test_the_moto_internals_persistence_relies_on_still_exist():
    from moto.s3 import models as s3_models
    from moto.s3.models import FakeDeleteMarker, FakeKey, FakeMultipart, s3_backends
    from moto.s3.utils import HAS_CRT, _VersionedKeyStore  # noqa: F401 - imported by s3_store
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.asl.utils import json_path
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    # persistence.executions_store rebuilds finished executions with this constructor.
    assert list(inspect.signature(Execution.__init__).parameters) == [
        "self",
        "name",
        "sm_type",
        "role_arn",
        "exec_arn",
        "account_id",
        "region_name",
        "state_machine",
        "start_date",
        "cloud_watch_logging_session",
        "activity_store",
        "input_data",
        "trace_header",
    ]
    assert "env.event_manager.get_event_history()" in inspect.getsource(Execution.to_history_output)
    # moto_patches reports history events from the engine's list and keeps parsed programs per definition.
    assert "self._history_event_list.append(history_event)" in inspect.getsource(EventManager._publish_history_event)
    assert "AmazonStateLanguageParser.parse(" in inspect.getsource(engine._original_entrypoint)
    assert "_get_evaluation_entrypoint" in vars(ExecutionWorker)
    assert "parse(path)" in inspect.getsource(json_path.extract_json) and callable(result_path.parse)
    for name in ("start_execution", "stop_execution", "send_task_success", "send_task_failure", "send_task_heartbeat"):
        assert callable(getattr(StepFunctionsParserBackend, name))
    # persistence.s3_store: bodies through moto's `tempfile` name, multipart completion, key attributes.
    assert "tempfile.SpooledTemporaryFile(" in inspect.getsource(FakeKey.__init__)
    assert hasattr(s3_models, "tempfile") and hasattr(s3_models, "MultipartChecksumBuilder")
    assert list(inspect.signature(FakeMultipart.complete).parameters) == ["self", "body"]
    assert "multipart.complete(body)" in inspect.getsource(s3_backends["123456789012"]["aws"].complete_multipart_upload)
    assert {"_value_buffer", "lock", "_metadata", "_storage_class", "multipart"} <= set(
        vars(FakeKey("k", b"", "123456789012", "us-east-1"))
    )
    assert "self.key = key" in inspect.getsource(FakeDeleteMarker.__init__)
    assert "copy.deepcopy(version_key)" in inspect.getsource(s3_backends["123456789012"]["aws"].list_object_versions)


@pytest.fixture
def endpoint_one():
    """Functions pointed at http://127.0.0.1:1 (fresh environments: a warm one keeps the endpoint it started
    with), then back to whatever endpoint a stack in this process had configured."""
    previous = dict(lambda_service.SETTINGS)
    lambda_service.configure("http://127.0.0.1:1", "us-east-1")
    yield
    lambda_service.configure(previous["endpoint_url"], previous["region"], previous["log_dir"])


def test_handler_runs_with_its_environment_and_a_lambda_context(endpoint_one):
    result, errored, logs = lambda_service.invoke(ECHO, {})
    assert not errored
    assert result == {"greeting": "hello", "function": "echo", "remaining": True, "endpoint": "http://127.0.0.1:1"}
    assert "a log line" in logs


def test_handler_errors_come_back_in_lambdas_error_shape():
    result, errored, _ = lambda_service.invoke(ECHO, {"raise": "no thanks"})
    assert errored and result["errorType"] == "Refused" and result["errorMessage"] == "no thanks"
    assert result["stackTrace"]


def test_the_functions_timeout_is_enforced():
    fast = dataclasses.replace(ECHO, timeout=1)
    result, errored, _ = lambda_service.invoke(fast, {"sleep": 5})
    assert errored and result["errorType"] == "Sandbox.Timedout"


def test_template_resources_follow_the_template():
    resources = read_resources(
        ROOT,
        "t",
        {"FlowDefinitionArn": FLOW, "MinConfidence": "70"},
    )
    validate = resources.functions["ValidateInputFunction"]
    assert validate.environment["MIN_CONFIDENCE"] == "70"
    assert validate.environment["RESULTS_BUCKET"] == resources.bucket_name("ResultsBucket")
    assert validate.code_dir == ROOT / "functions" / "validate_input"
    assert "${" not in resources.state_machine["definition"]
    assert resources.state_machine["arn"] in resources.functions["SubmitFunction"].environment["STATE_MACHINE_ARN"]
    assert {r["function"] for r in resources.rules} == {
        resources.functions["SubmitFunction"].name,
        resources.functions["CompleteHumanReviewFunction"].name,
        resources.functions["ArchiveExecutionFunction"].name,
        "t-admission",  # named in the template (FunctionName): the state machine invokes it by a built ARN
    }
    assert "arn:aws:lambda:us-east-1:123456789012:function:t-admission" in resources.state_machine["definition"]
    assert resources.state_machines["BackfillStateMachine"]["arn"].endswith(":stateMachine:t-backfill")
    extensions = resources.functions["SubmitFunction"].environment["VIDEO_EXTENSIONS"]  # !FindInMap
    assert extensions == validate.environment["VIDEO_EXTENSIONS"] == ".mp4,.mov,.avi,.m4v"
    assert resources.buckets["MediaBucket"] == {
        "name": "t-mediabucket",
        "versioned": True,
        "eventbridge": True,
        "objectLock": None,
    }
    assert resources.buckets["AuditBucket"]["objectLock"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 365}},
    }


def test_unknown_overrides_and_unsupported_intrinsics_are_refused():
    with pytest.raises(TemplateError, match="unknown parameter overrides"):
        read_resources(ROOT, "t", {"FlowDefinitionArn": "x", "Nope": "1"})
    resolver = Resolver({"Resources": {}, "Parameters": {}}, "t", {})
    with pytest.raises(TemplateError, match="Fn::ImportValue"):
        resolver.resolve({"Fn::ImportValue": "x"})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"Ruleset": "strict"}, r"Ruleset='strict' must be one of \['ruleset', 'workshop'\]"),
        ({"MaxConcurrentModerationJobs": "500"}, "above its MaxValue 200"),
        ({"ReviewTimeoutSeconds": "5"}, "below its MinValue 60"),
        ({"MinConfidence": "high"}, "must be a number"),
        ({"RulesetS3Uri": "https://example.com/rules.json"}, "does not match"),
    ],
)
def test_overrides_are_checked_as_cloudformation_checks_them(override, message):
    with pytest.raises(TemplateError, match=message):
        read_resources(ROOT, "t", {"FlowDefinitionArn": FLOW} | override)


def test_event_patterns_use_the_real_matcher():
    from vidmod.emulator.event_router import EventRouter, s3_object_created_event

    resources = read_resources(ROOT, "t", {"FlowDefinitionArn": FLOW})
    router = EventRouter(lambda *_: None)
    for rule in resources.rules:
        router.add_rule(rule["name"], rule["pattern"], rule["function"])
    media = resources.bucket_name("MediaBucket")
    upload = [f for _, f in router.matching(s3_object_created_event(media, "us-east-1", "a/B.MP4", 1, "e", "v"))]
    assert upload == [resources.functions["SubmitFunction"].name]
    assert router.matching(s3_object_created_event(media, "us-east-1", "a/b.txt", 1, "e", "v")) == []
    assert router.matching(s3_object_created_event("other", "us-east-1", "a.mp4", 1, "e", "v")) == []
    router.close()


def test_map_runs_are_found_while_another_executions_worker_has_not_started():
    """A backfill's progress asks DescribeMapRun while the moderation executions it starts are still waiting for
    their worker thread (no environment yet): moto answered 500 there; the patched calls skip such executions."""
    from types import SimpleNamespace

    from moto.stepfunctions.exceptions import ResourceNotFound
    from moto.stepfunctions.parser import models

    # moto's own code (the module's text: the class may already carry the patch when another test started a stack)
    source = inspect.getsource(models)
    assert "def describe_map_run(" in source and "def list_map_runs(" in source
    assert "execution.exec_worker.env.map_run_record_pool_manager" in source
    run = SimpleNamespace(map_run_arn="arn:map-run", describe=lambda: {"itemCounts": {"total": 3}})
    run.list_item = lambda: {"mapRunArn": run.map_run_arn}
    pool = SimpleNamespace(get_all=lambda: [run])
    backfill = SimpleNamespace(exec_worker=SimpleNamespace(env=SimpleNamespace(map_run_record_pool_manager=pool)))
    waiting = SimpleNamespace(exec_worker=SimpleNamespace(env=None))
    executions = {"arn:waiting": waiting, "arn:backfill": backfill}
    backend = SimpleNamespace(
        _get_executions=lambda: list(executions.values()),
        describe_execution=lambda execution_arn: executions[execution_arn],
    )

    assert engine._describe_map_run(backend, "arn:map-run") == {"itemCounts": {"total": 3}}
    assert engine._list_map_runs(backend, "arn:waiting") == {"mapRuns": []}
    assert engine._list_map_runs(backend, "arn:backfill") == {"mapRuns": [{"mapRunArn": "arn:map-run"}]}
    with pytest.raises(ResourceNotFound):
        engine._describe_map_run(backend, "arn:other")
