"""``vidmod audit EXECUTION_ARN_OR_VIDEO``: the same against AWS and against the local endpoint."""

from __future__ import annotations

import argparse
import json
import os
import sys

import boto3
from rich.console import Console

from vidmod.audit.history import all_events
from vidmod.audit.render import print_text, to_html, to_json
from vidmod.audit.timeline import AuditReport, build_report


def _plain(item: dict) -> dict:
    return {key: next(iter(value.values())) for key, value in item.items()}


def find_record(ddb, table: str, execution_arn: str, video_uri: str) -> dict | None:
    name = execution_arn.rsplit(":", 1)[-1]
    item = ddb.get_item(
        TableName=table, Key={"videoUri": {"S": video_uri}, "executionName": {"S": name}}, ConsistentRead=True
    ).get("Item")
    return _plain(item) if item else None


def latest_execution_for(ddb, table: str, video_uri: str) -> str:
    items = ddb.query(
        TableName=table, KeyConditionExpression="videoUri = :v", ExpressionAttributeValues={":v": {"S": video_uri}}
    ).get("Items", [])
    if not items:
        raise LookupError(f"no decision recorded for {video_uri}")
    return max((_plain(i) for i in items), key=lambda i: i.get("decidedAt", ""))["executionArn"]


def audit(sfn, ddb, table: str, target: str) -> AuditReport:
    arn = latest_execution_for(ddb, table, target) if target.startswith("s3://") else target
    events = all_events(sfn, arn)
    started = next(e for e in events if e["type"] == "ExecutionStarted")
    video = json.loads(started["executionStartedEventDetails"]["input"]).get("video") or {}
    record = find_record(ddb, table, arn, f"s3://{video.get('bucket')}/{video.get('key')}")
    return build_report(arn, events, record)


def _run(args: argparse.Namespace) -> int:
    session = boto3.session.Session(region_name=args.region or "us-east-1")
    kwargs = {"endpoint_url": args.endpoint_url} if args.endpoint_url else {}
    if args.endpoint_url:
        kwargs |= {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    table = args.decisions_table
    if not table:
        from vidmod.local.stack import LOCAL_PARAMETERS, ROOT
        from vidmod.local.template import read_resources

        table = read_resources(ROOT, "vidmod", LOCAL_PARAMETERS).tables["DecisionsTable"]["TableName"]
    report = audit(session.client("stepfunctions", **kwargs), session.client("dynamodb", **kwargs), table, args.target)
    if args.format == "json":
        sys.stdout.write(to_json(report) + "\n")
    elif args.format == "html":
        html = to_html(report)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(html)
        else:
            sys.stdout.write(html)
    else:
        print_text(report, Console())
    return 1 if report.integrity else 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser("audit", help="reconstruct who/what/when/why of a decision from its history")
    parser.add_argument("target", help="an execution ARN, or s3://bucket/key for the video's latest decision")
    parser.add_argument("--format", choices=["text", "json", "html"], default="text")
    parser.add_argument("--output", "-o", help="write the report here (html)")
    parser.add_argument(
        "--endpoint-url", default=os.environ.get("VIDMOD_ENDPOINT"), help="the local endpoint; omit for AWS"
    )
    parser.add_argument("--region", default=None)
    parser.add_argument(
        "--decisions-table",
        default=os.environ.get("VIDMOD_DECISIONS_TABLE"),
        help="DecisionsTable name (the stack output); defaults to the local stack's",
    )
    parser.set_defaults(func=_run)
