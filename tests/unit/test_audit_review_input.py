"""An audit review's InputContent (start_human_review) and the worker template's audit banner: the automatic
decision, when, by which execution and why, never a token, every value escaped (docs/quality.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.stub import ANY, Stubber
from test_start_human_review import FLOW, KEY, SEGMENTS, TABLE, TOKEN, event

from vidmod.emulator.portal.app import liquid_environment

UI = Path(__file__).resolve().parents[2] / "ui" / "moderation-review.liquid.html"
EVIL = '<img src=x onerror="window.__pwned=1">'
AUDIT = {
    "automaticDecision": "APPROVE",
    "decidedAt": "2026-12-02T10:00:00.123Z",
    "executionName": "clip-5f0c",
    "reasons": [{"category": "Alcohol", "label": "Drinking", "band": "uncovered", "maxConfidence": None,
                 "threshold": None, "segments": 0}],
}  # fmt: skip


@pytest.fixture
def env(aws, monkeypatch, load_function):
    """As test_start_human_review's: the review-task table, the segments and the analysed video."""
    monkeypatch.setenv("REVIEW_TASKS_TABLE", TABLE)
    monkeypatch.setenv("FLOW_DEFINITION_ARN", FLOW)
    monkeypatch.setenv("RESULTS_BUCKET", "results")
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "humanLoopName", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "humanLoopName", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket="results")
    s3.put_object(Bucket="results", Key="moderations/x/segments.json", Body=json.dumps({"segments": SEGMENTS}))
    s3.create_bucket(Bucket="media")
    s3.put_object(Bucket="media", Key=KEY, Body=b"video v1")
    return load_function("start_human_review"), ddb


def started_content(app, lambda_context, payload: dict) -> dict:
    sent = {}
    with Stubber(app.a2i) as stub:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        stub.add_response("start_human_loop", {"HumanLoopArn": "arn:loop"}, {"HumanLoopName": ANY,
                          "FlowDefinitionArn": FLOW, "HumanLoopInput": ANY})  # fmt: skip
        original = app.a2i.start_human_loop

        def capture(**kwargs):
            sent.update(kwargs)
            return original(**kwargs)

        app.a2i.start_human_loop = capture
        app.lambda_handler(payload, lambda_context)
    text = sent["HumanLoopInput"]["InputContent"]
    assert TOKEN not in text and "taskToken" not in text
    return json.loads(text)


def test_an_audit_review_tells_the_auditor_the_automatic_decision_and_its_reasons(env, lambda_context):
    app, _ = env
    payload = event() | {"audit": AUDIT | {"taskToken": TOKEN, "extra": "not shown"}}
    payload["decision"] = payload["decision"] | {"consensus": "any-reject"}
    content = started_content(app, lambda_context, payload)
    assert content["audit"] == {
        "automaticDecision": "APPROVE",
        "decidedAt": "2026-12-02T10:00:00.123Z",
        "executionName": "clip-5f0c",
        "reasons": [{"category": "Alcohol", "label": "Drinking", "band": "uncovered", "maxConfidence": None}],
    }
    assert content["consensus"] == "any-reject"


def test_a_moderation_review_has_no_audit_and_defaults_to_majority(env, lambda_context):
    app, _ = env
    content = started_content(app, lambda_context, event())
    assert "audit" not in content and content["consensus"] == "majority"


def render(content: dict) -> str:
    return liquid_environment().from_string(UI.read_text(encoding="utf-8")).render(task={"input": content})


def content(**more) -> dict:
    base = {
        "schemaVersion": "1",
        "video": {"uri": "s3://results/review-media/l/a.mp4", "name": "a.mp4", "versionId": "v1",
                  "durationMillis": 8000},
        "decision": {"ruleSetVersion": "r1", "reasons": [{"category": "Violence", "label": "Weapons",
                                                          "band": "review", "maxConfidence": 80.0}]},
        "coverage": [], "uncoveredCategories": [], "coveredCategories": [], "segments": [],
        "segmentsTruncated": False, "segmentsTotal": 0, "consensus": "majority",
    }  # fmt: skip
    return base | more


@pytest.mark.parametrize(("automatic", "shown"), [("APPROVE", "APPROVED"), ("REJECT", "REJECTED")])
def test_the_template_shows_an_audit_banner_instead_of_why_it_was_sent_to_review(automatic, shown):
    html = render(content(audit=AUDIT | {"automaticDecision": automatic}))
    assert "Audit of an automatic decision" in html and f">{shown}</strong>" in html
    assert "2026-12-02T10:00:00.123Z" in html and "clip-5f0c" in html
    assert "Alcohol / Drinking (uncovered)" in html and "Sent to review" not in html
    plain = render(content())
    assert "Audit of an automatic decision" not in plain and "Sent to review: " in plain
    assert "audit-banner" not in plain.split("</style>", 1)[1]


def test_an_audit_without_reasons_says_so():
    html = render(content(audit=AUDIT | {"reasons": []}))
    assert "No label crossed a threshold." in html and "audit-reasons" not in html.split("</style>", 1)[1]


def test_every_audit_value_is_escaped():
    hostile = AUDIT | {
        "automaticDecision": EVIL,
        "decidedAt": EVIL,
        "executionName": EVIL,
        "reasons": [{"category": EVIL, "label": EVIL + "x", "band": "review", "maxConfidence": 99.0}],
    }
    html = render(content(audit=hostile))
    assert EVIL not in html and "&lt;img src=x onerror=" in html
    script = html.split("<script>", 1)[1]
    assert "onerror" not in script and "__pwned" not in script  # nothing of the input inside the script
