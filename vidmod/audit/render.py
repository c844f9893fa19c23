"""Render an audit report as text (terminal), JSON (machines) or self-contained HTML (to file)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from liquid import Environment
from rich.console import Console
from rich.table import Table

from vidmod.audit.timeline import AuditReport

TEMPLATE = Path(__file__).with_name("report.liquid.html")


@cache
def _template():
    return Environment(autoescape=True).from_string(TEMPLATE.read_text(encoding="utf-8"))


def to_json(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def to_html(report: AuditReport) -> str:
    """Every value from the records is HTML-escaped: labels and video names are untrusted input."""
    return _template().render(r=json.loads(to_json(report)))


def print_text(report: AuditReport, console: Console) -> None:
    final, video = report.final or {}, (report.submitted.get("video") or {})
    console.print(f"[bold]{report.executionArn}[/]  status {report.status}")
    console.print(f"video   s3://{video.get('bucket')}/{video.get('key')} version {video.get('versionId')!s}")
    trigger = report.submitted.get("trigger") or {}
    console.print(f"trigger {trigger.get('type')} by {trigger.get('principal')} at {trigger.get('receivedAt')}")
    console.print(
        f"detector job {report.detector.get('jobId')} model {report.detector.get('modelVersion')}: "
        f"{report.detector.get('detections')} detections"
    )
    if report.rules:
        console.print(f"rules   {report.rules.get('ruleSetVersion')} → {report.rules.get('outcome')}")
        for reason in report.rules.get("reasons") or []:
            console.print(
                f"        {reason['band']:>9}  {reason['category']} / {reason['label']}  "
                f"{reason.get('maxConfidence') or ''}"
            )
    if report.review:
        review = report.review
        console.print(
            f"review  {review['decision']} by {review['reviewer']}, accepted {review['acceptanceTime']}, "
            f"submitted {review['submissionTime']} ({review['timeSpentInSeconds']} s)"
        )
        for verdict in review.get("verdicts", []):
            console.print(f"        #{verdict['index']} {verdict['label']}: {verdict['verdict']} {verdict['category']}")
    console.print(
        f"[bold]decision {final.get('decision')}[/] by {final.get('source')} "
        f"{final.get('reviewer') or ''} at {final.get('decidedAt')}"
    )
    if report.failure:
        console.print(f"[red]failure {report.failure['error']}: {report.failure['cause']}[/]")
    for finding in report.integrity:
        console.print(f"[bold red]INTEGRITY[/] {finding}")
    table = Table("time", "state", "event", "note")
    for entry in report.timeline:
        table.add_row(entry.time, entry.state, entry.event, entry.note)
    console.print(table)
