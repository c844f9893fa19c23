"""Operating the stack in AWS: what a delete keeps, log groups and their retention, logs without execution data,
the metrics contract, the dashboard, the alarms and their topic, and cfn-lint with its informational checks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
LOCAL_SAM = ROOT / ".venv-sam" / "bin" / "sam"
SAM = os.environ.get("SAM_CLI") or (str(LOCAL_SAM) if LOCAL_SAM.exists() else shutil.which("sam"))

# Everything that holds a record someone may need after the stack is gone (or replaced).
RETAINED = {"DecisionsTable", "ReviewTasksTable", "AuditBucket", "ResultsBucket", "EventDeliveryDLQ", "MediaBucket"}
# A retained bucket keeps its TLS-only policy.
RETAINED_POLICIES = {"MediaBucketPolicy", "ResultsBucketPolicy", "AuditBucketPolicy"}
NAMESPACE = {"Fn::Sub": "vidmod/${AWS::StackName}"}
SERVICE = [{"Name": "service", "Value": "vidmod"}]
# The metrics contract (vidmod_contracts.metrics): name → dimensions besides service.
METRICS = {
    "Decisions": {"outcome", "source"},
    "ReviewLatencySeconds": set(),
    "ModerationJobSeconds": set(),
    "ExecutionFailures": {"error"},
    "ArchiveFailures": set(),
    "OpenReviews": set(),
    "OldestOpenReviewAgeSeconds": set(),
    "ModerationQueueLength": set(),
    "ModerationSlotsInUse": set(),
}
# What CloudWatch Logs accepts as RetentionInDays.
CLOUDWATCH_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557]
CLOUDWATCH_RETENTION_DAYS += [2922, 3288, 3653]
NOTIFIES_TOPIC = {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}


@pytest.fixture(scope="module")
def template() -> dict:
    data, matches = decode_str((ROOT / "template.yaml").read_text())
    assert not matches, matches
    return data


def of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_stateful_resources_are_retained_on_delete_and_replace(template):
    """Object Lock makes the audit bucket's deletion fail half-way; the records must outlive `sam delete`."""
    log_groups = set(of_type(template, "AWS::Logs::LogGroup"))
    assert len(log_groups) == 13  # ten functions, three state machines
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        retained = {k for k, v in template["Resources"].items() if v.get(policy) == "Retain"}
        assert retained == RETAINED | RETAINED_POLICIES | log_groups, policy
    # the moderation slots are only who holds a slot now: deleted, and said so (cfn-lint I3011)
    slots = template["Resources"]["ModerationSlotsTable"]
    assert (slots["DeletionPolicy"], slots["UpdateReplacePolicy"]) == ("Delete", "Delete")


def test_every_function_logs_to_its_own_group_kept_log_retention_days(template):
    functions = of_type(template, "AWS::Serverless::Function")
    groups = of_type(template, "AWS::Logs::LogGroup")
    assert len(functions) == 10
    names = set()
    for logical_id, function in functions.items():
        group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert group_id == f"{logical_id}Logs"
        group = groups[group_id]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        name = group["LogGroupName"]["Fn::Sub"]
        # not Lambda's implicit /aws/lambda/<function name>: the fixed-name admission function's may exist
        assert re.fullmatch(r"/aws/lambda/\$\{AWS::StackName\}/[a-z][a-z-]+", name), name
        names.add(name)
        # AWSLambdaBasicExecutionRole (SAM adds it) may write to any group: no logs grant of our own
        assert not [s for s in _statements(function) if any(a.startswith("logs:") for a in _actions(s))]
    assert len(names) == len(functions)
    assert template["Globals"]["Function"]["LoggingConfig"] == {"LogFormat": "JSON"}
    for machine in ("ModerationStateMachine", "BackfillStateMachine"):
        group = groups[f"{machine}Logs"]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def _statements(resource: dict):
    for policy in resource["Properties"].get("Policies", []):
        if isinstance(policy, dict):
            yield from policy.get("Statement", [])


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_log_retention_takes_only_values_cloudwatch_accepts(template):
    spec = template["Parameters"]["LogRetentionDays"]
    assert spec["AllowedValues"] == CLOUDWATCH_RETENTION_DAYS
    assert spec["Default"] in spec["AllowedValues"] and spec["Description"]


@pytest.mark.parametrize("machine", ["ModerationStateMachine", "BackfillStateMachine"])
def test_state_machine_logs_carry_no_execution_data(template, machine):
    """Execution data would put live task tokens and label pages in CloudWatch Logs."""
    logging = template["Resources"][machine]["Properties"]["Logging"]
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {"Fn::GetAtt": [f"{machine}Logs", "Arn"]}


