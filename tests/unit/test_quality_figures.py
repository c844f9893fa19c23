"""The quality figures on a fixture set with known answers (tests/quality_fixtures.py; each expected value is
worked out by hand in the test's docstring or comments, from the records' own comments there)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from quality_fixtures import OUTPUTS, RECORDS, WINDOW, record

from vidmod.quality.figures import Z95, compute, percentile, wilson_interval
from vidmod.quality.window import Window, parse_moment, parse_window


@pytest.fixture(scope="module")
def figures():
    return compute(RECORDS, OUTPUTS, WINDOW).to_dict()


# ---------------------------------------------------------------------------- the statistics
@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(1, 10, 0.0179, 0.4042), (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (1, 1, 0.2065, 1.0), (0, 1, 0.0, 0.7935)],
)
def test_wilson_interval_matches_published_values(k, n, low, high):
    interval = wilson_interval(k, n)
    assert interval == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_wilson_interval_equals_the_score_test_inversion():
    """Independently: the interval's ends are where the score statistic (p̂ − π)² n = z² π (1 − π) holds."""
    for k, n in [(3, 17), (40, 1000), (999, 1000)]:
        low, high = wilson_interval(k, n)
        roots = np.roots([n + Z95**2, -(2 * k + Z95**2), k * k / n])  # (n + z²)π² − (2k + z²)π + k²/n = 0
        assert sorted(roots) == [pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12)]


def test_wilson_interval_of_nothing_is_none_and_refuses_impossible_counts():
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_percentile_interpolates_like_numpy():
    values = sorted([3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0, 35.0])
    for q in (0.0, 0.5, 0.9, 0.99, 1.0):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q * 100)))
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0


# ---------------------------------------------------------------------------- the figures
def test_window_is_half_open_and_counts_decisions_by_outcome_and_source(figures):
    assert figures["window"] == {"since": "2026-12-01T00:00:00.000Z", "until": "2026-12-08T00:00:00.000Z"}
    decisions = figures["decisions"]
    assert decisions["total"] == 12  # r1..r12 without r9 (before) and r13 (at until)
    assert decisions["byDecision"] == {"APPROVE": 6, "ESCALATED": 1, "REJECT": 5}
    assert decisions["bySource"] == {"audit": 3, "human": 4, "rules": 4, "system": 1}
    assert decisions["bySourceAndDecision"]["rules"] == {"APPROVE": 3, "REJECT": 1}
    assert decisions["bySourceAndDecision"]["audit"] == {"APPROVE": 1, "REJECT": 2}
    assert figures["reviews"] == {"human": 4, "audit": 3, "outputsRead": 3, "outputsMissing": 3}


def test_precision_per_category_from_every_reviewers_segment_verdicts(figures):
    """Violence (Weapons): r4 tp tp fp, r5 tp, r6 tp fp, r8 fp (its record) → 4 / 7.
    Explicit (Exposed Female Nipple): r4 fp, wrong (said Violence), fp → 0 / 3. zed's (r9) are outside."""
    rows = {row["category"]: row for row in figures["precision"]}
    assert list(rows) == ["Explicit", "Violence"]  # taxonomy order
    violence, explicit = rows["Violence"], rows["Explicit"]
    assert (violence["truePositives"], violence["falsePositives"], violence["wrongCategory"]) == (4, 3, 0)
    assert violence["verdicts"] == 7 and violence["precision"] == pytest.approx(4 / 7)
    assert violence["labels"] == [
        {
            "label": "Weapons",
            "truePositives": 4,
            "falsePositives": 3,
            "wrongCategory": 0,
            "verdicts": 7,
            "precision": pytest.approx(4 / 7),
        }
    ]
    assert (explicit["truePositives"], explicit["falsePositives"], explicit["wrongCategory"]) == (0, 2, 1)
    assert explicit["precision"] == 0.0
    assert explicit["wrongAs"] == {"Violence": 1}
    assert violence["wrongAs"] == {}


def test_overturn_rate_per_audited_outcome_with_wilson_interval(figures):
    approve, reject = figures["overturns"]
    # APPROVE: r5 overturned r1; r7 expired (apart); sampled: r1, r7a (r3 drawn but not sampled)
    assert approve == {
        "outcome": "APPROVE",
        "sampled": 2,
        "audited": 1,
        "agreed": 0,
        "overturned": 1,
        "expired": 1,
        "rate": 1.0,
        "interval": {"low": pytest.approx(0.2065, abs=5e-5), "high": 1.0},
    }
    # REJECT: r6 agreed with r2 (its outcome read through auditOf); r13 is outside the window
    assert reject["outcome"] == "REJECT" and reject["sampled"] == 1
    assert (reject["audited"], reject["agreed"], reject["overturned"], reject["expired"]) == (1, 1, 0, 0)
    assert reject["rate"] == 0.0
    assert reject["interval"] == {"low": 0.0, "high": pytest.approx(0.7935, abs=5e-5)}


