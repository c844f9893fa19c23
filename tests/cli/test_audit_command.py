"""`vidmod audit` options: local endpoint by default like every vidmod command, --aws with the stack's names."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from vidmod.audit.timeline import AuditReport
from vidmod.cli import audit as cli
from vidmod.cli.main import DEFAULT_ENDPOINT, build_parser, main

ARN = "arn:aws:states:eu-west-1:111122223333:execution:vidmod-ModerationStateMachine:clip-abc"
OUTPUTS = {
    "DecisionsTableName": "vidmod-DecisionsTable-X",
    "StateMachineArn": "arn:aws:states:eu-west-1:111122223333:stateMachine:vidmod-ModerationStateMachine",
    "AuditBucketName": "vidmod-auditbucket-x",
}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    for name in ("VIDMOD_ENDPOINT", "VIDMOD_DECISIONS_TABLE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "t")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")


def parse(*argv: str):
    return build_parser().parse_args(["audit", *argv])


def test_the_default_target_is_the_local_endpoint_and_aws_is_explicit():
    assert parse("x").endpoint_url == DEFAULT_ENDPOINT
    assert parse("x", "--aws").endpoint_url == "" and parse("x", "--endpoint-url", "").endpoint_url == ""


def test_local_names_come_from_the_template():
    sources = cli.local_sources(parse("clip-abc"))
    assert sources.decisions_table == "vidmod-DecisionsTable" and sources.archive_bucket == "vidmod-auditbucket"
    assert sources.execution_arn("clip-abc").endswith(":execution:vidmod-ModerationStateMachine:clip-abc")


def test_aws_names_come_from_the_stack_outputs_and_the_region_from_the_arn(monkeypatch):
    asked = []

    def outputs(cloudformation, stack):
        asked.append((cloudformation.meta.region_name, stack))
        return OUTPUTS

    monkeypatch.setattr("vidmod.cloud.stack_outputs", outputs)
    sources = cli.aws_sources(parse(ARN, "--aws", "--stack-name", "mod-prod"))
    assert asked == [("eu-west-1", "mod-prod")] and sources.sfn.meta.region_name == "eu-west-1"
    assert (sources.decisions_table, sources.state_machine_arn, sources.archive_bucket) == tuple(OUTPUTS.values())
    assert sources.execution_arn("clip-abc") == ARN
    # a name or s3:// target: the default chain's region; flags override outputs (no stack read needed)
    named = cli.aws_sources(
        parse("s3://b/k.mp4", "--aws", "--decisions-table", "t", "--state-machine-arn", "m", "--audit-bucket", "")
    )
    assert named.sfn.meta.region_name == "us-west-2" and (named.decisions_table, named.archive_bucket) == ("t", "")
    assert len(asked) == 1


def test_errors_are_one_clear_line_and_exit_2(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "GetExecutionHistory")

    monkeypatch.setattr(cli, "local_sources", lambda args: None)
    monkeypatch.setattr(cli, "audit_target", refuse)
    assert main(["audit", ARN]) == 2
    assert capsys.readouterr().err == "vidmod audit: AccessDeniedException: not allowed\n"


def test_findings_exit_1(monkeypatch, capsys):
    report = AuditReport(executionArn=ARN, status="SUCCEEDED", integrity=["record decision is 'APPROVE' but …"])
    monkeypatch.setattr(cli, "local_sources", lambda args: None)
    monkeypatch.setattr(cli, "audit_target", lambda *a: [report])
    assert main(["audit", ARN]) == 1
    assert "INTEGRITY record decision is 'APPROVE' but …" in capsys.readouterr().out
