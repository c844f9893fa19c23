"""Create or update the A2I human task UI (from ui/) and flow definition of a deployed stack, and wait until Active.

CloudFormation has no resource for A2I flow definitions, so this is the step after `sam deploy` (``make deploy``
runs it). Neither a human task UI nor a flow definition can be changed in place (SageMaker has no update call
for either), so:

- the UI's name carries a hash of the template (``<flow>-ui-<sha256[:12]>``): the same ui/ file finds the UI
  it created before, a changed one creates a new UI;
- the flow definition keeps its name, because the stack's ``FlowDefinitionArn`` parameter names it: when its
  settings differ (a new UI, work team, task count...) or it Failed, it is deleted and created again, and
  refused while a review is still open on it (deleting it would strand that reviewer's work).

Its ``TaskCount`` (distinct reviewers per video) is the stack's ``ReviewersPerVideo`` parameter unless
``--task-count`` says otherwise.

Running it twice changes nothing the second time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

UI_TEMPLATE = Path(__file__).resolve().parents[1] / "ui" / "moderation-review.liquid.html"
SAMPLE_INPUT = {
    "schemaVersion": "1",
    "video": {"uri": "s3://example-bucket/sample.mp4", "name": "sample.mp4", "durationMillis": 10000},
    "decision": {
        "ruleSetVersion": "sample",
        "reasons": [{"category": "Violence", "label": "Weapons", "band": "review", "maxConfidence": 80.0}],
    },
    "uncoveredCategories": [],
    "coveredCategories": ["Violence"],
    "coverage": [{"category": "Violence", "checked": ["Weapons"], "notChecked": []}],
    "segments": [
        {
            "index": 0,
            "id": "seg-0",
            "name": "Weapons",
            "parentName": "Violence",
            "category": "Violence",
            "taxonomyLevel": 2,
            "startMillis": 1000,
            "endMillis": 3000,
            "maxConfidence": 80.0,
            "detections": 3,
        }
    ],
    "segmentsTruncated": False,
}
TASK_TITLE = "Moderate a video"
TASK_DESCRIPTION = "Watch the flagged segments, judge each detection, and approve or reject the video."
UI_SUFFIX = "-ui-"
HASH_CHARACTERS = 12
NAME_LIMIT = 63 - len(UI_SUFFIX) - HASH_CHARACTERS  # a UI name is at most 63 characters too
OPEN_LOOP_STATUSES = {"InProgress", "Stopping"}


class FlowDefinitionError(RuntimeError):
    """The flow definition could not be made Active (A2I's reason is in the message)."""


@dataclass(frozen=True)
class FlowSettings:
    name: str
    workteam_arn: str
    role_arn: str
    output_path: str
    task_count: int = 1
    availability_seconds: int = 7 * 24 * 3600
    time_limit_seconds: int = 3600

    def __post_init__(self) -> None:
        if len(self.name) > NAME_LIMIT:
            raise ValueError(f"flow definition name {self.name!r} is longer than {NAME_LIMIT} characters")

    def human_loop_config(self, ui_arn: str) -> dict:
        return {
            "WorkteamArn": self.workteam_arn,
            "HumanTaskUiArn": ui_arn,
            "TaskTitle": TASK_TITLE,
            "TaskDescription": TASK_DESCRIPTION,
            "TaskCount": self.task_count,
            "TaskAvailabilityLifetimeInSeconds": self.availability_seconds,
            "TaskTimeLimitInSeconds": self.time_limit_seconds,
        }


@dataclass(frozen=True)
class Polling:
    """How often and how long to wait for A2I (tests pass a sleep that does not sleep)."""

    interval: float = 5
    timeout: float = 900
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclass
class Outcome:
    flow_definition_arn: str
    changes: list[str] = field(default_factory=list)  # empty: everything was already as asked


def ui_name(flow_name: str, content: str) -> str:
    """The UI's name changes with its content: a UI cannot be updated, a new template is a new UI."""
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:HASH_CHARACTERS]
    return f"{flow_name}{UI_SUFFIX}{digest}"


def stack_outputs(cloudformation, stack_name: str) -> dict[str, str]:
    return describe_stack(cloudformation, stack_name)[0]


