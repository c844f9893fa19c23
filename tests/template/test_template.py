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
    offenders = [
        (logical_id, statement["Action"])
        for logical_id, statement in allow_statements(template)
        if statement.get("Resource") == "*" and not all(a.startswith(allowed_prefixes) for a in statement["Action"])
    ]
    assert offenders == []


def test_every_function_has_its_own_policy_and_an_existing_code_folder(template):
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 7
    for logical_id, function in functions.items():
        code = ROOT / function["Properties"]["CodeUri"]
        assert (code / "app.py").is_file() and (code / "requirements.txt").is_file(), logical_id
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


def test_asl_validator_accepts_the_definition():
    npx = shutil.which("npx")
    if not (ROOT / "node_modules" / "asl-validator").is_dir() or npx is None:
        pytest.fail("asl-validator is not installed: run `make test` (it runs npm install)")
    result = subprocess.run(
        [npx, "--no-install", "asl-validator", "--json-path", "statemachine/moderation.asl.json"],
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
    result = _sam("build", "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stdout + result.stderr
    for function in ["SubmitFunction", "EvaluateRulesFunction", "CompleteHumanReviewFunction"]:
        assert (build_dir / function / "app.py").is_file()
        assert (build_dir / function / "aws_lambda_powertools").is_dir()
    assert (build_dir / "EvaluateRulesFunction" / "rules" / "ruleset.json").is_file()
    assert (build_dir / "EvaluateRulesFunction" / "pydantic").is_dir()


def test_media_cors_origin_is_valid_for_s3(template):
    """S3 accepts at most one wildcard per AllowedOrigin; the default must deploy."""
    (rule,) = template["Resources"]["MediaBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    (origin,) = rule["AllowedOrigins"]
    _, _, default = origin["Fn::If"]
    assert default["Fn::Sub"].count("*") == 1 and default["Fn::Sub"].startswith("https://")
