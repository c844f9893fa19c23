"""evaluate_rules as the state machine calls it: label pages from S3 in, a decision the ASL can select out."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = json.loads((ROOT / "layers/contracts/vidmod_contracts/taxonomy_v7.json").read_text(encoding="utf-8"))
PREFIX = "moderations/clip-0123/"


def taxonomy_labels() -> list[tuple[str, str, int, str]]:
    """(name, parent, level, category) of every level-2 and level-3 label in the v7 taxonomy."""
    return [
        entry
        for category, labels in TAXONOMY["categories"].items()
        for label, children in labels.items()
        for entry in [(label, category, 2, category)] + [(child, label, 3, category) for child in children]
    ]


def detection(name: str, parent: str, level: int, confidence: float, timestamp: int) -> dict:
    label = {"Name": name, "ParentName": parent, "TaxonomyLevel": level, "Confidence": confidence}
    return {"Timestamp": timestamp, "ModerationLabel": label}


@pytest.fixture
def handler(aws, load_function):
    aws.client("s3").create_bucket(Bucket="results")
    return load_function("evaluate_rules")


def store_pages(s3, pages: list[list[dict]]) -> None:
    for number, labels in enumerate(pages, start=1):
        body = json.dumps({"ModerationLabels": labels})
        s3.put_object(Bucket="results", Key=f"{PREFIX}pages/{number:05d}.json", Body=body)


def call(handler, lambda_context, pages: int, model_version: str = "7.0") -> dict:
    event = {
        "results": {"bucket": "results", "prefix": PREFIX},
        "labels": {"pages": pages, "detections": 0, "modelVersion": model_version},
        "video": {"bucket": "media", "key": "clip.mp4"},
    }
    return handler.lambda_handler(event, lambda_context)


def test_every_page_is_read_and_the_strongest_evidence_decides(handler, aws, lambda_context):
    s3 = aws.client("s3")
    # 89 % is below every reject threshold and above every review threshold but these two labels' own
    labels = [entry for entry in taxonomy_labels() if entry[0] not in {"Kissing on the Lips", "Bare Back"}]
    assert len(labels) >= 30
    # page 1: 30 different labels at 89 % (each crosses its review threshold, none a reject one), 10 s apart;
    # page 2: a hate symbol at 97 %, above its reject threshold
    first = [detection(name, parent, level, 89.0, i * 10_000) for i, (name, parent, level, _) in enumerate(labels[:30])]
    store_pages(s3, [first, [detection("Nazi Party", "Hate Symbols", 2, 97.0, 400_000)]])
    decision = call(handler, lambda_context, pages=2)
    assert decision["outcome"] == "REJECT" and decision["detections"] == 31
    assert decision["reasons"][0] == {
        "category": "Hate Symbols",
        "label": "Nazi Party",
        "maxConfidence": 97.0,
        "threshold": 90.0,
        "band": "reject",
        "segments": 1,
    }  # the reason that decided comes first, whatever the page it was on
    assert len(decision["reasons"]) == handler.MAX_REASONS and decision["reasonsTruncated"] is True
    from ruleset_source import shipped_ruleset

    assert decision["ruleSetVersion"] == shipped_ruleset().version
    assert decision["uncoveredCategories"] == [] and len(decision["coveredCategories"]) == 10  # Rekognition 7.0
    # the full evidence is in S3, and the decision carries its hash (the audit re-hashes the same bytes)
    ref = decision["segmentsRef"]
    stored = s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
    assert ref == {"bucket": "results", "key": f"{PREFIX}segments.json"}
    assert decision["evidenceSha256"] == hashlib.sha256(stored).hexdigest()
    segments = json.loads(stored)["segments"]
    assert len(segments) == decision["segmentCount"] == 31 and json.loads(stored)["modelVersion"] == "7.0"


def test_the_output_has_every_field_the_state_machine_selects(handler, aws, lambda_context):
    store_pages(aws.client("s3"), [[]])
    decision = call(handler, lambda_context, pages=1, model_version="vidmod-local-2 (nudenet-3.4.2+open-nsfw)")
    asl = json.loads((ROOT / "statemachine/moderation.asl.json").read_text(encoding="utf-8"))
    selected = asl["States"]["EvaluateRules"]["ResultSelector"].values()
    assert {path.removeprefix("$.Payload.") for path in selected} <= set(decision)
    # nothing detected, but the local detector sees five nudity labels only: a human must look at the rest
    assert decision["outcome"] == "REVIEW" and decision["segmentCount"] == 0
    assert "Violence" in decision["uncoveredCategories"] and decision["coveredCategories"] == []
    explicit = next(c for c in decision["coverage"] if c["category"] == "Explicit")
    assert explicit["notChecked"] == ["Explicit Sexual Activity", "Sex Toys"] and len(explicit["checked"]) == 4


def test_a_missing_page_fails_loudly_instead_of_deciding_on_part_of_the_labels(handler, aws, lambda_context):
    from botocore.exceptions import ClientError

    store_pages(aws.client("s3"), [[detection("Weapons", "Violence", 2, 99.0, 0)]])
    with pytest.raises(ClientError, match="NoSuchKey"):
        call(handler, lambda_context, pages=2)


class SlowFirstPages:
    """S3 whose earlier pages answer later (so reads finish out of order), counting reads in flight."""

    def __init__(self, s3, pages: int):
        self.s3, self.pages, self.lock = s3, pages, threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def get_object(self, Bucket, Key):  # boto3's parameter names
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if "/pages/" in Key:
                time.sleep(0.02 * (self.pages - int(Key.rsplit("/", 1)[1].split(".")[0])))
            return self.s3.get_object(Bucket=Bucket, Key=Key)
        finally:
            with self.lock:
                self.in_flight -= 1

    def __getattr__(self, name):
        return getattr(self.s3, name)


def test_pages_read_at_once_keep_their_order_and_content(handler, aws, lambda_context, monkeypatch):
    """The pages are read concurrently (a job near the page budget must not time out), yet the segments are
    those of reading them one by one: same detections, same time order, same evidence hash."""
    pages = 12
    contents = [[detection("Weapons", "Violence", 2, 61.0 + n, n * 60_000)] for n in range(pages)]
    store_pages(aws.client("s3"), contents)
    slow = SlowFirstPages(aws.client("s3"), pages)
    monkeypatch.setattr(handler, "s3", slow)
    decision = call(handler, lambda_context, pages=pages)
    assert slow.most_in_flight > 1  # the reads overlapped
    stored = json.loads(aws.client("s3").get_object(Bucket="results", Key=f"{PREFIX}segments.json")["Body"].read())
    assert [(s["startMillis"], s["maxConfidence"]) for s in stored["segments"]] == [
        (n * 60_000, 61.0 + n) for n in range(pages)
    ]
    assert decision["detections"] == pages and decision["reasons"][0]["maxConfidence"] == 61.0 + pages - 1


def test_a_page_missing_among_many_fails_with_the_same_error(handler, aws, lambda_context):
    from botocore.exceptions import ClientError

    s3 = aws.client("s3")
    store_pages(s3, [[detection("Weapons", "Violence", 2, 99.0, n * 1000)] for n in range(6)])
    s3.delete_object(Bucket="results", Key=f"{PREFIX}pages/00004.json")
    with pytest.raises(ClientError, match="NoSuchKey") as failure:
        call(handler, lambda_context, pages=6)
    assert failure.value.operation_name == "GetObject"
    assert not s3.list_objects_v2(Bucket="results", Prefix=f"{PREFIX}segments.json").get("Contents")