def describe_stack(cloudformation, stack_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The stack's outputs and parameters."""
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs, {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def stack_reviewers(parameters: dict[str, str]) -> int | None:
    """The stack's ``ReviewersPerVideo`` (the flow definition's TaskCount); None for a stack without it."""
    value = parameters.get("ReviewersPerVideo", "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise FlowDefinitionError(f"the stack's ReviewersPerVideo {value!r} is not a number of reviewers") from None


def _not_found(error: ClientError) -> bool:
    return error.response["Error"]["Code"] in {"ResourceNotFound", "ResourceNotFoundException"}


def describe_flow_definition(sagemaker, name: str) -> dict | None:
    try:
        return sagemaker.describe_flow_definition(FlowDefinitionName=name)
    except ClientError as error:
        if _not_found(error):
            return None
        raise


def ensure_human_task_ui(sagemaker, settings: FlowSettings, content: str) -> tuple[str, bool]:
    """The UI for this template content, created (after A2I rendered it with a sample input) if it is new."""
    name = ui_name(settings.name, content)
    try:
        return sagemaker.describe_human_task_ui(HumanTaskUiName=name)["HumanTaskUiArn"], False
    except ClientError as error:
        if not _not_found(error):
            raise
    rendered = sagemaker.render_ui_template(
        UiTemplate={"Content": content}, Task={"Input": json.dumps(SAMPLE_INPUT)}, RoleArn=settings.role_arn
    )
    if rendered.get("Errors"):
        problems = "; ".join(f"{e.get('Code')}: {e.get('Message')}" for e in rendered["Errors"])
        raise FlowDefinitionError(f"A2I could not render the review template: {problems}")
    return sagemaker.create_human_task_ui(HumanTaskUiName=name, UiTemplate={"Content": content})["HumanTaskUiArn"], True


def differences(described: dict, settings: FlowSettings, ui_arn: str) -> list[str]:
    """The settings of an existing flow definition that are not what is asked for."""
    wanted = {**settings.human_loop_config(ui_arn), "RoleArn": settings.role_arn, "S3OutputPath": settings.output_path}
    actual = {
        **described.get("HumanLoopConfig", {}),
        "RoleArn": described.get("RoleArn"),
        "S3OutputPath": described.get("OutputConfig", {}).get("S3OutputPath"),
    }
    return [key for key, value in wanted.items() if actual.get(key) != value]


def open_loops(a2i, flow_definition_arn: str) -> int:
    pages = a2i.get_paginator("list_human_loops").paginate(FlowDefinitionArn=flow_definition_arn)
    return sum(
        summary["HumanLoopStatus"] in OPEN_LOOP_STATUSES for page in pages for summary in page["HumanLoopSummaries"]
    )


def wait_while(sagemaker, name: str, statuses: set[str], polling: Polling) -> dict | None:
    """Describe the flow definition until its status leaves ``statuses``; None once it no longer exists."""
    deadline = polling.clock() + polling.timeout
    while True:
        described = describe_flow_definition(sagemaker, name)
        if described is None or described["FlowDefinitionStatus"] not in statuses:
            return described
        if polling.clock() >= deadline:
            raise FlowDefinitionError(
                f"flow definition {name} still {described['FlowDefinitionStatus']} after {polling.timeout:.0f} s"
            )
        polling.sleep(polling.interval)


def wait_until_active(sagemaker, name: str, polling: Polling) -> dict:
    described = wait_while(sagemaker, name, {"Initializing"}, polling)
    status = described["FlowDefinitionStatus"] if described else "gone"
    if status != "Active":
        reason = (described or {}).get("FailureReason") or "no reason given"
        raise FlowDefinitionError(f"flow definition {name} is {status}, not Active: {reason}")
    return described


def _replace(sagemaker, a2i, described: dict, changed: list[str], polling: Polling) -> str:
    """Delete a flow definition that must change; refused while reviews are open on it."""
    name, arn = described["FlowDefinitionName"], described["FlowDefinitionArn"]
    if described["FlowDefinitionStatus"] == "Failed":
        why = f"it Failed ({described.get('FailureReason') or 'no reason given'})"
    else:
        why = f"{', '.join(changed)} changed"
        if count := open_loops(a2i, arn):
            raise FlowDefinitionError(
                f"flow definition {name} must be replaced ({why}; A2I cannot update it in place), but {count} "
                "review(s) are still open on it: let them finish (or stop them), then deploy again"
            )
    try:
        sagemaker.delete_flow_definition(FlowDefinitionName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceInUse":
            raise FlowDefinitionError(f"A2I refused to delete flow definition {name} to replace it: {error}") from None
        if not _not_found(error):
            raise
    if wait_while(sagemaker, name, {"Deleting", "Active", "Failed"}, polling) is not None:
        raise FlowDefinitionError(f"flow definition {name} was not deleted")
    return f"replaced flow definition {name}: {why}"


def ensure_flow_definition(
    sagemaker, a2i, settings: FlowSettings, ui_template: Path = UI_TEMPLATE, polling: Polling | None = None
) -> Outcome:
    """Make the UI and flow definition what ui/ and ``settings`` say, and wait until the flow definition is Active."""
    polling = polling or Polling()
    content = ui_template.read_text(encoding="utf-8")
    ui_arn, ui_created = ensure_human_task_ui(sagemaker, settings, content)
    changes = [f"created human task UI {ui_arn}"] if ui_created else []
    described = wait_while(sagemaker, settings.name, {"Initializing", "Deleting"}, polling)
    if described is not None:
        changed = differences(described, settings, ui_arn)
        if described["FlowDefinitionStatus"] == "Active" and not changed:
            return Outcome(described["FlowDefinitionArn"], changes)
        changes.append(_replace(sagemaker, a2i, described, changed, polling))
    arn = sagemaker.create_flow_definition(
        FlowDefinitionName=settings.name,
        HumanLoopConfig=settings.human_loop_config(ui_arn),
        OutputConfig={"S3OutputPath": settings.output_path},
        RoleArn=settings.role_arn,
    )["FlowDefinitionArn"]
    wait_until_active(sagemaker, settings.name, polling)
    if described is None:
        changes.append(f"created flow definition {arn}")
    old_ui = described.get("HumanLoopConfig", {}).get("HumanTaskUiArn", "") if described else ""
    old_ui_name = old_ui.rpartition("/")[2]
    if old_ui and old_ui != ui_arn and old_ui_name.startswith(f"{settings.name}-ui"):
        _delete_ui(sagemaker, old_ui_name)
        changes.append(f"deleted the superseded human task UI {old_ui_name}")
    return Outcome(arn, changes)


def _delete_ui(sagemaker, name: str) -> None:
    try:
        sagemaker.delete_human_task_ui(HumanTaskUiName=name)
    except ClientError as error:
        if not _not_found(error):
            raise


def flow_definition_for_stack(
    session, stack_name: str, workteam_arn: str | None = None, task_count: int | None = None
) -> Outcome:
    """What ``make deploy`` runs after ``sam deploy``: the flow definition the stack's parameter names. The task
    count not given is the stack's ``ReviewersPerVideo`` (else the existing flow definition's, else 1); the work
    team not given is the existing flow definition's: a later deploy need not repeat it."""
    outputs, parameters = describe_stack(session.client("cloudformation"), stack_name)
    flow_arn = parameters["FlowDefinitionArn"]
    region, name = flow_arn.split(":")[3], flow_arn.rpartition("/")[2]
    if region != session.region_name:
        raise FlowDefinitionError(
            f"the stack's FlowDefinitionArn {flow_arn} is in {region}, the stack in {session.region_name}: "
            f"deploy with FlowDefinitionArn=arn:aws:sagemaker:{session.region_name}:ACCOUNT:flow-definition/{name}"
        )
    sagemaker = session.client("sagemaker")
    current = (describe_flow_definition(sagemaker, name) or {}).get("HumanLoopConfig", {})
    workteam_arn = workteam_arn or current.get("WorkteamArn")
    task_count = task_count or stack_reviewers(parameters) or current.get("TaskCount") or 1
    if not workteam_arn:
        raise FlowDefinitionError(
            f"no flow definition {name} yet: give the ARN of your reviewers' private work team (--workteam-arn, "
            "or WORKTEAM_ARN=... for make deploy)"
        )
    settings = FlowSettings(
        name, workteam_arn, outputs["A2IFlowDefinitionRoleArn"], outputs["A2IOutputPath"], task_count=task_count
    )
    outcome = ensure_flow_definition(sagemaker, session.client("sagemaker-a2i-runtime"), settings)
    if outcome.flow_definition_arn != flow_arn:
        raise FlowDefinitionError(f"created {outcome.flow_definition_arn}, but the stack uses {flow_arn}")
    return outcome


def report(outcome: Outcome) -> str:
    lines = outcome.changes or ["human task UI and flow definition unchanged"]
    return "\n".join([*lines, f"flow definition Active: {outcome.flow_definition_arn}"])


def _create(args: argparse.Namespace) -> int:
    session = boto3.session.Session(region_name=args.region)
    try:
        outcome = flow_definition_for_stack(session, args.stack_name, args.workteam_arn, args.task_count)
    except (FlowDefinitionError, ValueError) as error:
        raise SystemExit(f"vidmod cloud: {error}") from None
    print(report(outcome))
    return 0


def add_commands(subparsers) -> None:
    cloud = subparsers.add_parser("cloud", help="helpers for the AWS deployment")
    commands = cloud.add_subparsers(dest="cloud_command", required=True)
    create = commands.add_parser(
        "create-flow-definition",
        help="create or update the A2I human task UI (ui/) and the flow definition the stack names; wait until "
        "Active (make deploy runs it)",
    )
    create.add_argument("--stack-name", default="vidmod")
    create.add_argument(
        "--workteam-arn", default=None, help="private work team of your reviewers (default: the current one's)"
    )
    create.add_argument(
        "--task-count", type=int, default=None, help="reviewers per video (default: the stack's ReviewersPerVideo)"
    )
    create.add_argument("--region", default=None)
    create.set_defaults(func=_create)