def test_every_function_publishes_metrics_to_the_stack_namespace_as_service_vidmod(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    assert env["POWERTOOLS_SERVICE_NAME"] == "vidmod"


def test_the_local_stack_resolves_the_namespace_and_ignores_the_operations_resources(template):
    from vidmod.emulator.stack import local_resources

    resources = local_resources("vidmod-ops")
    assert len(resources.functions) == 10
    for function in resources.functions.values():
        assert function.environment["POWERTOOLS_METRICS_NAMESPACE"] == "vidmod/vidmod-ops"
        assert function.environment["POWERTOOLS_SERVICE_NAME"] == "vidmod"
    assert set(resources.buckets) == set(of_type(template, "AWS::S3::Bucket"))
    assert set(resources.tables) == set(of_type(template, "AWS::DynamoDB::Table"))
    assert set(resources.state_machines) == {"ModerationStateMachine", "AuditStateMachine", "BackfillStateMachine"}


def _resolved_alarm_metrics(alarm: dict) -> list[dict]:
    """Each metric an alarm reads: {"Namespace", "MetricName", "Dimensions", "Stat", "Period"}."""
    if "Metrics" in alarm:
        return [
            {**q["MetricStat"]["Metric"], "Stat": q["MetricStat"]["Stat"], "Period": q["MetricStat"]["Period"]}
            for q in alarm["Metrics"]
            if "MetricStat" in q
        ]
    keys = ("Namespace", "MetricName", "Dimensions", "Period")
    return [{**{k: alarm[k] for k in keys}, "Stat": alarm["Statistic"]}]


STATE_MACHINE = [{"Name": "StateMachineArn", "Value": {"Ref": "ModerationStateMachine"}}]
ALARMS = {
    "ReviewSlaAlarm": (
        [("vidmod", "OldestOpenReviewAgeSeconds", SERVICE, "Maximum")],
        "oldest / 3600",
        {"Ref": "ReviewSlaHours"},
        "missing",
    ),
    "ExecutionFailuresAlarm": (
        [
            ("AWS/States", "ExecutionsFailed", STATE_MACHINE, "Sum"),
            ("AWS/States", "ExecutionsTimedOut", STATE_MACHINE, "Sum"),
        ],
        "FILL(failed, 0) + FILL(timedOut, 0)",
        0,
        "notBreaching",
    ),
    "EventDeliveryDLQAlarm": (
        [
            (
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventDeliveryDLQ", "QueueName"]}}],
                "Maximum",
            )
        ],
        None,
        0,
        "notBreaching",
    ),
    "ArchiveFailuresAlarm": ([("vidmod", "ArchiveFailures", SERVICE, "Sum")], None, 0, "notBreaching"),
}


@pytest.mark.parametrize("alarm_id", sorted(ALARMS))
def test_each_alarm_reads_its_metric_against_its_threshold_and_notifies_the_topic(template, alarm_id):
    metrics, expression, threshold, missing = ALARMS[alarm_id]
    alarm = template["Resources"][alarm_id]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    props = alarm["Properties"]
    read = _resolved_alarm_metrics(props)
    expected = [
        {
            "Namespace": NAMESPACE if ns == "vidmod" else ns,
            "MetricName": name,
            "Dimensions": dims,
            "Stat": stat,
        }
        for ns, name, dims, stat in metrics
    ]
    assert [{k: v for k, v in m.items() if k != "Period"} for m in read] == expected
    assert all(m["Period"] in (300, 3600) for m in read)
    if expression:
        (returned,) = [q for q in props["Metrics"] if q.get("ReturnData")]
        assert returned["Expression"] == expression
    assert props["Threshold"] == threshold
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["EvaluationPeriods"] == 1
    assert props["TreatMissingData"] == missing
    assert props["AlarmActions"] == NOTIFIES_TOPIC and props["OKActions"] == NOTIFIES_TOPIC
    assert props["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-")
    assert "docs/operations.md" in props["AlarmDescription"]


def test_review_sla_parameter(template):
    spec = template["Parameters"]["ReviewSlaHours"]
    assert (spec["Type"], spec["Default"], spec["MinValue"]) == ("Number", 24, 1)


def test_the_alarm_topic_exists_only_with_an_email_and_takes_only_tls_and_this_stacks_alarms(template):
    resources = template["Resources"]
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    pattern = re.compile(template["Parameters"]["AlarmEmail"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("ops@example.com") and not pattern.fullmatch("ops")
    conditional = {k for k, v in resources.items() if v.get("Condition") == "HasAlarmEmail"}
    assert conditional == {"AlarmTopic", "AlarmTopicPolicy", "AlarmTopicKey"}
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    # alarms cannot publish to a topic under alias/aws/sns: its key policy never grants cloudwatch.amazonaws.com
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = resources["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    (cloudwatch,) = [
        s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    policy = resources["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    allow, deny = policy["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and allow["Action"] == "sns:Publish"
    alarms = allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert alarms.endswith(":alarm:${AWS::StackName}-*")
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # every alarm of the stack notifies it, and its name matches the topic policy's alarm pattern
    for alarm in of_type(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == NOTIFIES_TOPIC
    assert set(of_type(template, "AWS::CloudWatch::Alarm")) == set(ALARMS)


def _dashboard(template: dict) -> tuple[dict, set[str]]:
    """The dashboard body as JSON (each ${...} replaced by a number) and the names it substitutes."""
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    names = set(re.findall(r"\$\{([^}!]+)\}", body))
    return json.loads(re.sub(r"\$\{[^}!]+\}", "1", body)), names


def test_the_dashboard_body_is_json_whose_substitutions_all_exist(template):
    body, names = _dashboard(template)
    assert body["widgets"]
    for name in names:
        logical_id = name.split(".")[0]
        assert name.startswith("AWS::") or logical_id in template["Parameters"] or logical_id in template["Resources"]


def test_the_dashboard_shows_every_metric_of_the_contract_and_the_aws_ones(template):
    body, names = _dashboard(template)
    text = json.dumps(body)
    graphed = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], str):
                graphed.add((row[0], row[1]))
            elif "SEARCH(" in row[0].get("expression", ""):
                graphed |= {("vidmod/1", m) for m in re.findall(r'MetricName=\\?"(\w+)', row[0]["expression"])}
    assert {("vidmod/1", metric) for metric in METRICS} <= graphed
    for metric in [f"Executions{s}" for s in ("Started", "Succeeded", "Failed", "TimedOut")]:
        assert ("AWS/States", metric) in graphed
    assert {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/Lambda", "Errors")} <= graphed
    assert ("AWS/Lambda", "Throttles") in graphed
    # the searches name the full dimension set of their metric
    assert '\\"vidmod/1\\",outcome,service,source} MetricName=\\"Decisions\\"' in text
    assert '\\"vidmod/1\\",error,service} MetricName=\\"ExecutionFailures\\"' in text
    # the limits the figures are read against, every function's Lambda metrics, the DLQ and the state machine
    assert {"ReviewSlaHours", "MaxConcurrentModerationJobs", "ModerationStateMachine"} <= names
    assert "EventDeliveryDLQ.QueueName" in names
    assert set(of_type(template, "AWS::Serverless::Function")) <= names


def test_outputs_name_the_dashboard_and_the_topic(template):
    outputs = template["Outputs"]
    assert "#dashboards/dashboard/${OperationsDashboard}" in outputs["DashboardUrl"]["Value"]["Fn::Sub"]
    assert outputs["AlarmTopicArn"] == {
        "Condition": "HasAlarmEmail",
        "Description": outputs["AlarmTopicArn"]["Description"],
        "Value": {"Ref": "AlarmTopic"},
    }


# ---------------------------------------------------------------- cfn-lint


def _cfn_lint(path: Path) -> subprocess.CompletedProcess:
    """aws-sam-cli's cfn-lint (the project's own has no SAM translator), informational checks included."""
    if not SAM or not (Path(SAM).parent / "cfn-lint").exists():
        pytest.fail("aws-sam-cli is not installed: run `make test` (it installs it in .venv-sam)")
    command = [str(Path(SAM).parent / "cfn-lint"), "--include-checks", "I", "--", path.name]
    return subprocess.run(command, cwd=path.parent, capture_output=True, text=True, timeout=300)


def test_cfn_lint_is_clean_including_informational_checks():
    result = _cfn_lint(ROOT / "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def _inlined(template: dict) -> dict:
    """The template with each state machine's DefinitionUri replaced by its ASL (DefinitionSubstitutions kept)."""
    inlined = json.loads(json.dumps(template))
    for resource in of_type(inlined, "AWS::Serverless::StateMachine").values():
        props = resource["Properties"]
        props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text())
        assert props["DefinitionSubstitutions"]
    return inlined


def test_cfn_lint_is_clean_with_the_asl_inlined(template, tmp_path):
    """As a SAM template, and as the CloudFormation SAM makes of it, where cfn-lint validates the ASL (E3601)."""
    sam_template = tmp_path / "template.json"
    sam_template.write_text(json.dumps(_inlined(template)))
    result = _cfn_lint(sam_template)
    assert result.returncode == 0, result.stdout + result.stderr
    transformed = tmp_path / "transformed.json"
    python = Path(SAM).parent / "python"
    script = Path(__file__).with_name("sam_transform.py")
    run = subprocess.run(
        [str(python), str(script), str(sam_template), str(transformed)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    machines = of_type(json.loads(transformed.read_text()), "AWS::StepFunctions::StateMachine")
    assert len(machines) == 3 and all("States" in m["Properties"]["Definition"] for m in machines.values())
    result = _cfn_lint(transformed)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_archive_streams_into_the_audit_bucket_and_a_cut_upload_is_dropped(template):
    """A large history is a multipart upload: the function may abort its own, and parts left by a function that
    timed out mid-upload are removed after a day instead of being billed forever."""
    archive = template["Resources"]["ArchiveExecutionFunction"]
    s3_actions = {a for s in _statements(archive) for a in _actions(s) if a.startswith("s3:")}
    assert s3_actions == {"s3:PutObject", "s3:AbortMultipartUpload"}
    rules = template["Resources"]["AuditBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [(r["Status"], r["AbortIncompleteMultipartUpload"]) for r in rules] == [
        ("Enabled", {"DaysAfterInitiation": 1})
    ]
