"""``vidmod audit TARGET``: the same audit against the local endpoint (default, like every vidmod command)
and against AWS (``--aws``), where names come from the CloudFormation stack's outputs."""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.rule import Rule

from vidmod.audit.render import print_text, to_html, to_json
from vidmod.audit.sources import AuditSources, audit_target
from vidmod.cli.targets import add_target_options, read_failure

EXIT_FINDINGS, EXIT_ERROR = 1, 2


def _arn_region(target: str) -> str | None:
    parts = target.split(":")
    return parts[3] if target.startswith("arn:") and len(parts) > 3 and parts[3] else None


def local_sources(args: argparse.Namespace) -> AuditSources:
    from vidmod.emulator.clients import local_client
    from vidmod.emulator.stack import local_resources

    resources = local_resources(args.stack_name)
    archive = resources.buckets.get("AuditBucket", {}).get("name", "")
    return AuditSources(
        sfn=local_client("stepfunctions", args.endpoint_url),
        ddb=local_client("dynamodb", args.endpoint_url),
        s3=local_client("s3", args.endpoint_url),
        decisions_table=args.decisions_table or resources.tables["DecisionsTable"]["TableName"],
        state_machine_arn=args.state_machine_arn or resources.state_machine["arn"],
        archive_bucket=args.audit_bucket if args.audit_bucket is not None else archive,
        audit_state_machine_arn=resources.state_machines.get("AuditStateMachine", {}).get("arn", ""),
    )


def aws_sources(args: argparse.Namespace) -> AuditSources:
    """Region: --region, else the ARN's, else the default chain. Names: flags, else the stack's outputs."""
    from vidmod.cloud import stack_outputs

    session = boto3.session.Session(region_name=args.region or _arn_region(args.target))
    table, machine, archive = args.decisions_table, args.state_machine_arn, args.audit_bucket
    audits = ""
    if not table or not machine or archive is None:
        outputs = stack_outputs(session.client("cloudformation"), args.stack_name)
        table = table or outputs.get("DecisionsTableName", "")
        machine = machine or outputs.get("StateMachineArn", "")
        archive = archive if archive is not None else outputs.get("AuditBucketName", "")
        audits = outputs.get("AuditStateMachineArn", "")
    if not table:
        raise LookupError(f"stack {args.stack_name} has no DecisionsTableName output; pass --decisions-table")
    return AuditSources(
        session.client("stepfunctions"),
        session.client("dynamodb"),
        session.client("s3"),
        table,
        machine,
        archive,
        audit_state_machine_arn=audits,
    )


def _write(args: argparse.Namespace, reports: list) -> None:
    """JSON: one object for an execution, a list for a video (s3://…)."""
    single = reports[0] if len(reports) == 1 and not args.target.startswith("s3://") else reports
    with open(args.output, "w", encoding="utf-8") if args.output else nullcontext(sys.stdout) as handle:
        if args.format == "json":
            handle.write(to_json(single) + "\n")
        elif args.format == "html":
            handle.write(to_html(single))
        else:
            console = Console(file=handle, width=None if handle is sys.stdout else 160)
            for number, report in enumerate(reports):
                if number:
                    console.print(Rule())
                print_text(report, console)


def _run(args: argparse.Namespace) -> int:
    """Exit 0: consistent; 1: integrity findings; 2: nothing to audit or AWS refused."""

    def fail(message: str) -> int:
        sys.stderr.write(f"vidmod audit: {message}\n")
        return EXIT_ERROR

    try:
        sources = aws_sources(args) if not args.endpoint_url else local_sources(args)
        reports = audit_target(sources, args.target, args.version, args.from_archive)
    except (LookupError, ValueError) as error:
        return fail(str(error).strip("'\""))
    except (ClientError, BotoCoreError) as error:
        return fail(read_failure(error, args.endpoint_url))
    try:
        _write(args, reports)
    except OSError as error:
        return fail(f"cannot write the report: {error}")
    return EXIT_FINDINGS if any(r.integrity for r in reports) else 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser("audit", help="reconstruct who/what/when/why of a decision from its history")
    parser.add_argument("target", help="execution ARN or name, or s3://bucket/key for every execution of that video")
    parser.add_argument("--version", help="with s3://…: only executions of this object version")
    parser.add_argument("--format", choices=["text", "json", "html"], default="text")
    parser.add_argument("--output", "-o", help="write the report here instead of stdout")
    add_target_options(parser, region_help="AWS: default the execution ARN's region, else the chain")
    parser.add_argument("--state-machine-arn", default=None, help="to complete execution names")
    parser.add_argument("--audit-bucket", default=None, help="archive bucket (AuditBucketName); '' for none")
    parser.add_argument("--from-archive", action="store_true", help="read the archived history, not Step Functions")
    parser.set_defaults(func=_run)