def test_per_reviewer_agreement_with_consensus_and_with_audited_decisions(figures):
    rows = {row["reviewer"]: row for row in figures["reviewers"]}
    assert [row["reviewer"] for row in figures["reviewers"]] == [
        "dave",
        "grace",
        "alice",
        "bob",
        "carol",
        "erin",
        "frank",
    ]
    assert "zed" not in rows

    def line(name):
        row = rows[name]
        return (
            row["answers"],
            row["panelAnswers"],
            row["withConsensus"],
            row["consensusAgreement"],
            row["auditAnswers"],
            row["agreedWithAutomatic"],
            row["automaticAgreement"],
        )

    assert line("alice") == (1, 1, 1, 1.0, 0, 0, None)
    assert line("bob") == (1, 1, 1, 1.0, 0, 0, None)
    assert line("carol") == (1, 1, 0, 0.0, 0, 0, None)
    # dave: alone on r5 (no panel) rejecting an approval; on r6's panel of two, with the panel, agreeing with the rules
    assert line("dave") == (2, 1, 1, 1.0, 2, 1, 0.5)
    assert line("erin") == (1, 1, 0, 0.0, 1, 0, 0.0)
    assert line("frank") == (1, 0, 0, None, 0, 0, None)
    assert line("grace") == (2, 0, 0, None, 0, 0, None)


def test_review_latency_percentiles_skip_reviews_without_request_time(figures):
    human, audit = figures["latency"]
    # human: r11 60 s, r12 120 s, r4 600 s; r8 (old) has no requestedAt
    assert human == {
        "kind": "human",
        "count": 3,
        "skipped": 1,
        "p50": 120.0,
        "p90": pytest.approx(504.0),  # rank 1.8: 120 + 0.8 × 480
        "p99": pytest.approx(590.4),  # rank 1.98
        "max": 600.0,
    }
    # audit: r5 3600 s; r6 skipped; r7 expired (no answer: not a finished review)
    assert audit == {
        "kind": "audit",
        "count": 1,
        "skipped": 1,
        "p50": 3600.0,
        "p90": 3600.0,
        "p99": 3600.0,
        "max": 3600.0,
    }


def test_json_is_stable_and_plain():
    first = json.dumps(compute(RECORDS, OUTPUTS, WINDOW).to_dict())
    again = json.dumps(compute(list(reversed(RECORDS)), dict(reversed(OUTPUTS.items())), WINDOW).to_dict())
    assert first == again
    assert list(json.loads(first)) == [
        "window",
        "decisions",
        "reviews",
        "precision",
        "overturns",
        "reviewers",
        "latency",
        "notes",
    ]


def test_empty_window_and_records_that_are_not_what_they_should_be():
    empty = compute(RECORDS, OUTPUTS, Window(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC)))
    assert empty.empty and empty.decisions.total == 0 and empty.precision == [] and empty.reviewers == []
    assert [o.audited for o in empty.overturns] == [0, 0] and all(o.interval is None for o in empty.overturns)
    assert [(row.count, row.p50) for row in empty.latency] == [(0, None), (0, None)]
    odd = [
        record("x1", "not a time", "APPROVE", "rules"),
        record("x2", "2026-12-02T00:00:00Z", "REJECT", "human", detail="{not json", auditSample="{]"),
        record("x3", "2026-12-02T00:00:00Z", "APPROVE", "audit", detail="[]", auditOf="nobody"),
        {"videoUri": "s3://m/x4.mp4", "executionName": "x4", "decidedAt": "2026-12-03T00:00:00Z"},
    ]
    broken = {"s3://results/broken/output.json": {"humanAnswers": [{"timeSpentInSeconds": "soon"}, "not an answer"]}}
    odd.append(
        record(
            "x5",
            "2026-12-04T00:00:00Z",
            "APPROVE",
            "human",
            detail=json.dumps({"decision": "APPROVE", "reviewer": "kim", "outputS3Uri": next(iter(broken))}),
        )
    )
    figures = compute(odd, broken, WINDOW)
    assert [(r.reviewer, r.answers) for r in figures.reviewers] == [("kim", 1)]  # from the record
    assert figures.decisions.total == 4
    assert figures.decisions.byDecision == {"(none)": 1, "APPROVE": 2, "REJECT": 1}
    assert any("decidedAt" in note for note in figures.notes)
    assert any("audited decision" in note for note in figures.notes)
    json.dumps(figures.to_dict())


# ---------------------------------------------------------------------------- the window's spellings
NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", datetime(2026, 12, 8, 11, 30, tzinfo=UTC)),
        ("12h", datetime(2026, 12, 8, 0, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("2w", datetime(2026, 11, 24, 12, 0, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T08:00:00Z", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01T09:00:00+01:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ],
)
def test_durations_and_iso_times(text, expected):
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["7", "7y", "-7d", "yesterday", "<script>", "999999w", "7d; drop"])
def test_bad_times_are_refused_with_a_message(text):
    with pytest.raises(ValueError, match=r"not a time|before the year"):
        parse_moment(text, NOW)


def test_window_defaults_and_order():
    assert parse_window(None, None, NOW) == Window(datetime(2026, 12, 1, 12, tzinfo=UTC), NOW)
    with pytest.raises(ValueError, match="since must be before until"):
        parse_window("1d", "2d", NOW)
