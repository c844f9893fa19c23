"""Create the A2I human task UI (from ui/) and flow definition for a deployed stack.

CloudFormation has no resource for A2I flow definitions, so this is the documented step between
`sam deploy` and the first review. The flow definition ARN is deterministic from its name, which is what
the stack's FlowDefinitionArn parameter holds; run this after the first deploy.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import boto3

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


@dataclass(frozen=True)
class FlowSettings:
    name: str
    workteam_arn: str
    role_arn: str
    output_path: str
    task_count: int = 1
    availability_seconds: int = 7 * 24 * 3600
    time_limit_seconds: int = 3600


def stack_outputs(cloudformation, stack_name: str) -> dict[str, str]:
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def create_flow_definition(sagemaker, settings: FlowSettings, ui_template: Path = UI_TEMPLATE) -> str:
    """Render-check the template, create the UI, then the flow definition; returns the flow definition ARN."""
    content = ui_template.read_text(encoding="utf-8")
    rendered = sagemaker.render_ui_template(
        UiTemplate={"Content": content}, Task={"Input": json.dumps(SAMPLE_INPUT)}, RoleArn=settings.role_arn
    )
    if rendered.get("Errors"):
        problems = "; ".join(f"{e.get('Code')}: {e.get('Message')}" for e in rendered["Errors"])
        raise RuntimeError(f"A2I could not render {ui_template.name}: {problems}")
    ui_arn = sagemaker.create_human_task_ui(HumanTaskUiName=f"{settings.name}-ui", UiTemplate={"Content": content})[
        "HumanTaskUiArn"
    ]
    return sagemaker.create_flow_definition(
        FlowDefinitionName=settings.name,
        HumanLoopConfig={
            "WorkteamArn": settings.workteam_arn,
            "HumanTaskUiArn": ui_arn,
            "TaskTitle": "Moderate a video",
            "TaskDescription": "Watch the flagged segments, judge each detection, and approve or reject the video.",
            "TaskCount": settings.task_count,
            "TaskAvailabilityLifetimeInSeconds": settings.availability_seconds,
            "TaskTimeLimitInSeconds": settings.time_limit_seconds,
        },
        OutputConfig={"S3OutputPath": settings.output_path},
        RoleArn=settings.role_arn,
    )["FlowDefinitionArn"]


def _create(args: argparse.Namespace) -> int:
    session = boto3.session.Session(region_name=args.region)
    outputs = stack_outputs(session.client("cloudformation"), args.stack_name)
    settings = FlowSettings(
        args.name,
        args.workteam_arn,
        outputs["A2IFlowDefinitionRoleArn"],
        outputs["A2IOutputPath"],
        task_count=args.task_count,
    )
    print(create_flow_definition(session.client("sagemaker"), settings))
    return 0


def add_commands(subparsers) -> None:
    cloud = subparsers.add_parser("cloud", help="helpers for the AWS deployment")
    commands = cloud.add_subparsers(dest="cloud_command", required=True)
    create = commands.add_parser(
        "create-flow-definition",
        help="create the A2I human task UI from ui/ and the flow definition for a deployed stack",
    )
    create.add_argument("--stack-name", default="vidmod")
    create.add_argument("--name", default="vidmod-review", help="flow definition name (the ARN's last part)")
    create.add_argument("--workteam-arn", required=True, help="private work team of your reviewers")
    create.add_argument("--task-count", type=int, default=1, help="reviewers per video")
    create.add_argument("--region", default=None)
    create.set_defaults(func=_create)
