"""Render audit reports as text (terminal), JSON (machines) or one self-contained HTML file.

Every value comes from records an uploader or reviewer can influence (keys, labels, comments), so text
output is built from ``rich.text.Text`` (never parsed as markup) and HTML is autoescaped.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from liquid import Environment
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vidmod.audit.sampling import describe_audit
from vidmod.audit.timeline import AuditReport

TEMPLATE = Path(__file__).with_name("report.liquid.html")
MAX_TEXT_SEGMENTS = 50


@cache
def _template():
    return Environment(autoescape=True).from_string(TEMPLATE.read_text(encoding="utf-8"))


def to_json(reports: AuditReport | list[AuditReport]) -> str:
    """One object for one execution; a list for a video's executions."""
    data = [r.to_dict() for r in reports] if isinstance(reports, list) else reports.to_dict()
    return json.dumps(data, indent=2, default=str)


def to_html(reports: AuditReport | list[AuditReport]) -> str:
    """Every value from the records is HTML-escaped: labels and video names are untrusted input."""
    many = reports if isinstance(reports, list) else [reports]
    return _template().render(reports=json.loads(to_json(many)))


def _v(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _inert(text: str) -> str:
    """Control characters shown as escapes: a key or label holding ``ESC ]0;…`` must not drive the terminal."""
    return _CONTROL.sub(lambda match: repr(match[0])[1:-1], text)


def _line(*parts: str | tuple[str, str]) -> Text:
    """Plain strings stay literal (``Text.assemble`` does not parse markup) and inert (no control characters)."""
    return Text.assemble(*(_inert(p) if isinstance(p, str) else (_inert(p[0]), p[1]) for p in parts))


def _evidence(report: AuditReport, name: str) -> str:
    check = report.evidence.get(name)
    return f"{check['uri']}: {check['status']}" if check else "not available"


def _head(report: AuditReport, p) -> None:
    video = report.submitted.get("video") or {}
    trigger = report.submitted.get("trigger") or {}
    p(_line((report.executionArn, "bold"), f"  status {report.status}"))
    p(_line(f"history  {report.historySource}; started {_v(report.startedAt)}, stopped {_v(report.stoppedAt)}"))
    p(_line(f"video    s3://{_v(video.get('bucket'))}/{_v(video.get('key'))} version {_v(video.get('versionId'))}"))
    p(
        _line(
            f"trigger  {_v(trigger.get('type'))} by {_v(trigger.get('principal'))} at {_v(trigger.get('receivedAt'))}"
            f" (id {_v(trigger.get('id'))})"
        )
    )
    if admission := report.admission:
        p(
            _line(
                f"queued   {_v(admission.get('queuedSeconds'))} s for a moderation slot (ticket "
                f"{_v(admission.get('ticket'))}, {_v(admission.get('limit'))} at once): "
                f"{_v(admission.get('queuedAt'))} → {_v(admission.get('grantedAt'))}"
            )
        )
    detector = report.detector
    p(
        _line(
            f"detector job {_v(detector.get('jobId'))} model {_v(detector.get('modelVersion'))}: "
            f"{_v(detector.get('detections'))} detections in {_v(detector.get('pages'))} page(s)"
            + (f"; {detector['statusMessage']}" if detector.get("statusMessage") else "")
        )
    )


def _why(report: AuditReport, p) -> None:
    rules = report.rules
    if rules:
        truncated = " (reasons truncated; all in segments.json)" if rules.get("reasonsTruncated") else ""
        p(_line(f"rules    {_v(rules.get('ruleSetVersion'))} → {_v(rules.get('outcome'))}{truncated}"))
        for reason in rules.get("reasons") or []:
            p(
                _line(
                    f"         {_v(reason.get('band')):>9}  {_v(reason.get('category'))} / {_v(reason.get('label'))}"
                    f"  {_v(reason.get('maxConfidence'))} (threshold {_v(reason.get('threshold'))})"
                )
            )
        p(_line(f"segments {_evidence(report, 'segments')}"))
        for segment in report.segments[:MAX_TEXT_SEGMENTS]:
            verdicts = "; ".join(
                f"{v['reviewer']}: {v['verdict']} {v['category']}".strip() for v in segment["verdicts"]
            )
            p(
                _line(
                    f"         {segment['range']}  {_v(segment['parentName'])} / {_v(segment['name'])}  "
                    f"{_v(segment['maxConfidence'])}  {verdicts}"
                )
            )
        if len(report.segments) > MAX_TEXT_SEGMENTS:
            p(_line(f"         … {len(report.segments) - MAX_TEXT_SEGMENTS} more (--format html shows all)"))


def _review(report: AuditReport, p) -> None:
    review = report.review
    if not review:
        return
    p(
        _line(
            f"review   {_v(review.get('decision'))} by {_v(review.get('reviewer'))}, accepted "
            f"{_v(review.get('acceptanceTime'))}, submitted {_v(review.get('submissionTime'))} "
            f"({_v(review.get('timeSpentInSeconds'))} s)"
        )
    )
    p(_line(f"answers  {_evidence(report, 'reviewOutput')}"))
    for answer in report.answers:
        verdicts = "; ".join(
            f"#{v['index']} {v['label']} {v['verdict']} {v['category']}".strip() for v in answer["verdicts"]
        )
        p(
            _line(
                f"         {_v(answer['workerId'])} {answer['decision']}, accepted {_v(answer['acceptanceTime'])}, "
                f"submitted {_v(answer['submissionTime'])} ({answer['timeSpentInSeconds']} s): {verdicts or '-'}"
                + (f"; comment {answer['comment']!r}" if answer["comment"] else "")
            )
        )


def _audit(report: AuditReport, p) -> None:
    """The audit sample and the links between an audited decision and its audits."""
    sample = report.auditSample
    if sample and "draw" in sample:
        drawn = "sampled for an audit" if sample.get("sampled") else "not sampled"
        compared = "<" if sample.get("sampled") else "≥"
        p(
            _line(
                f"audit sample  {drawn}: draw {_v(sample.get('draw'))} {compared} rate {_v(sample.get('rate'))} "
                f"for {_v(sample.get('outcome'))} (draw {sample.get('check')})"
            )
        )
    if report.auditOf:
        audited = report.auditOf
        p(
            _line(
                (f"audit of {_v(audited.get('executionName'))}: {_v(audited.get('auditVerdict'))}", "bold"),
                f" (automatic {_v(audited.get('automaticDecision'))} at {_v(audited.get('decidedAt'))})",
            )
        )
    for link in report.audits:
        p(_line((describe_audit(link), "bold"), f" at {_v(link.get('decidedAt'))}"))


def print_text(report: AuditReport, console: Console) -> None:
    p = console.print
    _head(report, p)
    _why(report, p)
    _review(report, p)
    final = report.final or {}
    p(
        _line(
            (f"decision {_v(final.get('decision'))}", "bold"),
            f" by {_v(final.get('source'))} {final.get('reviewer') or ''} at {_v(final.get('decidedAt'))}",
        )
    )
    _audit(report, p)
    if report.failure:
        p(_line((f"failure  {report.failure['error']}: {report.failure['cause']}", "red")))
    for finding in report.integrity:
        p(_line(("INTEGRITY ", "bold red"), finding))
    if not report.integrity:
        checked = f" (record hash version {report.recordHashVersion})" if report.recordHashVersion else ""
        p(_line(("integrity ok", "green"), f": record, history and evidence agree{checked}"))
    for note in report.notes:
        p(_line(("note ", "yellow"), note))
    table = Table("time", "state", "event", "note")
    for entry in report.timeline:
        table.add_row(*(Text(_inert(cell)) for cell in (entry.time, entry.state, entry.event, entry.note)))
    p(table)
