"""The portal's /metrics page in a real chrome (Debian chromium via Playwright): the quality figures of fixture
records written straight into the local stack's decisions table and results bucket (no moderation runs).

Plots are server-side SVG; reviewer names, labels and categories are attacker-controlled and must show as text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from harness import start_stack
from quality_fixtures import OUTPUTS, RECORDS, output, record, review_detail, store

pytestmark = [pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
EVIL = '<img src=x onerror="window.__pwned=1;alert(1)">'
EVIL_CATEGORY = "</text><script>window.__pwned=2;alert(2)</script>"
MATH = r"$\frac{1}{$ & co"  # would be a (broken) formula if matplotlib parsed it as mathtext
FIXTURE_WINDOW = "since=2026-12-01&until=2026-12-08T00:00:00Z"
EVIL_WINDOW = "since=2026-11-01&until=2026-11-08"
TITLES = {
    "precision": "Detector precision per category",
    "overturns": "Automatic decisions overturned by audits",
    "reviewers": "Reviewer agreement",
    "latency": "Review latency",
}


def evil_records(bucket: str) -> tuple[list[dict], dict]:
    """One human review in November by two reviewers with hostile names, on a segment with a hostile label and
    category."""
    segments = [{"index": 0, "name": EVIL, "parentName": "Violence", "category": EVIL_CATEGORY}]
    answers = [
        {
            "workerId": name,
            "submissionTime": "2026-11-02T10:05:00.000Z",
            "answerContent": {"decision-reject": {"value": True}, "seg-0-tp": {"value": True}},
        }
        for name in (EVIL, MATH)
    ]
    uri = f"s3://{bucket}/a2i-output/evil/output.json"
    detail = json.loads(review_detail("REJECT", uri, [], "2026-11-02T10:00:00.000Z"))
    evil = record(
        "evil", "2026-11-02T10:05:01.000Z", "REJECT", "human", reviewer=f"{EVIL},{MATH}", detail=json.dumps(detail)
    )
    return [evil], {uri: output("evil", answers, segments)}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A local stack with its portal, the fixture records and outputs written in: (stack, portal URL)."""
    stack, _ = start_stack(tmp_path_factory)
    url = stack.start_portal(0)
    ddb, s3 = stack.client("dynamodb"), stack.client("s3")
    s3.create_bucket(Bucket="results")  # the fixture outputs' bucket
    store(ddb, s3, stack.decisions_table, RECORDS, OUTPUTS)
    store(ddb, s3, stack.decisions_table, *evil_records(stack.resources.bucket_name("ResultsBucket")))
    yield stack, url.rstrip("/")
    stack.stop()


@pytest.fixture(scope="module")
def portal(local) -> str:
    return local[1]


def console_error(page, message) -> None:
    """Console errors, but the portal's missing favicon (chromium asks for one on every origin)."""
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        page.errors.append(f"{message.text} ({message.location.get('url')})")


@pytest.fixture
def tab(chrome):
    """A fresh context; dialogs, console errors and page errors are recorded (and dialogs dismissed)."""
    context = chrome.new_context(viewport={"width": 1280, "height": 1200})
    page = context.new_page()
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: console_error(page, message))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def login(page, base: str, name: str = "lead") -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=reviewer]", name)
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_metrics_needs_a_login_and_is_linked_from_the_portal(portal, tab):
    tab.goto(f"{portal}/metrics")
    assert tab.url.endswith("/login")
    login(tab, portal)
    tab.click("nav a:text('Quality')")
    tab.wait_for_url("**/metrics")
    assert tab.locator("h2").first.inner_text() == "Quality figures"
    assert tab.errors == [] and tab.dialogs == []


