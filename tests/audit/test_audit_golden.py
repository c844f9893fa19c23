"""Checked-in histories of real runs (one per outcome) give exactly the checked-in reports (and render)."""

from __future__ import annotations

import copy
import io

import pytest
from audit.golden import OUTCOMES, check_report, load_recording, report_from
from rich.console import Console

from vidmod.audit.history import waiting_in
from vidmod.audit.render import print_text, to_html


@pytest.mark.parametrize("name", OUTCOMES)
def test_each_recorded_history_gives_its_golden_report(name):
    check_report(name, report_from(load_recording(name)))


def test_the_golden_report_renders_segments_verdicts_and_answers():
    report = report_from(load_recording("human_review"))
    html = to_html(report)
    for text in (
        "Weapons",
        "Drugs &amp; Tobacco Paraphernalia &amp; Use / Smoking",
        "bob: wrong-category (Violence)",
        "0:08.000–0:08.000",
        "Answers of bob: REJECT",
        "real gun, then a rude gesture",
        "The decision record matches the execution history",
    ):
        assert text in html, text
    console = Console(record=True, width=200, file=io.StringIO())
    print_text(report, console)
    text = console.export_text()
    assert "0:02.000–0:02.000  Violence / Weapons  82.5  bob: true-positive" in text
    assert "integrity ok" in text and "trigger  s3-upload by 123456789012" in text


def test_an_execution_still_waiting_for_review_is_in_progress_not_flagged():
    recording = load_recording("human_review")
    entered = next(
        i for i in range(len(recording["events"])) if waiting_in(recording["events"][: i + 1]) == "HumanReview"
    )
    waiting = dict(recording, events=recording["events"][: entered + 1], record=None)
    report = report_from(waiting)
    assert (report.status, report.integrity, report.review) == ("RUNNING", [], None)
    assert report.notes == ["in progress: no decision recorded yet"]


def test_a_record_without_a_history_decision_is_flagged():
    recording = copy.deepcopy(load_recording("human_review"))
    cut = next(i for i in range(len(recording["events"])) if waiting_in(recording["events"][: i + 1]) == "HumanReview")
    recording["events"] = recording["events"][: cut + 1]
    assert report_from(recording).integrity == ["a decision record exists but the history never wrote one"]
