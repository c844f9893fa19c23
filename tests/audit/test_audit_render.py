"""Rendering untrusted values: rich markup in text, HTML in the report; truncation and several reviewers."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console

from vidmod.audit.evidence import annotate_segments, cross_check, reviewer_answers
from vidmod.audit.render import print_text, to_html
from vidmod.audit.timeline import AuditReport, TimelineEntry

E = "\"><script>alert(1)</script><img src=x onerror=1 '"


def text_of(report: AuditReport) -> str:
    console = Console(record=True, width=300, file=io.StringIO(), force_terminal=True)
    print_text(report, console)
    return console.export_text(styles=False)


def report_with_key(key: str) -> AuditReport:
    return AuditReport(
        executionArn="arn:a",
        status="SUCCEEDED",
        submitted={"video": {"bucket": "b", "key": key}, "trigger": {"principal": "[red]p[/]"}},
        final={"decision": "REJECT", "reviewer": "[/]"},
        timeline=[TimelineEntry("t", "[bold]", "[/]", "[link=x]y")],
        integrity=["record reviewer is '[/]' but the workflow wrote 'bob'"],
    )


def test_text_output_never_parses_markup_from_the_records():
    text = text_of(report_with_key("evil[/]x.mp4"))  # a closing tag with nothing open crashed rich before
    assert "s3://b/evil[/]x.mp4" in text and "[red]p[/]" in text and "[link=x]y" in text


def test_a_key_cannot_forge_an_integrity_verdict():
    console = Console(record=True, width=300, file=io.StringIO(), force_terminal=True)
    print_text(report_with_key("a[bold red]INTEGRITY OK[/].mp4"), console)
    assert "s3://b/a[bold red]INTEGRITY OK[/].mp4" in console.export_text(styles=False, clear=False)
    styled = console.export_text(styles=True)
    assert "a[bold red]INTEGRITY OK[/].mp4" in styled  # literal, not a style
    assert "\x1b[1;31mINTEGRITY OK" not in styled


def test_terminal_control_sequences_in_records_are_shown_not_obeyed():
    """A key or a timeline note holding ESC sequences (retitle the terminal, clear the screen) prints as escapes."""
    report = report_with_key("a\x1b]0;owned\x07\x1b[2Jb.mp4")
    report.timeline = [TimelineEntry("t", "State", "entered", "note \x1b[31mred\x9b")]
    raw = io.StringIO()
    print_text(report, Console(file=raw, width=300, force_terminal=False))
    out = raw.getvalue()
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "s3://b/a\\x1b]0;owned\\x07\\x1b[2Jb.mp4" in out and "note \\x1b[31mred\\x9b" in out


def test_every_html_value_is_escaped():
    segment = {"range": E, "parentName": E, "name": E, "category": E, "maxConfidence": E, "shownToReviewer": 0,
               "verdicts": [{"reviewer": E, "verdict": E, "category": E}]}  # fmt: skip
    answer = {"workerId": E, "decision": E, "acceptanceTime": E, "submissionTime": E, "timeSpentInSeconds": E,
              "comment": E, "verdicts": [{"index": E, "label": E, "verdict": E, "category": E}]}  # fmt: skip
    report = AuditReport(
        executionArn=E,
        status=E,
        historySource=E,
        submitted={"video": {"bucket": E, "key": E, "versionId": E}, "trigger": {"type": E, "principal": E, "id": E}},
        detector={"jobId": E, "modelVersion": E, "statusMessage": E, "detections": E, "pages": E},
        rules={"ruleSetVersion": E, "outcome": E, "reasons": [{"category": E, "label": E, "band": E}]},
        segments=[segment],
        review={"reviewer": E, "decision": E, "comment": E, "outputS3Uri": E, "verdicts": []},
        answers=[answer],
        evidence={"segments": {"uri": E, "status": E}},
        final={"decision": E, "source": E, "reviewer": E, "decidedAt": E},
        failure={"error": E, "cause": E},
        timeline=[TimelineEntry(E, E, E, E)],
        integrity=[E],
        notes=[E],
    )
    html = to_html(report)
    assert "<script>" not in html and "<img" not in html and html.count("&lt;script&gt;") > 30
    assert not re.findall(r"<(?:script|img|link)\b", html)


def test_truncated_reasons_are_said():
    report = AuditReport(executionArn="a", status="SUCCEEDED", rules={"reasonsTruncated": True, "reasons": []})
    assert "Reasons truncated" in to_html(report)
    assert "reasons truncated; all in segments.json" in text_of(report)


def answer(worker: str, accepted: str, submitted: str, spent: float, content: dict) -> dict:
    return {
        "workerId": worker,
        "acceptanceTime": f"2026-01-01T00:00:{accepted}.000Z",
        "submissionTime": f"2026-01-01T00:00:{submitted}.000Z",
        "timeSpentInSeconds": spent,
        "answerContent": content,
    }


def test_every_reviewer_of_a_panel_is_shown_with_their_own_verdicts():
    shown = [{"name": "Weapons", "parentName": "Violence", "startMillis": 0, "endMillis": 900}]
    output = {
        "inputContent": {"segments": shown},
        "humanAnswers": [
            answer("ann", "00", "10", 10.0, {"decision-approve": {"value": True}, "seg-0-fp": {"value": True}}),
            answer("ben", "05", "25", 20.0, {"decision-reject": {"value": True}, "seg-0-tp": {"value": True},
                                             "comment": "real"}),
        ],
    }  # fmt: skip
    answers = reviewer_answers(output)
    assert [(a["workerId"], a["decision"], a["timeSpentInSeconds"]) for a in answers] == [
        ("ann", "APPROVE", 10.0),
        ("ben", "REJECT", 20.0),
    ]
    review = {"reviewer": "ann,ben", "decision": "REJECT", "acceptanceTime": "2026-01-01T00:00:05.000Z",
              "submissionTime": "2026-01-01T00:00:25.000Z", "timeSpentInSeconds": 20, "comment": "real",
              "verdicts": answers[1]["verdicts"]}  # fmt: skip
    assert cross_check(review, answers) == []
    assert cross_check(review | {"reviewer": "ben"}, answers) == [
        "A2I output.json says reviewer 'ann,ben' but the verdict in the history says 'ben'"
    ]
    (row,) = annotate_segments(shown, output, answers)
    assert row["range"] == "0:00.000–0:00.900" and row["verdicts"] == [
        {"reviewer": "ann", "verdict": "false-positive", "category": ""},
        {"reviewer": "ben", "verdict": "true-positive", "category": ""},
    ]
    html = to_html(AuditReport(executionArn="a", status="SUCCEEDED", review=review, answers=answers, segments=[row]))
    assert "Answers of ann: APPROVE" in html and "Answers of ben: REJECT" in html
    assert "ann: false-positive<br>ben: true-positive" in html
    assert json.loads(json.dumps(answers))  # plain JSON for --format json


def test_the_cross_check_consolidates_by_the_loops_own_consensus_rule():
    shown = [{"name": "Weapons", "parentName": "Violence", "startMillis": 0, "endMillis": 900}]
    approve, reject = {"decision-approve": {"value": True}}, {"decision-reject": {"value": True}}
    answers = reviewer_answers(
        {
            "inputContent": {"segments": shown, "consensus": "any-reject"},
            "humanAnswers": [
                answer("ann", "00", "10", 10.0, approve),
                answer("ben", "01", "11", 10.0, reject),
                answer("cat", "02", "12", 10.0, approve),
            ],
        }
    )
    agreement = {"rule": "any-reject", "answers": 3, "agreeing": 1, "unanimous": False}
    review = {"reviewer": "ann,ben,cat", "decision": "REJECT", "agreement": agreement}
    assert cross_check(review, answers, "any-reject") == []
    # read by majority, the same answers approve: a verdict that does not follow the loop's rule is a finding
    assert cross_check(review, answers, "majority") == [
        "A2I output.json says decision 'APPROVE' but the verdict in the history says 'REJECT'",
        "A2I output.json says agreement {'rule': 'majority', 'answers': 3, 'agreeing': 2, 'unanimous': False} but "
        "the verdict in the history says {'rule': 'any-reject', 'answers': 3, 'agreeing': 1, 'unanimous': False}",
    ]
