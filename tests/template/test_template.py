"""The deployable artefacts: SAM template lint/build, the ASL, and least-privilege IAM."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cfnlint.decode import decode_str

from vidmod_contracts.record_hash import NOT_STORED, VERSION_3_FIELDS

ROOT = Path(__file__).resolve().parents[2]
LOCAL_SAM = ROOT / ".venv-sam" / "bin" / "sam"
SAM = os.environ.get("SAM_CLI") or (str(LOCAL_SAM) if LOCAL_SAM.exists() else shutil.which("sam"))


@pytest.fixture(scope="module")
def template() -> dict:
    data, matches = decode_str((ROOT / "template.yaml").read_text())
    assert not matches, matches
    return data


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads((ROOT / "statemachine" / "moderation.asl.json").read_text())


def allow_statements(template: dict):
    """Every Allow statement the stack grants, with where it came from."""
    for logical_id, resource in template["Resources"].items():
        for policy in resource.get("Properties", {}).get("Policies", []) or []:
            for doc in _documents(policy):
                for statement in doc.get("Statement", []):
                    if statement.get("Effect") == "Allow":
                        yield logical_id, statement


def _documents(policy):
    if isinstance(policy, dict) and "Statement" in policy:
        yield policy
    elif isinstance(policy, dict) and "PolicyDocument" in policy:  # AWS::IAM::Role inline policies
        yield policy["PolicyDocument"]
    elif isinstance(policy, dict) and "Fn::If" in policy:
        for branch in policy["Fn::If"][1:]:
            yield from _documents(branch)


def test_no_statement_grants_wildcard_actions(template):
    assert any(logical_id == "A2IFlowDefinitionRole" for logical_id, _ in allow_statements(template))
    offenders = []
    for logical_id, statement in allow_statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        offenders += [(logical_id, a) for a in actions if a == "*" or a.endswith(":*") or "*" in a]
    assert offenders == []


def test_wildcard_resources_only_where_the_service_has_no_resource_level_permissions(template):
    # Rekognition video jobs, CloudWatch Logs delivery and X-Ray accept only "*".
    allowed_prefixes = ("rekognition:", "logs:", "xray:")
    offenders = []
    for logical_id, statement in allow_statements(template):
        resources = statement.get("Resource")
        resources = resources if isinstance(resources, list) else [resources]  # "*" and ["*", ...] alike
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "*" in resources and not all(a.startswith(allowed_prefixes) for a in actions):
            offenders.append((logical_id, actions))
    assert offenders == []


def test_the_wildcard_resource_check_sees_list_forms():
    offending = {
        "Resources": {
            "F": {
                "Properties": {
                    "Policies": [
                        {
                            "Statement": [
                                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]},
                            ]
                        }
                    ]
                }
            }
        }
    }
    with pytest.raises(AssertionError):
        test_wildcard_resources_only_where_the_service_has_no_resource_level_permissions(offending)


CALLS_NO_AWS_API = {"SealRecordFunction"}  # pure computation: no policy of its own


def test_every_function_has_its_own_policy_and_an_existing_code_folder(template):
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert {
        "SubmitFunction",
        "ValidateInputFunction",
        "StoreLabelsFunction",
        "EvaluateRulesFunction",
        "StartHumanReviewFunction",
        "CompleteHumanReviewFunction",
        "ReviewHeartbeatFunction",
        "SealRecordFunction",
    } <= set(functions)
    for logical_id, function in functions.items():
        code = ROOT / function["Properties"]["CodeUri"]
        assert (code / "app.py").is_file() and (code / "requirements.txt").is_file(), logical_id
        if logical_id in CALLS_NO_AWS_API:
            # an explicit empty list (SAM adds only logs and X-Ray), and code that has no AWS client to call with
            assert function["Properties"]["Policies"] == [], logical_id
            assert not [p for p in code.glob("*.py") if re.search(r"\b(boto3|botocore)\b", p.read_text())], logical_id
        else:
            assert function["Properties"].get("Policies"), f"{logical_id} has no policy of its own"


def test_buckets_are_private_encrypted_and_tls_only(template):
    resources = template["Resources"]
    buckets = [k for k, v in resources.items() if v["Type"] == "AWS::S3::Bucket"]
    assert buckets
    for bucket in buckets:
        props = resources[bucket]["Properties"]
        assert all(props["PublicAccessBlockConfiguration"].values())
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        policies = [
            v
            for v in resources.values()
            if v["Type"] == "AWS::S3::BucketPolicy" and v["Properties"]["Bucket"] == {"Ref": bucket}
        ]
        (policy,) = policies
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    cors = resources["MediaBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert [rule["AllowedMethods"] for rule in cors] == [["GET"]]


def test_api_requires_iam_auth(template):
    api = template["Resources"]["ModerationApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"


def test_state_machine_is_standard_logged_and_traced(template):
    props = template["Resources"]["ModerationStateMachine"]["Properties"]
    assert props["Type"] == "STANDARD" and props["Tracing"]["Enabled"] is True
    assert props["Logging"]["Level"] == "ALL"


def test_every_substitution_in_the_definition_is_provided(template, definition):
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(definition)))
    provided = set(template["Resources"]["ModerationStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert used == provided


def test_aws_sdk_errors_are_listed_in_both_spellings(definition):
    for name, state in definition["States"].items():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule["ErrorEquals"]:
                if error.startswith(("Rekognition.", "rekognition.")):
                    twin = ("r" if error[0] == "R" else "R") + error[1:]
                    assert twin in rule["ErrorEquals"], f"{name}: {error} without {twin}"


def test_review_task_has_timeout_heartbeat_and_an_escalation_path(definition):
    review = definition["States"]["HumanReview"]
    assert review["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert "TimeoutSecondsPath" in review and "HeartbeatSecondsPath" in review
    timeouts = [c for c in review["Catch"] if "States.Timeout" in c["ErrorEquals"]]
    assert timeouts and "States.HeartbeatTimeout" in timeouts[0]["ErrorEquals"]
    assert "taskToken.$" in review["Parameters"]["Payload"]


def test_every_next_points_to_an_existing_state(definition):
    states = definition["States"]
    targets = [s.get("Next") for s in states.values()] + [
        c["Next"] for s in states.values() for c in s.get("Choices", [])
    ]
    targets += [c["Next"] for s in states.values() for c in s.get("Catch", [])] + [
        s.get("Default") for s in states.values()
    ]
    assert {t for t in targets if t} <= set(states)


@pytest.mark.parametrize("definition_file", ["moderation.asl.json", "backfill.asl.json"])
def test_asl_validator_accepts_the_definition(definition_file):
    npx = shutil.which("npx")
    if not (ROOT / "node_modules" / "asl-validator").is_dir() or npx is None:
        pytest.fail("asl-validator is not installed: run `make test` (it runs npm install)")
    result = subprocess.run(
        [npx, "--no-install", "asl-validator", "--json-path", f"statemachine/{definition_file}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _sam(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    if not SAM:
        pytest.fail("aws-sam-cli is not installed: run `make test` (it installs it in .venv-sam)")
    env = os.environ | {"SAM_CLI_TELEMETRY": "0"}
    return subprocess.run([SAM, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_sam_validate_lint():
    result = _sam("validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_build_packages_every_function(tmp_path):
    build_dir = tmp_path / "build"
    result = _sam("build", "--parallel", "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stdout + result.stderr
    for function in ["SubmitFunction", "EvaluateRulesFunction", "CompleteHumanReviewFunction"]:
        assert (build_dir / function / "app.py").is_file()
        assert (build_dir / function / "aws_lambda_powertools").is_dir()
    assert (build_dir / "EvaluateRulesFunction" / "rules" / "ruleset.json").is_file()
    assert (build_dir / "EvaluateRulesFunction" / "pydantic").is_dir()
    # The contracts ship once, in the layer (Lambda unpacks it to /opt/python), never copied into a function.
    assert (build_dir / "ContractsLayer" / "python" / "vidmod_contracts" / "review_tasks.py").is_file()
    assert not list(build_dir.glob("*Function/vidmod_contracts"))


def test_every_function_lists_the_contracts_layer(template):
    layer = template["Resources"]["ContractsLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert (ROOT / layer["Properties"]["ContentUri"] / "vidmod_contracts" / "__init__.py").is_file()
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions
    for logical_id, resource in functions.items():
        assert {"Ref": "ContractsLayer"} in resource["Properties"].get("Layers", []), logical_id


def test_media_cors_origin_is_valid_for_s3(template):
    """S3 accepts at most one wildcard per AllowedOrigin; the default must deploy."""
    (rule,) = template["Resources"]["MediaBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    (origin,) = rule["AllowedOrigins"]
    _, _, default = origin["Fn::If"]
    assert default["Fn::Sub"].count("*") == 1 and default["Fn::Sub"].startswith("https://")


def grants(template: dict, logical_id: str) -> list[tuple[str, object]]:
    """(action, resource) pairs one resource's policies allow."""
    pairs = []
    for owner, statement in allow_statements(template):
        if owner != logical_id:
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs += [(a, r) for a in actions for r in resources]
    return pairs