def test_the_figures_render_as_plots_and_tables(portal, tab, tmp_path):
    login(tab, portal)
    response = tab.goto(f"{portal}/metrics?{FIXTURE_WINDOW}")
    assert response.status == 200
    for name, title in TITLES.items():
        plot = tab.locator(f"section#{name} svg.plot")
        assert plot.count() == 1
        assert plot.locator("xpath=./*[local-name()='title']").text_content() == title
        assert plot.bounding_box()["width"] > 400  # drawn, not collapsed
        assert "100%" in plot.locator("text").all_text_contents()  # text stays text (svg.fonttype none)
    # the numbers (tests/unit/test_quality_figures.py works them out)
    summary = tab.inner_text("p.summary")
    assert "from 2026-12-01T00:00:00.000Z to 2026-12-08T00:00:00.000Z (decidedAt, end excluded): 12." in summary
    assert "4 human and 3 audit review(s)" in summary and "output for 3, from the decision record for 3" in summary
    first_cell = tab.locator("td:first-child", has_text=re.compile("^Violence$"))
    violence = tab.locator("section#precision tr.category", has=first_cell).inner_text()
    assert "57.1%" in violence
    approve = tab.locator("section#overturns tr", has_text="APPROVE").inner_text()  # one row per outcome
    assert "100.0%" in approve and "20.7% – 100.0%" in approve
    dave = tab.locator("section#reviewers tr", has=tab.locator("td.reviewer", has_text="dave")).inner_text()
    assert "100.0% (1 of 1)" in dave and "50.0% (1 of 2)" in dave
    human = tab.locator("section#latency tr", has_text="human").inner_text()
    assert "2.0 min" in human and "10.0 min" in human
    assert tab.errors == [] and tab.dialogs == []
    path = tmp_path / "metrics.png"
    tab.screenshot(path=str(path), full_page=True, animations="disabled")
    if os.environ.get("VIDMOD_UPDATE_DOCS") == "1":
        shutil.copyfile(path, ROOT / "docs" / "img" / "metrics.png")


def test_reviewer_names_labels_and_categories_are_text(portal, tab):
    login(tab, portal)
    assert tab.goto(f"{portal}/metrics?{EVIL_WINDOW}").status == 200
    assert tab.locator("img").count() == 0 and tab.locator("script").count() == 0
    assert tab.evaluate("window.__pwned") is None and tab.dialogs == [] and tab.errors == []
    names = tab.locator("section#reviewers td.reviewer").all_inner_texts()
    assert sorted(names) == sorted([EVIL, MATH])
    assert tab.locator("section#precision tr.category td").first.inner_text() == EVIL_CATEGORY
    assert tab.locator("section#precision tr.label td").first.inner_text() == EVIL
    reviewer_plot = tab.locator("section#reviewers svg.plot text").all_text_contents()
    assert EVIL[:39] + "…" in reviewer_plot and MATH in reviewer_plot  # literally (names cut at 40), not as mathtext
    precision_plot = tab.locator("section#precision svg.plot text").all_text_contents()
    assert EVIL_CATEGORY[:39] + "…" in precision_plot
    assert tab.locator("svg.plot").count() == 4


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "'yesterday' is not a time"),
        ("since=<script>alert(3)</script>", "is not a time"),
        ("since=1d&until=2d", "since must be before until"),
        ("since=" + "9" * 100, "at most 64 characters"),
    ],
)
def test_a_bad_window_is_a_400_page_that_says_why(portal, tab, query, message):
    login(tab, portal)
    response = tab.goto(f"{portal}/metrics?{query}")
    assert response.status == 400
    tab.errors.remove(f"Failed to load resource: the server responded with a status of 400 (Bad Request) ({tab.url})")
    assert message in tab.inner_text("p.error")
    assert tab.locator("svg.plot").count() == 0 and tab.locator("script").count() == 0
    assert tab.dialogs == [] and tab.errors == []


def test_an_empty_window_says_so(portal, tab):
    login(tab, portal)
    assert tab.goto(f"{portal}/metrics?since=2020-01-01&until=2020-01-02").status == 200
    assert "No decisions in this window" in tab.inner_text("p.empty")
    assert tab.locator("svg.plot").count() == 0 and tab.errors == []


def test_the_command_reads_the_same_figures_from_the_local_stack(local, capsys, monkeypatch):
    """`vidmod metrics` against the local endpoint (its default target) finds what the page shows."""
    monkeypatch.setenv("COLUMNS", "250")  # rich would wrap the long names
    from vidmod.cli.main import main

    endpoint = local[0].endpoint_url
    assert (
        main(
            [
                "metrics",
                "--endpoint-url",
                endpoint,
                "--since",
                "2026-12-01",
                "--until",
                "2026-12-08",
                "--format",
                "json",
            ]
        )
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    assert figures["decisions"]["total"] == 12 and figures["overturns"][0]["overturned"] == 1
    assert main(["metrics", "--endpoint-url", endpoint, "--since", "2026-11-01", "--until", "2026-11-08"]) == 0
    out = capsys.readouterr().out
    assert EVIL_CATEGORY in out and MATH in out  # literally
