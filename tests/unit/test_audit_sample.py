"""Deterministic audit sampling (vidmod_contracts.audit_sample): the same content under the same rule set is always
sampled the same way, other rule sets or contents draw independently, and the rates hold over many videos."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from vidmod_contracts.audit_sample import AuditSample, audit_sample, draw

RATES = {"APPROVE": 0.02, "REJECT": 0.05}
VIDEOS = 5_000


def etag(number: int) -> str:
    return hashlib.md5(f"video {number}".encode()).hexdigest()  # noqa: S324 - an S3 ETag is an MD5


def test_the_draw_is_the_documented_hash():
    identity = json.dumps(["vidmod-audit-sample", 1, "2026-12-02.1", "media", "a.mp4", "abc"]).encode()
    expected = int.from_bytes(hashlib.sha256(identity).digest()[:8], "big") / 2**64
    assert draw("2026-12-02.1", "media", "a.mp4", "abc") == expected
    assert draw("2026-12-02.1", "media", "a.mp4", '"abc"') == expected  # S3's quoted ETag is the same content
    assert 0 <= expected < 1
    # no ETag known (a record from before the ETag was kept): the empty string is hashed, as documented
    identity = json.dumps(["vidmod-audit-sample", 1, "2026-12-02.1", "media", "a.mp4", ""]).encode()
    empty = int.from_bytes(hashlib.sha256(identity).digest()[:8], "big") / 2**64
    assert draw("2026-12-02.1", "media", "a.mp4", "") == empty


def test_a_draw_equal_to_the_rate_is_not_sampled():
    """Sampled means draw < rate, so over uniform draws in [0, 1) the share sampled is the rate itself."""
    value = draw("r1", "media", "a.mp4", "abc")
    assert not audit_sample({"APPROVE": value}, "APPROVE", "r1", "media", "a.mp4", "abc").sampled
    assert audit_sample({"APPROVE": value + 1e-12}, "APPROVE", "r1", "media", "a.mp4", "abc").sampled


def test_the_same_input_is_always_sampled_the_same_way():
    first = audit_sample(RATES, "APPROVE", "r1", "media", "a.mp4", "abc")
    assert all(audit_sample(RATES, "APPROVE", "r1", "media", "a.mp4", "abc") == first for _ in range(100))
    assert first.to_dict() == {"sampled": first.draw < 0.02, "rate": 0.02, "draw": first.draw, "outcome": "APPROVE"}
    assert json.loads(json.dumps(first.to_dict())) == first.to_dict()  # what the record stores, as JSON


@pytest.mark.parametrize(
    "other",
    [("r2", "media", "a.mp4", "abc"), ("r1", "media", "a.mp4", "abd"), ("r1", "media", "b.mp4", "abc"),
     ("r1", "other", "a.mp4", "abc")],
)  # fmt: skip
def test_another_rule_set_or_content_draws_anew(other):
    assert draw(*other) != draw("r1", "media", "a.mp4", "abc")


def test_draws_under_two_rule_sets_are_independent():
    """A new rule-set version re-draws: the videos sampled under one are not the ones sampled under the next."""
    first = [draw("r1", "media", f"v/{n}.mp4", etag(n)) < 0.5 for n in range(VIDEOS)]
    second = [draw("r2", "media", f"v/{n}.mp4", etag(n)) < 0.5 for n in range(VIDEOS)]
    both = sum(a and b for a, b in zip(first, second, strict=True))
    # independent halves overlap in a quarter of the videos: 1,250 ± 3.3 σ (σ = √(n·¼·¾) ≈ 30.6)
    assert abs(both - VIDEOS / 4) <= 3.3 * math.sqrt(VIDEOS * 0.25 * 0.75)


@pytest.mark.parametrize(("outcome", "rate"), [("APPROVE", 0.02), ("REJECT", 0.05)])
def test_rates_are_honoured_within_binomial_bounds(outcome, rate):
    sampled = sum(
        audit_sample(RATES, outcome, "2026-12-02.1", "media", f"uploads/{n}.mp4", etag(n)).sampled
        for n in range(VIDEOS)
    )
    expected, spread = VIDEOS * rate, math.sqrt(VIDEOS * rate * (1 - rate))
    assert abs(sampled - expected) <= 3.3 * spread, (sampled, expected)  # 99.9 % two-sided


def test_draws_are_uniform_across_deciles():
    draws = [draw("r1", "media", f"uploads/{n}.mp4", etag(n)) for n in range(VIDEOS)]
    counts = [sum(1 for d in draws if low / 10 <= d < (low + 1) / 10) for low in range(10)]
    assert all(abs(count - VIDEOS / 10) <= 3.3 * math.sqrt(VIDEOS * 0.1 * 0.9) for count in counts), counts


def test_review_is_never_sampled_and_rates_of_0_and_1_are_edges():
    for n in range(200):
        args = ("r1", "media", f"{n}.mp4", etag(n))
        review = audit_sample({"APPROVE": 1.0, "REJECT": 1.0, "REVIEW": 1.0}, "REVIEW", *args)
        assert (review.sampled, review.rate, review.outcome) == (False, 0.0, "REVIEW")
        assert audit_sample({"APPROVE": 1.0}, "APPROVE", *args).sampled is True
        assert audit_sample({"APPROVE": 0.0}, "APPROVE", *args).sampled is False
        assert audit_sample({"REJECT": 1.0}, "APPROVE", *args) == AuditSample(False, 0.0, draw(*args), "APPROVE")


def test_the_lambda_and_the_shipped_rule_set_agree(load_function, aws, lambda_context):
    """evaluate_rules draws from the job's video with the rule set that decided, and says how reviewers agree."""
    aws.client("s3").create_bucket(Bucket="results")
    handler = load_function("evaluate_rules")
    event = {
        "results": {"bucket": "results", "prefix": "moderations/x/"},
        "labels": {"pages": 0, "detections": 0, "modelVersion": "7.0"},
        "video": {"bucket": "media", "key": "clip.mp4", "versionId": "v1", "etag": "abc"},
    }
    decision = handler.lambda_handler(event, lambda_context)
    from ruleset_source import shipped_ruleset

    ruleset = shipped_ruleset()
    assert ruleset.auditSample == {"APPROVE": 0.02, "REJECT": 0.05} and decision["consensus"] == ruleset.consensus
    assert decision["outcome"] == "APPROVE"
    assert (
        decision["auditSample"]
        == audit_sample(ruleset.auditSample, "APPROVE", ruleset.version, "media", "clip.mp4", "abc").to_dict()
    )