def test_the_reviewer_watches_a_copy_of_the_analysed_version_that_expires(template):
    """start_human_review copies exactly the analysed version to review-media/ (a replacement of the original key
    during the review cannot change what the reviewer sees); A2I's grant_read_access reads the copy; the copies
    outlast any review and then go."""
    media, review_media = {"Fn::Sub": "${MediaBucket.Arn}/*"}, {"Fn::Sub": "${ResultsBucket.Arn}/review-media/*"}
    start = grants(template, "StartHumanReviewFunction")
    assert ("s3:GetObjectVersion", media) in start
    assert {a for a, r in start if r == review_media} == {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
    assert ("s3:GetObject", review_media) in grants(template, "A2IFlowDefinitionRole")
    function = template["Resources"]["StartHumanReviewFunction"]["Properties"]
    assert function["Environment"]["Variables"]["RESULTS_BUCKET"] == {"Ref": "ResultsBucket"}
    assert function["Timeout"] >= 300  # a 10 GB server-side copy
    results = template["Resources"]["ResultsBucket"]["Properties"]
    (rule,) = [r for r in results["LifecycleConfiguration"]["Rules"] if r.get("Prefix") == "review-media/"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] > 10  # A2I keeps a task at most 10 days
    (cors,) = results["CorsConfiguration"]["CorsRules"]
    assert cors == template["Resources"]["MediaBucket"]["Properties"]["CorsConfiguration"]["CorsRules"][0]


@pytest.mark.parametrize("function", ["SubmitFunction", "ValidateInputFunction", "StartHumanReviewFunction"])
def test_functions_that_head_media_objects_may_list_the_bucket_so_missing_is_404(template, function):
    assert ("s3:ListBucket", {"Fn::GetAtt": ["MediaBucket", "Arn"]}) in grants(template, function)


def test_tagging_reads_and_writes_the_analysed_versions_tags(template, definition):
    granted = {a for a, _ in grants(template, "ModerationStateMachine")}
    assert {"s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectVersionTagging"} <= granted
    states = definition["States"]
    assert states["RecordDecision"]["Next"] == "TagVideo"
    versioned = [s for s in states.values() if s.get("Resource", "").endswith("ObjectTagging")]
    assert {s["Parameters"].get("VersionId.$") for s in versioned} == {"$.final.versionId", None}
    writes = [s for s in versioned if s["Resource"].endswith("putObjectTagging")]
    assert all(s["Parameters"]["Tagging"]["TagSet.$"] == "$.tagging.groups[*].tags[*][*]" for s in writes)


def test_reviewers_can_be_shown_the_analysed_version(template):
    granted = grants(template, "A2IFlowDefinitionRole")
    assert ("s3:GetObjectVersion", {"Fn::Sub": "${MediaBucket.Arn}/*"}) in granted


def test_failed_event_deliveries_are_kept_in_an_encrypted_queue_only_our_rules_may_write(template):
    resources = template["Resources"]
    queue = {"Fn::GetAtt": ["EventDeliveryDLQ", "Arn"]}
    rules = {
        "SubmitFunction": ["VideoUploaded"],
        "CompleteHumanReviewFunction": ["HumanLoopStatusChanged", "HumanLoopReplay"],
        "ArchiveExecutionFunction": ["ExecutionEnded"],
        "AdmissionFunction": ["ExecutionEnded"],
    }
    for function, events in rules.items():
        props = resources[function]["Properties"]
        for event in events:
            assert props["Events"][event]["Properties"]["DeadLetterConfig"] == {"Arn": queue}
        # EventBridge's DLQ covers delivery; a function that keeps failing is kept by its OnFailure destination.
        assert props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": queue}
    assert resources["EventDeliveryDLQ"]["Properties"]["SqsManagedSseEnabled"] is True
    policy = resources["EventDeliveryDLQPolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "EventDeliveryDLQ"}]
    allow, deny = policy["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    sources = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sources == [{"Fn::GetAtt": [f"{f}{e}", "Arn"]} for f, events in rules.items() for e in events]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_burst_beyond_rekognitions_20_concurrent_jobs_waits_for_a_slot(definition):
    retries = definition["States"]["StartModeration"]["Retry"]
    limit = next(r for r in retries if "Rekognition.LimitExceededException" in r["ErrorEquals"])
    assert "rekognition.LimitExceededException" in limit["ErrorEquals"]
    assert limit["IntervalSeconds"] >= 30 and limit["MaxAttempts"] >= 20 and limit["MaxDelaySeconds"] >= 300
    assert limit["JitterStrategy"] == "FULL"
    assert retries.index(limit) == 0  # not shadowed by the short, general retrier
    assert all("LimitExceeded" not in e for r in retries[1:] for e in r["ErrorEquals"])


def test_a2i_expiry_escalates_and_a2i_throttling_is_retried(definition):
    review = definition["States"]["HumanReview"]
    escalate = next(c for c in review["Catch"] if "States.Timeout" in c["ErrorEquals"])
    assert "HumanLoopExpired" in escalate["ErrorEquals"] and escalate["Next"] == "StopHumanLoop"
    retried = {e for r in review["Retry"] for e in r["ErrorEquals"]}
    assert {"A2IThrottled", "A2IQuotaExceeded"} <= retried


def test_the_decision_records_the_trigger_validate_input_normalised(definition):
    """A console/CLI start has no $.trigger: only the pre-validation failure path may read it, after a default."""
    states = definition["States"]
    readers = [n for n, s in states.items() if "$.trigger" in json.dumps(s.get("Parameters", {}))]
    assert readers == ["FailedValidation"]
    for name in ("DecidedByRules", "DecidedByHuman", "Escalated", "Failed", "FailedAfterRules"):
        assert states[name]["Parameters"]["trigger.$"] == "States.JsonToString($.job.trigger)"
    routes = [
        c for c in states["DescribeFailure"]["Choices"] if c["Next"] in {"ValidationFailureVersion", "DefaultTrigger"}
    ]
    assert [r["Next"] for r in routes] == ["ValidationFailureVersion", "DefaultTrigger"]
    assert {"Variable": "$.trigger", "IsPresent": True} in routes[0]["And"]
    assert states["DefaultTrigger"]["ResultPath"] == "$.trigger"
    assert states["DefaultTrigger"]["Next"] == "ValidationFailureVersion"
    # both roads reach FailedValidation with a string versionId: the one the input named, or ""
    version = states["ValidationFailureVersion"]
    assert version["Choices"] == [{"Variable": "$.video.versionId", "IsString": True, "Next": "FailedValidation"}]
    assert states[version["Default"]] == {
        "Type": "Pass",
        "Result": "",
        "ResultPath": "$.video.versionId",
        "Next": "FailedValidation",
    }
    assert states["FailedValidation"]["Parameters"]["versionId.$"] == "$.video.versionId"


OUTCOME_STATES = ["DecidedByRules", "DecidedByHuman", "Escalated", "Failed", "FailedAfterRules", "FailedValidation"]


def record_item_names(states: dict) -> set[str]:
    return set(states["RecordDecision"]["Parameters"]["Item"])


def test_the_decision_record_is_built_in_one_state(definition):
    """Each outcome state sets only its own record fields ($.outcome); BuildRecord alone adds the video and the
    execution, so the fields every record shares are written once and cannot drift apart between outcomes."""
    states = definition["States"]
    outcomes = [name for name, state in states.items() if state.get("Next") == "BuildRecord"]
    assert sorted(outcomes) == sorted(OUTCOME_STATES)
    build = {key.removesuffix(".$"): value for key, value in states["BuildRecord"]["Parameters"].items()}
    from_outcome = {name for name, value in build.items() if value == f"$.outcome.{name}"}
    common = set(build) - from_outcome
    # admission: how long the execution queued for a moderation slot ({"admitted": false} if it never got one)
    assert common == {"videoUri", "bucket", "key", "executionArn", "executionName", "startedAt", "admission"}
    for name, state in states.items():
        fields = {key.removesuffix(".$") for key in state.get("Parameters", {})}
        assert name == "BuildRecord" or not fields & common, f"{name} lists record fields BuildRecord sets"
    assert [n for n, s in states.items() if str(s.get("ResultPath")).startswith("$.final")] == [
        "BuildRecord",
        "AddErrorToRecord",
    ]
    for name in outcomes:
        state = states[name]
        assert (state["Type"], state["ResultPath"]) == ("Pass", "$.outcome"), name
        assert {key.removesuffix(".$") for key in state["Parameters"]} - {"error"} == from_outcome, name
        assert "$$.Execution" not in json.dumps(state), name
        # decidedAt: when this outcome was decided (its own entered time), not when the record was assembled
        assert state["Parameters"]["decidedAt.$"] == "$$.State.EnteredTime", name
    assert "$$.State" not in json.dumps(states["BuildRecord"])
    # a failure's record also names the error; the other outcomes' records have no error field
    failures = [name for name in outcomes if "error.$" in states[name]["Parameters"]]
    assert sorted(failures) == ["Failed", "FailedAfterRules", "FailedValidation"]
    assert {states[name]["Parameters"]["error.$"] for name in failures} == {"$.error.Error"}
    assert states["BuildRecord"]["Next"] == "RecordNamesError"
    assert states["RecordNamesError"]["Choices"] == [
        {"Variable": "$.outcome.error", "IsPresent": True, "Next": "AddErrorToRecord"}
    ]
    assert states["RecordNamesError"]["Default"] == "SealRecord"
    assert states["AddErrorToRecord"] == {
        "Type": "Pass",
        "InputPath": "$.outcome.error",
        "ResultPath": "$.final.error",
        "Next": "SealRecord",
    }
    # RecordDecision stores exactly the fields BuildRecord builds (plus SealRecord's hash and its version)
    assert set(states["RecordDecision"]["Parameters"]["Item"]) - {"recordSha256", "hashVersion"} == set(build)
    # ... and hash version 3 covers each of them, in the record's order (a failure's error is not stored)
    assert tuple(build) == VERSION_3_FIELDS
    assert "error" in NOT_STORED and "error" not in record_item_names(states)


def test_the_record_is_sealed_by_a_lambda_and_a_seal_that_fails_leaves_it_not_recorded(template, definition):
    """States.Hash takes at most 10,000 characters and fails uncatchably (States.Runtime): the hash of a record
    whose detail can be longer is SealRecord's, and a SealRecord that fails ends like an unrecorded decision."""
    states = definition["States"]
    seal, record = states["SealRecord"], states["RecordDecision"]
    assert (seal["Type"], seal["Resource"], seal["Next"]) == (
        "Task",
        "arn:aws:states:::lambda:invoke",
        "RecordDecision",
    )
    assert seal["Parameters"] == {"FunctionName": "${SealRecordFunctionArn}", "Payload.$": "$.final"}
    assert seal["ResultSelector"] == {
        "recordSha256.$": "$.Payload.recordSha256",
        "hashVersion.$": "$.Payload.hashVersion",
    }
    assert seal["ResultPath"] == "$.seal"
    assert seal["Retry"] == states["EvaluateRules"]["Retry"]  # Lambda's own transient errors, as every invoke
    assert (
        seal["Catch"]
        == record["Catch"]
        == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.recordError", "Next": "DescribeUnrecordedDecision"}]
    )
    item = record["Parameters"]["Item"]
    assert (item["recordSha256"], item["hashVersion"]) == (
        {"S.$": "$.seal.recordSha256"},
        {"S.$": "$.seal.hashVersion"},
    )
    assert "States.Hash(" not in json.dumps(definition)
    machine = template["Resources"]["ModerationStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["SealRecordFunctionArn"] == {"Fn::GetAtt": ["SealRecordFunction", "Arn"]}
    assert {"LambdaInvokePolicy": {"FunctionName": {"Ref": "SealRecordFunction"}}} in machine["Policies"]


def _job_plan():
    """validate_input's job_plan, loaded under its own name (unit tests import it as a flat ``job_plan``)."""
    import importlib.util
    import sys

    name = "vidmod_template_test_job_plan"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / "validate_input" / "job_plan.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def test_a_worst_case_label_page_fits_the_state_payload_limit(definition):
    """Each detection can carry up to 50 ContentTypes: the page size must keep the whole state under 256 KiB."""
    page_size = _job_plan().LABELS_PER_PAGE
    for name in ("FetchFirstLabelsPage", "FetchNextLabelsPage"):
        assert definition["States"][name]["Parameters"]["MaxResults"] == page_size
    confidence = 99.12345886230469
    detection = {
        "Timestamp": 21_600_000,
        "ModerationLabel": {"Confidence": confidence, "Name": "N" * 64, "ParentName": "P" * 64, "TaxonomyLevel": 3},
        "StartTimestampMillis": 21_600_000,
        "EndTimestampMillis": 21_600_000,
        "DurationMillis": 21_600_000,
        "ContentTypes": [{"Confidence": confidence, "Name": "C" * 64} for _ in range(50)],
    }
    key = "k" * 1024  # S3's longest key appears in the input, the job, the Rekognition Video and the check
    state = {
        "video": {"bucket": "b" * 63, "key": key, "versionId": "v" * 32, "etag": "e" * 34},
        "trigger": {"type": "s3-upload", "id": "i" * 36, "principal": "p" * 200, "receivedAt": "2026-11-24T10:00:00Z"},
        "job": {"video": {"key": key, "uri": key, "name": key, "s3Object": {"Name": key}}, "pad": "x" * 2048},
        "moderation": {
            "jobId": "j" * 64,
            "check": {
                "status": "SUCCEEDED",
                "response": {"ModerationLabels": [detection], "Video": {"S3Object": {"Name": key}}, "pad": "x" * 1024},
            },
        },
        "labels": {
            "pages": 1,
            "detections": 40,
            "page": {
                "ModerationLabels": [detection] * page_size,
                "NextToken": "t" * 255,
                "Video": {"S3Object": {"Name": key}},
                "VideoMetadata": {"pad": "x" * 512},
                "pad": "x" * 1024,
            },
        },
    }
    assert len(json.dumps(state, separators=(",", ":"))) < 256 * 1024


def test_polling_and_label_pages_cannot_exceed_the_execution_history_limit(template):
    plan = _job_plan()
    worst_polls = template["Parameters"]["PollMaxAttempts"]["MaxValue"]
    settings = plan.Settings.from_env({"RESULTS_BUCKET": "r", "POLL_MAX_ATTEMPTS": str(worst_polls)})
    pages = plan.max_label_pages(settings)
    assert pages >= 1
    assert plan.EVENTS_RESERVED + worst_polls * plan.EVENTS_PER_POLL + pages * plan.EVENTS_PER_LABEL_PAGE <= 25_000


def test_poll_and_heartbeat_parameters_are_guarded(template):
    params = template["Parameters"]
    assert params["PollMinSeconds"]["MinValue"] >= 1  # a 0 s first wait never grows (0 + 0)
    assert params["PollMaxSeconds"]["MinValue"] >= 1 and params["PollMaxAttempts"]["MinValue"] >= 1
    assert "HeartbeatSchedule period" in params["ReviewHeartbeatSeconds"]["Description"]
    env = template["Resources"]["ReviewHeartbeatFunction"]["Properties"]["Environment"]["Variables"]
    assert env["HEARTBEAT_SCHEDULE"] == {"Ref": "HeartbeatSchedule"}


def test_every_failure_gives_back_a_held_moderation_slot_before_it_is_recorded(definition):
    """Only the slot states lead straight to DescribeFailure; every other failure path passes the check that
    releases a held slot (or marks the record "not admitted"), and the slot is released once labels are stored."""
    states = definition["States"]
    into_failure = {
        name
        for name, state in states.items()
        if "DescribeFailure"
        in [state.get("Next"), state.get("Default")]
        + [c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])]
    }
    assert into_failure == {"GiveBackSlotOnFailure", "ReleaseSlotAfterFailure", "NotAdmitted"}
    assert states["ValidateInput"]["Next"] == "WaitForModerationSlot"
    assert states["WaitForModerationSlot"]["Next"] == "StartModeration"
    assert states["MoreLabelPages"]["Default"] == "ReleaseModerationSlot"
    assert states["ReleaseModerationSlot"]["Next"] == "EvaluateRules"
    wait = states["WaitForModerationSlot"]
    assert (
        wait["Resource"].endswith(".waitForTaskToken")
        and wait["TimeoutSecondsPath"] == "$.job.admission.maxWaitSeconds"
    )
    assert {c["Next"] for c in wait["Catch"]} == {"ModerationSlotWaitTimedOut", "LeaveModerationQueue"}


def test_more_label_pages_than_the_history_holds_fail_with_a_record(definition):
    states = definition["States"]
    assert states["ValidateInput"]["ResultSelector"]["labelPages.$"] == "$.Payload.labelPages"
    guard = states["MoreLabelPages"]["Choices"][0]
    assert guard["Next"] == "LabelBudgetExceeded"
    assert {"Variable": "$.labels.pages", "NumericGreaterThanEqualsPath": "$.job.labelPages.maxPages"} in guard["And"]
    failure = states["LabelBudgetExceeded"]
    assert failure["Parameters"]["Error"] == "TooManyLabels" and failure["Next"] == "GiveBackSlotOnFailure"


@pytest.mark.parametrize(
    ("parameter", "accepted", "refused"),
    [
        (
            "HeartbeatSchedule",
            ["rate(10 minutes)", "rate(1 minute)", "rate(1 hour)", "rate(2 hours)", "rate(15 minutes)"],
            ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "cron(0 * * * ? *)", "rate(10 days)"],
        ),
        (
            "RulesetS3Uri",
            ["", "s3://my-rules/vidmod/ruleset.json"],
            ["my-rules/ruleset.json", "s3://my-rules", "s3://My_Rules/r.json", "https://x/r.json"],
        ),
    ],
)
def test_parameters_refuse_values_aws_would_fail_on_mid_deploy(template, parameter, accepted, refused):
    """CloudFormation checks AllowedPattern before it creates anything; EventBridge and Fn::Select would fail
    half-way through a deploy on these values."""
    spec = template["Parameters"][parameter]
    pattern = re.compile(spec["AllowedPattern"])
    assert spec["Default"] in accepted
    assert [v for v in accepted if not pattern.fullmatch(v)] == []
    assert [v for v in refused if pattern.fullmatch(v)] == []
