"""``vidmod backfill s3://bucket/prefix``: moderate a whole library through the backfill state machine.

The same command drives the local stack (``--endpoint-url``) and a deployed one (``--stack NAME``): it starts
the backfill execution, shows the Distributed Map's progress (DescribeMapRun's item counts) and prints the
summary from the map's ResultWriter files — never from a state payload, so 10,000 objects are no problem.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from botocore.exceptions import ClientError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vidmod.emulator.clients import DEFAULT_ENDPOINT, local_client

S3_PREFIX = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")
ORDER = ("submitted", "would-submit", "already-decided", "in-progress", "refused", "failed", "not-a-video")
LABELS = {
    "submitted": "submitted",
    "would-submit": "would be submitted (dry run)",
    "already-decided": "already decided",
    "in-progress": "already under way",
    "refused": "refused",
    "failed": "failed",
    "not-a-video": "not videos (skipped)",
}
console = Console()


class BackfillError(Exception):
    """Said in one line: the bucket cannot be read, the backfill failed as a whole."""


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    reasons: dict[str, Counter] = field(default_factory=dict)  # outcome → reason → objects
    examples: dict[str, list[str]] = field(default_factory=dict)  # outcome → first keys

    def add(self, outcome: dict) -> None:
        kind = outcome.get("outcome", "failed")
        self.counts[kind] += 1
        if kind in {"refused", "failed"}:
            self.reasons.setdefault(kind, Counter())[outcome.get("reason") or "no reason given"] += 1
            self.examples.setdefault(kind, [])
            if len(self.examples[kind]) < 5:
                self.examples[kind].append(outcome.get("key", ""))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self, uri: str) -> list[str]:
        if self.total == 0:
            return [f"no objects under {uri}: nothing to moderate"]
        videos = self.total - self.counts["not-a-video"]
        lines = [f"{self.total} object(s) under {uri}, {videos} of them video(s)"]
        if videos == 0:
            lines.append("no videos there: nothing to moderate")
        for kind in ORDER:
            if self.counts[kind]:
                lines.append(f"  {LABELS[kind]:<30} {self.counts[kind]}")
                for reason, count in self.reasons.get(kind, Counter()).most_common(10):
                    lines.append(f"      {count} × {reason}")
                if self.examples.get(kind):
                    lines.append(f"      e.g. {', '.join(self.examples[kind])}")
        return lines


def parse_target(uri: str) -> tuple[str, str]:
    match = S3_PREFIX.match(uri.strip())
    if not match:
        raise BackfillError(f"{uri!r} is not an S3 location like s3://bucket/prefix/")
    return match["bucket"], match["prefix"] or ""


def result_outcomes(s3, output: dict) -> list[dict]:
    """Each item's outcome, from the ResultWriter manifest the map run wrote (Output is a JSON string)."""
    details = output["ResultWriterDetails"]
    manifest = json.loads(s3.get_object(Bucket=details["Bucket"], Key=details["Key"])["Body"].read())
    outcomes = []
    for status, files in manifest["ResultFiles"].items():
        for result_file in files:
            body = s3.get_object(Bucket=manifest["DestinationBucket"], Key=result_file["Key"])["Body"].read()
            for result in json.loads(body):
                if status == "SUCCEEDED":
                    outcomes.append(json.loads(result.get("Output") or "{}"))
                else:  # an item the processor could not even catch (e.g. its execution timed out)
                    item = json.loads(result.get("Input") or "{}")
                    reason = f"{result.get('Error', status)}: {result.get('Cause', '')}".strip(": ")
                    outcomes.append({"key": item.get("key", ""), "outcome": "failed", "reason": reason})
    return outcomes


def _map_run_counts(sfn, execution_arn: str) -> dict | None:
    runs = sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
    if not runs:
        return None
    return sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"]).get("itemCounts")


def run_backfill(s3, sfn, machine_arn: str, uri: str, dry_run: bool, principal: str, poll: float = 1.0) -> Summary:
    bucket, prefix = parse_target(uri)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise BackfillError(f"bucket {bucket} does not exist or cannot be read ({code})") from error
    payload = {"bucket": bucket, "prefix": prefix, "dryRun": dry_run, "principal": principal}
    name = f"backfill-{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}"
    execution = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload))["executionArn"]
    console.print(f"backfill {name}: {'dry run over' if dry_run else 'moderating'} {escape(uri)}")
    columns = (TextColumn("objects"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("objects", total=None)
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            counts = _map_run_counts(sfn, execution)
            if counts and counts.get("total"):
                done = sum(counts.get(k, 0) for k in ("succeeded", "failed", "timedOut", "aborted"))
                progress.update(task, total=counts["total"], completed=done)
            time.sleep(poll)
    if described["status"] != "SUCCEEDED":
        raise BackfillError(
            f"backfill {name} {described['status'].lower()}: {described.get('error', '')} {described.get('cause', '')}"
        )
    summary = Summary()
    for outcome in result_outcomes(s3, json.loads(described["output"])):
        summary.add(outcome)
    return summary


def cmd_backfill(args) -> int:
    if args.stack:
        import boto3

        session = boto3.session.Session()
        s3, sfn = session.client("s3"), session.client("stepfunctions")
        (stack,) = session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        machine = outputs["BackfillStateMachineArn"]
        principal = session.client("sts").get_caller_identity()["Arn"]
    else:
        from vidmod.emulator.stack import local_resources

        s3, sfn = local_client("s3", args.endpoint_url), local_client("stepfunctions", args.endpoint_url)
        machine = local_resources().state_machines["BackfillStateMachine"]["arn"]
        principal = f"local:{os.environ.get('USER', 'cli')}"
    try:
        summary = run_backfill(s3, sfn, machine, args.target, args.dry_run, principal)
    except BackfillError as error:
        console.print(f"vidmod backfill: {escape(str(error))}", style="red", highlight=False)
        return 2
    for line in summary.lines(args.target):
        console.print(escape(line), highlight=False)
    return 1 if summary.counts["failed"] else 0


def add_commands(commands) -> None:
    backfill = commands.add_parser("backfill", help="moderate every video under an S3 prefix (once per version)")
    backfill.add_argument("target", help="s3://bucket/prefix/")
    backfill.add_argument("--dry-run", action="store_true", help="report what would be submitted; start nothing")
    backfill.add_argument("--stack", help="a deployed stack's name (AWS, default credentials); default: local")
    backfill.add_argument("--endpoint-url", default=os.environ.get("VIDMOD_ENDPOINT", DEFAULT_ENDPOINT))
    backfill.set_defaults(func=cmd_backfill)
