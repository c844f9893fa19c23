"""make deploy: the A2I UI is the ui/ file (checked by RenderUiTemplate), the flow definition is made Active and a
second run changes nothing; sam build runs without a container when python3.13 does; sam deploy is guided once."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from vidmod import cloud
from vidmod.cli import deploy

REGION, ACCOUNT = "us-east-1", "123456789012"
FLOW_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/vidmod-review"
SETTINGS = cloud.FlowSettings(
    "vidmod-review",
    f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/team",
    f"arn:aws:iam::{ACCOUNT}:role/a2i",
    "s3://results/a2i-output",
)
NO_WAIT = cloud.Polling(interval=1, timeout=30, sleep=lambda seconds: None)


def client(service: str):
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def template(tmp_path) -> Path:
    path = tmp_path / "t.liquid.html"
    path.write_text("<crowd-form>{{ task.input.video.name }}</crowd-form>")
    return path


def ui_arn(path: Path) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:human-task-ui/{cloud.ui_name('vidmod-review', path.read_text())}"


def flow(status: str, ui: str, settings: cloud.FlowSettings = SETTINGS, **extra) -> dict:
    return {
        "FlowDefinitionArn": FLOW_ARN,
        "FlowDefinitionName": "vidmod-review",
        "FlowDefinitionStatus": status,
        "CreationTime": "2025-01-01T00:00:00Z",
        "HumanLoopConfig": settings.human_loop_config(ui),
        "OutputConfig": {"S3OutputPath": settings.output_path},
        "RoleArn": settings.role_arn,
        **extra,
    }


def missing(stub: Stubber, operation: str) -> None:
    stub.add_client_error(operation, service_error_code="ResourceNotFound", http_status_code=400)


def creates_ui(stub: Stubber, path: Path) -> None:
    missing(stub, "describe_human_task_ui")
    stub.add_response(
        "render_ui_template",
        {"RenderedContent": "<crowd-form>sample.mp4</crowd-form>", "Errors": []},
        {"UiTemplate": {"Content": path.read_text()}, "Task": {"Input": ANY}, "RoleArn": SETTINGS.role_arn},
    )
    stub.add_response(
        "create_human_task_ui",
        {"HumanTaskUiArn": ui_arn(path)},
        {"HumanTaskUiName": cloud.ui_name("vidmod-review", path.read_text()), "UiTemplate": {"Content": ANY}},
    )


def finds_ui(stub: Stubber, path: Path) -> None:
    stub.add_response(
        "describe_human_task_ui",
        {
            "HumanTaskUiArn": ui_arn(path),
            "HumanTaskUiName": cloud.ui_name("vidmod-review", path.read_text()),
            "CreationTime": "2025-01-01T00:00:00Z",
            "UiTemplate": {"Url": "https://example", "ContentSha256": "x"},
        },
    )


def creates_flow(stub: Stubber, path: Path) -> None:
    stub.add_response(
        "create_flow_definition",
        {"FlowDefinitionArn": FLOW_ARN},
        {
            "FlowDefinitionName": "vidmod-review",
            "RoleArn": SETTINGS.role_arn,
            "OutputConfig": {"S3OutputPath": "s3://results/a2i-output"},
            "HumanLoopConfig": SETTINGS.human_loop_config(ui_arn(path)),
        },
    )


# ---------------------------------------------------------------------------- flow definition
def test_first_run_creates_the_ui_and_flow_definition_and_waits_until_active(template):
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        creates_ui(stub, template)
        missing(stub, "describe_flow_definition")
        creates_flow(stub, template)
        stub.add_response("describe_flow_definition", flow("Initializing", ui_arn(template)))
        stub.add_response("describe_flow_definition", flow("Initializing", ui_arn(template)))
        stub.add_response("describe_flow_definition", flow("Active", ui_arn(template)))
        outcome = cloud.ensure_flow_definition(sagemaker, client("sagemaker-a2i-runtime"), SETTINGS, template, NO_WAIT)
        stub.assert_no_pending_responses()  # it waited until Active
    assert outcome.flow_definition_arn == FLOW_ARN
    assert outcome.changes == [f"created human task UI {ui_arn(template)}", f"created flow definition {FLOW_ARN}"]
    assert cloud.report(outcome).endswith(f"flow definition Active: {FLOW_ARN}")


def test_a_flow_definition_that_fails_reports_a2is_reason(template):
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        finds_ui(stub, template)
        missing(stub, "describe_flow_definition")
        creates_flow(stub, template)
        stub.add_response(
            "describe_flow_definition",
            flow("Failed", ui_arn(template), FailureReason="Role cannot be assumed by sagemaker.amazonaws.com"),
        )
        with pytest.raises(cloud.FlowDefinitionError, match="Failed, not Active: Role cannot be assumed"):
            cloud.ensure_flow_definition(sagemaker, client("sagemaker-a2i-runtime"), SETTINGS, template, NO_WAIT)


def test_a_flow_definition_that_never_leaves_initializing_is_reported_not_waited_on_forever(template):
    sagemaker = client("sagemaker")
    clock = iter(range(0, 1000, 10))
    polling = cloud.Polling(interval=10, timeout=30, sleep=lambda seconds: None, clock=lambda: next(clock))
    with Stubber(sagemaker) as stub:
        finds_ui(stub, template)
        missing(stub, "describe_flow_definition")
        creates_flow(stub, template)
        for _ in range(4):
            stub.add_response("describe_flow_definition", flow("Initializing", ui_arn(template)))
        with pytest.raises(cloud.FlowDefinitionError, match="still Initializing after 30 s"):
            cloud.ensure_flow_definition(sagemaker, client("sagemaker-a2i-runtime"), SETTINGS, template, polling)


def test_a_second_run_changes_nothing(template):
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:  # any create, delete or render call would fail: none is stubbed
        finds_ui(stub, template)
        stub.add_response("describe_flow_definition", flow("Active", ui_arn(template)))
        outcome = cloud.ensure_flow_definition(sagemaker, client("sagemaker-a2i-runtime"), SETTINGS, template, NO_WAIT)
    assert (outcome.flow_definition_arn, outcome.changes) == (FLOW_ARN, [])
    assert cloud.report(outcome).startswith("human task UI and flow definition unchanged")


def test_a_changed_template_makes_a_new_ui_and_replaces_the_flow_definition(template, tmp_path):
    old = tmp_path / "old.liquid.html"
    old.write_text("<crowd-form>old</crowd-form>")
    assert cloud.ui_name("vidmod-review", old.read_text()) != cloud.ui_name("vidmod-review", template.read_text())
    sagemaker, a2i = client("sagemaker"), client("sagemaker-a2i-runtime")
    with Stubber(sagemaker) as stub, Stubber(a2i) as a2i_stub:
        creates_ui(stub, template)
        stub.add_response("describe_flow_definition", flow("Active", ui_arn(old)))
        a2i_stub.add_response(
            "list_human_loops",
            {"HumanLoopSummaries": [{"HumanLoopName": "done", "HumanLoopStatus": "Completed"}]},
            {"FlowDefinitionArn": FLOW_ARN},
        )
        stub.add_response("delete_flow_definition", {}, {"FlowDefinitionName": "vidmod-review"})
        stub.add_response("describe_flow_definition", flow("Deleting", ui_arn(old)))
        missing(stub, "describe_flow_definition")
        creates_flow(stub, template)
        stub.add_response("describe_flow_definition", flow("Active", ui_arn(template)))
        old_name = cloud.ui_name("vidmod-review", old.read_text())
        stub.add_response("delete_human_task_ui", {}, {"HumanTaskUiName": old_name})
        outcome = cloud.ensure_flow_definition(sagemaker, a2i, SETTINGS, template, NO_WAIT)
        stub.assert_no_pending_responses()
    assert outcome.changes == [
        f"created human task UI {ui_arn(template)}",
        "replaced flow definition vidmod-review: HumanTaskUiArn changed",
        f"deleted the superseded human task UI {old_name}",
    ]


def test_changed_settings_are_refused_while_a_review_is_open(template):
    sagemaker, a2i = client("sagemaker"), client("sagemaker-a2i-runtime")
    more_reviewers = cloud.FlowSettings(*[getattr(SETTINGS, f) for f in ("name", "workteam_arn", "role_arn")],
                                        SETTINGS.output_path, task_count=2)  # fmt: skip
    with Stubber(sagemaker) as stub, Stubber(a2i) as a2i_stub:  # no delete or create is stubbed
        finds_ui(stub, template)
        stub.add_response("describe_flow_definition", flow("Active", ui_arn(template)))
        a2i_stub.add_response(
            "list_human_loops", {"HumanLoopSummaries": [{"HumanLoopName": "open", "HumanLoopStatus": "InProgress"}]}
        )
        with pytest.raises(cloud.FlowDefinitionError, match=r"TaskCount changed.* 1 review\(s\) are still open"):
            cloud.ensure_flow_definition(sagemaker, a2i, more_reviewers, template, NO_WAIT)


def test_a_template_a2i_cannot_render_is_refused_before_anything_is_created(template):
    template.write_text("{{ broken")
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        missing(stub, "describe_human_task_ui")
        stub.add_response(
            "render_ui_template",
            {"RenderedContent": "", "Errors": [{"Code": "TemplateError", "Message": "unexpected end of template"}]},
        )
        with pytest.raises(cloud.FlowDefinitionError, match="unexpected end of template"):
            cloud.ensure_flow_definition(sagemaker, client("sagemaker-a2i-runtime"), SETTINGS, template, NO_WAIT)


def test_the_ui_deployed_is_the_ui_file_unchanged():
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        missing(stub, "describe_human_task_ui")
        stub.add_response("render_ui_template", {"RenderedContent": "ok", "Errors": []})
        stub.add_response(
            "create_human_task_ui",
            {"HumanTaskUiArn": "arn:ui"},
            {"HumanTaskUiName": ANY, "UiTemplate": {"Content": cloud.UI_TEMPLATE.read_text(encoding="utf-8")}},
        )
        assert cloud.ensure_human_task_ui(sagemaker, SETTINGS, cloud.UI_TEMPLATE.read_text(encoding="utf-8"))[1]


# ---------------------------------------------------------------------------- make deploy
class Recorder:
    """Stands in for subprocess.run: records commands; ``python3.13 --version`` answers ``runs``."""

    def __init__(self, runs: bool = True):
        self.commands: list[list[str]] = []
        self.runs = runs

    def __call__(self, command, **kwargs):
        if command[1:] == ["--version"]:
            return subprocess.CompletedProcess(command, 0 if self.runs else 127)
        self.commands.append(list(command))
        return subprocess.CompletedProcess(command, 0)


def on_path(monkeypatch, *programs: str) -> None:
    monkeypatch.setattr(deploy.shutil, "which", lambda name: f"/usr/bin/{name}" if name in programs else None)


def test_sam_build_runs_without_a_container_when_python313_runs_here(monkeypatch):
    on_path(monkeypatch, "python3.13", "docker")
    assert deploy.build_command("sam", Recorder()) == (["sam", "build"], None)


@pytest.mark.parametrize("python", [(), ("python3.13",)], ids=["absent", "shim-that-does-not-run"])
def test_without_python313_sam_build_uses_a_container_and_says_why(monkeypatch, python):
    on_path(monkeypatch, "docker", *python)
    command, why = deploy.build_command("sam", Recorder(runs=False))
    assert command == ["sam", "build", "--use-container"]
    assert "python3.13 is not on PATH" in why and "Docker" in why


def test_without_python313_or_docker_deploy_stops_before_building(monkeypatch):
    on_path(monkeypatch)
    with pytest.raises(deploy.DeployError, match=r"needs python3\.13 .* or Docker"):
        deploy.build_command("sam", Recorder())


def test_the_repositorys_samconfig_makes_the_first_deploy_guided():
    settings = deploy.SamSettings.read(deploy.ROOT / "samconfig.toml")
    assert (settings.stack_name, settings.guided_before) == ("vidmod", False)
    command = deploy.deploy_command("sam", settings, "vidmod", FLOW_ARN)
    assert command[:3] == ["sam", "deploy", "--no-fail-on-empty-changeset"] and "--guided" in command
    assert command[-2:] == ["--parameter-overrides", f"FlowDefinitionArn={FLOW_ARN}"]


def guided_samconfig(path: Path) -> Path:
    """What `sam deploy --guided` leaves in samconfig.toml."""
    text = (deploy.ROOT / "samconfig.toml").read_text()
    text = text.replace("[default.deploy.parameters]\n", f'[default.deploy.parameters]\nregion = "{REGION}"\n')
    path.write_text(text + f'\nparameter_overrides = "FlowDefinitionArn={FLOW_ARN}"\n')
    return path


def test_after_the_guided_deploy_sam_deploy_reads_samconfig(tmp_path):
    settings = deploy.SamSettings.read(guided_samconfig(tmp_path / "samconfig.toml"))
    assert (settings.region, settings.guided_before) == (REGION, True)
    command = deploy.deploy_command("sam", settings, "vidmod", None)
    assert "--guided" not in command and "--parameter-overrides" not in command


class Session:
    """boto3 Session stand-in whose clients are stubbed."""

    def __init__(self, region_name: str | None = REGION):
        self.region_name = region_name
        self.clients = {name: client(name) for name in ("sts", "cloudformation")}

    def client(self, name: str):
        return self.clients[name]


def arguments(config: Path, **values) -> argparse.Namespace:
    base = {
        "sam": "sam",
        "config": config,
        "stack_name": None,
        "region": None,
        "workteam_arn": None,
        "task_count": None,
    }
    return argparse.Namespace(**base | values)


def test_make_deploy_first_time_builds_guides_the_deploy_then_makes_the_flow_definition(monkeypatch, tmp_path):
    on_path(monkeypatch, "python3.13")
    config = tmp_path / "samconfig.toml"
    config.write_text((deploy.ROOT / "samconfig.toml").read_text())
    session, run, flows = Session(), Recorder(), []
    stub = Stubber(session.clients["sts"])
    stub.add_response(
        "get_caller_identity", {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops", "UserId": "AIDAEXAMPLE"}
    )
    stub.activate()

    def guided_sam(command, **kwargs):  # the guided run saves its answers
        if "--guided" in command:
            guided_samconfig(config)
        return run(command, **kwargs)

    def flow_definition(session, stack_name, workteam_arn, task_count):
        flows.append((session.region_name, stack_name, workteam_arn))
        return cloud.Outcome(FLOW_ARN, [f"created flow definition {FLOW_ARN}"])

    monkeypatch.setattr(cloud, "flow_definition_for_stack", flow_definition)
    args = arguments(config, workteam_arn=SETTINGS.workteam_arn)
    deploy.deploy(args, guided_sam, lambda region_name: session)
    assert run.commands == [
        ["sam", "build"],
        ["sam", "deploy", "--no-fail-on-empty-changeset", "--guided", "--stack-name", "vidmod",
         "--parameter-overrides", f"FlowDefinitionArn={FLOW_ARN}", "--region", REGION],
    ]  # fmt: skip
    assert flows == [(REGION, "vidmod", SETTINGS.workteam_arn)]

    run.commands.clear()  # the second time: from samconfig, no work team needed (the flow definition has it)
    deploy.deploy(arguments(config), run, lambda region_name: session)
    assert run.commands == [
        ["sam", "build"],
        ["sam", "deploy", "--no-fail-on-empty-changeset", "--stack-name", "vidmod", "--region", REGION],
    ]
    assert flows[-1] == (REGION, "vidmod", None)


def test_the_first_deploy_without_a_work_team_stops_before_building(tmp_path):
    config = tmp_path / "samconfig.toml"
    config.write_text((deploy.ROOT / "samconfig.toml").read_text())
    run = Recorder()
    with pytest.raises(deploy.DeployError, match="WORKTEAM_ARN="):
        deploy.deploy(arguments(config), run, lambda region_name: Session())
    assert run.commands == []


def test_flow_definition_for_stack_takes_the_name_from_the_stacks_parameter_and_keeps_the_work_team(monkeypatch):
    stack = {
        "StackName": "vidmod",
        "CreationTime": "2025-01-01T00:00:00Z",
        "StackStatus": "UPDATE_COMPLETE",
        "Parameters": [{"ParameterKey": "FlowDefinitionArn", "ParameterValue": FLOW_ARN}],
        "Outputs": [
            {"OutputKey": "A2IFlowDefinitionRoleArn", "OutputValue": SETTINGS.role_arn},
            {"OutputKey": "A2IOutputPath", "OutputValue": SETTINGS.output_path},
        ],
    }
    session = Session()
    session.clients["sagemaker"], session.clients["sagemaker-a2i-runtime"] = client("sagemaker"), client("sagemaker")
    asked = []
    monkeypatch.setattr(cloud, "ensure_flow_definition", lambda sm, a2i, settings: asked.append(settings) or
                        cloud.Outcome(FLOW_ARN))  # fmt: skip
    with Stubber(session.clients["cloudformation"]) as cfn, Stubber(session.clients["sagemaker"]) as sm:
        cfn.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "vidmod"})
        sm.add_response("describe_flow_definition", flow("Active", "arn:ui", task_count_of(3)))
        cloud.flow_definition_for_stack(session, "vidmod")
    assert asked == [cloud.FlowSettings("vidmod-review", SETTINGS.workteam_arn, SETTINGS.role_arn,
                                        SETTINGS.output_path, task_count=3)]  # fmt: skip


def task_count_of(count: int) -> cloud.FlowSettings:
    return cloud.FlowSettings(SETTINGS.name, SETTINGS.workteam_arn, SETTINGS.role_arn, SETTINGS.output_path, count)


def deployed_stack(**parameters: str) -> dict:
    return {
        "StackName": "vidmod",
        "CreationTime": "2025-01-01T00:00:00Z",
        "StackStatus": "UPDATE_COMPLETE",
        "Parameters": [
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in ({"FlowDefinitionArn": FLOW_ARN} | parameters).items()
        ],
        "Outputs": [
            {"OutputKey": "A2IFlowDefinitionRoleArn", "OutputValue": SETTINGS.role_arn},
            {"OutputKey": "A2IOutputPath", "OutputValue": SETTINGS.output_path},
        ],
    }


@pytest.mark.parametrize(
    ("reviewers", "given", "current", "expected"),
    [
        ("2", None, 1, 2),  # the stack's ReviewersPerVideo is the default
        ("3", None, 3, 3),
        ("1", None, 3, 1),  # back to one reviewer: the parameter, not the old flow definition
        ("2", 3, 1, 3),  # --task-count overrides it
        (None, None, 3, 3),  # a stack from before the parameter: the current flow definition's
    ],
)
def test_the_task_count_is_the_stacks_reviewers_per_video_unless_given(
    monkeypatch, reviewers, given, current, expected
):
    session = Session()
    session.clients["sagemaker"], session.clients["sagemaker-a2i-runtime"] = client("sagemaker"), client("sagemaker")
    asked = []
    monkeypatch.setattr(cloud, "ensure_flow_definition", lambda sm, a2i, settings: asked.append(settings) or
                        cloud.Outcome(FLOW_ARN))  # fmt: skip
    stack = deployed_stack(**({"ReviewersPerVideo": reviewers} if reviewers else {}))
    with Stubber(session.clients["cloudformation"]) as cfn, Stubber(session.clients["sagemaker"]) as sm:
        cfn.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "vidmod"})
        sm.add_response("describe_flow_definition", flow("Active", "arn:ui", task_count_of(current)))
        cloud.flow_definition_for_stack(session, "vidmod", task_count=given)
    assert asked == [task_count_of(expected)]


def test_a_changed_reviewers_per_video_replaces_the_flow_definition(template, monkeypatch):
    """ReviewersPerVideo 1 → 3 after a sam deploy: A2I cannot update a flow definition, so it is made again."""
    session = Session()
    session.clients["sagemaker"] = client("sagemaker")
    session.clients["sagemaker-a2i-runtime"] = client("sagemaker-a2i-runtime")
    three = task_count_of(3)
    sagemaker, a2i = session.clients["sagemaker"], session.clients["sagemaker-a2i-runtime"]
    with (
        Stubber(session.clients["cloudformation"]) as cfn,
        Stubber(sagemaker) as stub,
        Stubber(a2i) as a2i_stub,
    ):
        cfn.add_response(
            "describe_stacks", {"Stacks": [deployed_stack(ReviewersPerVideo="3")]}, {"StackName": "vidmod"}
        )
        stub.add_response("describe_flow_definition", flow("Active", ui_arn(template)))  # TaskCount 1, by the stack
        finds_ui(stub, template)
        stub.add_response("describe_flow_definition", flow("Active", ui_arn(template)))
        a2i_stub.add_response("list_human_loops", {"HumanLoopSummaries": []}, {"FlowDefinitionArn": FLOW_ARN})
        stub.add_response("delete_flow_definition", {}, {"FlowDefinitionName": "vidmod-review"})
        missing(stub, "describe_flow_definition")
        stub.add_response(
            "create_flow_definition",
            {"FlowDefinitionArn": FLOW_ARN},
            {
                "FlowDefinitionName": "vidmod-review",
                "RoleArn": SETTINGS.role_arn,
                "OutputConfig": {"S3OutputPath": SETTINGS.output_path},
                "HumanLoopConfig": three.human_loop_config(ui_arn(template)),
            },
        )
        stub.add_response("describe_flow_definition", flow("Active", ui_arn(template), three))
        original = cloud.ensure_flow_definition  # with the test's template and without waiting
        monkeypatch.setattr(cloud, "ensure_flow_definition", lambda sm, a2i_client, settings: original(
            sm, a2i_client, settings, template, NO_WAIT))  # fmt: skip
        outcome = cloud.flow_definition_for_stack(session, "vidmod")
        stub.assert_no_pending_responses()
    assert outcome.changes == ["replaced flow definition vidmod-review: TaskCount changed"]


# ---------------------------------------------------------------------------- make undeploy
def test_make_undeploy_deletes_the_stack_then_says_what_it_kept_and_how_to_remove_it(tmp_path, capsys):
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  DecisionsTable: {Type: AWS::DynamoDB::Table, DeletionPolicy: Retain, UpdateReplacePolicy: Retain}\n"
        "  AuditBucket: {Type: AWS::S3::Bucket, DeletionPolicy: Retain, UpdateReplacePolicy: Retain}\n"
        "  EventDeliveryDLQ: {Type: AWS::SQS::Queue, DeletionPolicy: Retain, UpdateReplacePolicy: Retain}\n"
        "  SubmitFunction: {Type: AWS::Serverless::Function}\n"
    )
    config = guided_samconfig(tmp_path / "samconfig.toml")
    session, run = Session(), Recorder()
    resources = [("DecisionsTable", "AWS::DynamoDB::Table", "vidmod-DecisionsTable-1"),
                 ("AuditBucket", "AWS::S3::Bucket", "vidmod-auditbucket-1"),
                 ("EventDeliveryDLQ", "AWS::SQS::Queue", f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/dlq"),
                 ("SubmitFunction", "AWS::Lambda::Function", "vidmod-SubmitFunction-1")]  # fmt: skip
    summaries = [
        {"LogicalResourceId": logical, "ResourceType": kind, "PhysicalResourceId": physical,
         "LastUpdatedTimestamp": "2025-01-01T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}
        for logical, kind, physical in resources
    ]  # fmt: skip
    stack = {"StackName": "vidmod", "CreationTime": "2025-01-01T00:00:00Z", "StackStatus": "CREATE_COMPLETE",
             "Parameters": [{"ParameterKey": "FlowDefinitionArn", "ParameterValue": FLOW_ARN}]}  # fmt: skip
    with Stubber(session.clients["cloudformation"]) as cfn:
        cfn.add_response("describe_stacks", {"Stacks": [stack]})
        cfn.add_response("list_stack_resources", {"StackResourceSummaries": summaries})
        cfn.add_client_error("describe_stacks", "ValidationError", "Stack with id vidmod does not exist")
        deploy.undeploy(arguments(config), run, lambda region_name: session, template)
    assert run.commands == [["sam", "delete", "--stack-name", "vidmod", "--region", REGION]]
    said = capsys.readouterr().out
    assert (
        "vidmod-DecisionsTable-1" in said and "aws dynamodb delete-table --table-name vidmod-DecisionsTable-1" in said
    )
    assert "vidmod-auditbucket-1" in said and "--bypass-governance-retention" in said
    assert f"aws sqs delete-queue --queue-url https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/dlq" in said
    assert "SubmitFunction" not in said  # deleted with the stack
    assert "aws sagemaker delete-flow-definition --flow-definition-name vidmod-review" in said


def test_make_undeploy_of_a_stack_that_is_gone_deletes_nothing(tmp_path, capsys):
    session, run = Session(), Recorder()
    with Stubber(session.clients["cloudformation"]) as cfn:
        cfn.add_client_error("describe_stacks", "ValidationError", "Stack with id vidmod does not exist")
        deploy.undeploy(arguments(guided_samconfig(tmp_path / "samconfig.toml")), run, lambda region_name: session)
    assert run.commands == [] and "nothing to delete" in capsys.readouterr().out
