"""``make deploy`` and ``make undeploy``: the stack and its A2I flow definition in one idempotent command each.

deploy: ``sam build`` (without a container when python3.13, the functions' runtime, runs here; otherwise in the
SAM build image, which needs Docker), ``sam deploy --guided`` the first time (samconfig.toml has no deploy
settings yet: the answers are saved there) and ``sam deploy`` from samconfig.toml afterwards, then the human task
UI and flow definition (``vidmod.cloud``), waiting until it is Active. A second run changes nothing.

undeploy: ``sam delete``, then what it kept on purpose (records, evidence, logs; ``DeletionPolicy: Retain`` in
template.yaml) and what lives outside the stack, each with the command that removes it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from vidmod import cloud
from vidmod.emulator.template import load_template

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "python3.13"  # template.yaml's Globals Runtime
RETAINED = {"Retain", "RetainExceptOnCreate"}
Run = Callable[..., subprocess.CompletedProcess]
NO_REGION = "no AWS Region: set AWS_REGION or AWS_DEFAULT_REGION (or a profile's region), or REGION=... for make {}"


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class SamSettings:
    """What samconfig.toml holds for ``sam deploy`` (the ``default`` environment)."""

    stack_name: str
    region: str | None
    guided_before: bool  # `sam deploy --guided` saved its answers (it always saves the region)

    @classmethod
    def read(cls, path: Path) -> SamSettings:
        config = tomllib.loads(path.read_text(encoding="utf-8")).get("default", {}) if path.exists() else {}
        merged = config.get("global", {}).get("parameters", {}) | config.get("deploy", {}).get("parameters", {})
        deploy = config.get("deploy", {}).get("parameters", {})
        return cls(merged.get("stack_name", "vidmod"), merged.get("region"), "region" in deploy)


def build_command(sam: str, run: Run = subprocess.run) -> tuple[list[str], str | None]:
    """``sam build`` without a container when python3.13 runs here; else with one. Returns (command, why)."""
    python = shutil.which(RUNTIME)
    if python and run([python, "--version"], capture_output=True).returncode == 0:  # a pyenv shim may not run
        return [sam, "build"], None
    if not shutil.which("docker"):
        raise DeployError(
            f"sam build needs {RUNTIME} (the functions' runtime) on PATH, or Docker to build in a container: "
            f"install Python 3.13 (e.g. `pyenv install 3.13`) or Docker"
        )
    return [sam, "build", "--use-container"], (
        f"{RUNTIME} is not on PATH, so sam build runs in the SAM build image (--use-container; Docker must be "
        f"running). Install Python 3.13 to build without a container."
    )


def deploy_command(sam: str, settings: SamSettings, stack_name: str, flow_definition_arn: str | None) -> list[str]:
    """Guided the first time (its answers go to samconfig.toml), from samconfig.toml afterwards."""
    command = [sam, "deploy", "--no-fail-on-empty-changeset"]  # nothing to change is success, not an error
    if settings.guided_before:
        return [*command, "--stack-name", stack_name]
    return [*command, "--guided", "--stack-name", stack_name, "--parameter-overrides",
            f"FlowDefinitionArn={flow_definition_arn}"]  # fmt: skip


def expected_flow_definition_arn(session, name: str = "vidmod-review") -> str:
    """Deterministic from the account, the Region and the name: the stack is deployed with it before it exists."""
    account = session.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:sagemaker:{session.region_name}:{account}:flow-definition/{name}"


def _region(args: argparse.Namespace, settings: SamSettings) -> str | None:
    """--region, else samconfig.toml's, else AWS_REGION; None lets boto3's default chain decide."""
    return args.region or settings.region or os.environ.get("AWS_REGION")


def _run(command: list[str], run: Run) -> None:
    print(f"$ {shlex.join(command)}", flush=True)
    if (returncode := run(command, cwd=ROOT).returncode) != 0:
        raise DeployError(f"`{shlex.join(command)}` failed (exit code {returncode})")


def deploy(args: argparse.Namespace, run: Run = subprocess.run, session_factory=boto3.session.Session) -> None:
    settings = SamSettings.read(args.config)
    stack_name = args.stack_name or settings.stack_name
    session = session_factory(region_name=_region(args, settings))
    if not session.region_name:
        raise DeployError(NO_REGION.format("deploy"))
    if not settings.guided_before and not args.workteam_arn:
        raise DeployError(
            "the first deploy needs the ARN of your reviewers' private work team: "
            "make deploy WORKTEAM_ARN=arn:aws:sagemaker:REGION:ACCOUNT:workteam/private-crowd/TEAM"
        )
    flow_arn = None if settings.guided_before else expected_flow_definition_arn(session)
    command, why = build_command(args.sam, run)
    if why:
        print(why, flush=True)
    _run(command, run)
    deployed = deploy_command(args.sam, settings, stack_name, flow_arn)
    _run([*deployed, "--region", session.region_name], run)  # the guided prompt's default too
    after = SamSettings.read(args.config)  # the guided run may have chosen another stack name or Region
    if not settings.guided_before:
        stack_name, region = after.stack_name, args.region or after.region
        session = session_factory(region_name=region)
    outcome = cloud.flow_definition_for_stack(session, stack_name, args.workteam_arn, args.task_count)
    print(cloud.report(outcome))


# ---------------------------------------------------------------------------- undeploy
def retained_resources(template: Path) -> dict[str, str]:
    """Logical id → type of the resources ``sam delete`` leaves in place (DeletionPolicy Retain)."""
    resources = load_template(template)["Resources"]
    return {name: spec["Type"] for name, spec in resources.items() if spec.get("DeletionPolicy") in RETAINED}


def removal_command(resource_type: str, physical_id: str, region: str) -> str:
    """How to remove a kept resource deliberately."""
    where = f"--region {region}"
    if resource_type == "AWS::DynamoDB::Table":
        return (
            f"aws dynamodb update-table --table-name {physical_id} --no-deletion-protection-enabled {where}; "
            f"aws dynamodb delete-table --table-name {physical_id} {where}"
        )
    if resource_type == "AWS::S3::Bucket":
        return (
            f"delete every object version (versioned; Object Lock GOVERNANCE retention needs "
            f"--bypass-governance-retention), then: aws s3api delete-bucket --bucket {physical_id} {where}"
        )
    if resource_type == "AWS::SQS::Queue":
        return f"aws sqs delete-queue --queue-url {physical_id} {where}"
    if resource_type == "AWS::Logs::LogGroup":
        return f"aws logs delete-log-group --log-group-name {physical_id} {where}"
    return f"delete {physical_id} ({resource_type}) in the console or with the AWS CLI"


def kept_report(kept: list[tuple[str, str, str]], flow_name: str | None, region: str) -> str:
    lines = ["sam delete keeps, on purpose (decision records, evidence and logs outlive the stack):"]
    lines += [f"  {logical} ({kind}): {physical}\n    remove: {removal_command(kind, physical, region)}"
              for logical, kind, physical in kept]  # fmt: skip
    if flow_name:
        lines += [
            "Outside the stack (make deploy created them; they cost nothing idle):",
            f"  A2I flow definition {flow_name}\n    remove: aws sagemaker delete-flow-definition "
            f"--flow-definition-name {flow_name} --region {region}",
            f"  its human task UIs ({flow_name}-ui-*)\n    remove: aws sagemaker list-human-task-uis --region {region}"
            f", then aws sagemaker delete-human-task-ui --human-task-ui-name NAME --region {region}",
        ]
    return "\n".join(lines)


def undeploy(
    args: argparse.Namespace,
    run: Run = subprocess.run,
    session_factory=boto3.session.Session,
    template: Path = ROOT / "template.yaml",
) -> None:
    settings = SamSettings.read(args.config)
    stack_name = args.stack_name or settings.stack_name
    session = session_factory(region_name=_region(args, settings))
    if not session.region_name:
        raise DeployError(NO_REGION.format("undeploy"))
    cloudformation = session.client("cloudformation")
    try:
        _, parameters = cloud.describe_stack(cloudformation, stack_name)
    except ClientError as error:
        if "does not exist" in str(error):
            print(f"stack {stack_name} does not exist in {session.region_name}: nothing to delete")
            return
        raise
    retained = retained_resources(template)
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    kept = [
        (r["LogicalResourceId"], r["ResourceType"], r.get("PhysicalResourceId", ""))
        for page in pages
        for r in page["StackResourceSummaries"]
        if r["LogicalResourceId"] in retained
    ]
    flow_name = parameters.get("FlowDefinitionArn", "").rpartition("/")[2] or None
    _run([args.sam, "delete", "--stack-name", stack_name, "--region", session.region_name], run)
    try:
        cloud.describe_stack(cloudformation, stack_name)
        raise DeployError(f"stack {stack_name} still exists (the deletion was declined or failed)")
    except ClientError:
        pass
    print(kept_report(kept, flow_name, session.region_name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidmod.cli.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["deploy", "undeploy"])
    parser.add_argument("--sam", default="sam", help="the SAM CLI to run")
    parser.add_argument("--config", type=Path, default=ROOT / "samconfig.toml")
    parser.add_argument("--stack-name", default=None, help="default: samconfig.toml's")
    parser.add_argument("--region", default=None, help="default: samconfig.toml's, else the AWS default chain")
    parser.add_argument("--workteam-arn", default=None, help="reviewers' private work team (first deploy)")
    parser.add_argument(
        "--task-count", type=int, default=None, help="reviewers per video (default: the stack's ReviewersPerVideo)"
    )
    args = parser.parse_args(argv)
    try:
        (deploy if args.command == "deploy" else undeploy)(args)
    except NoCredentialsError:
        print("vidmod deploy: no AWS credentials (aws configure, AWS_PROFILE or the environment)", file=sys.stderr)
        return 1
    except (DeployError, cloud.FlowDefinitionError, ValueError, ClientError, BotoCoreError) as error:
        print(f"vidmod {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
