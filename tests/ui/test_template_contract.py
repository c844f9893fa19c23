"""What A2I's worker portal offers a template, checked on ui/ itself (A2I renders it; nothing else may be used).

A2I's Liquid has the standard filters plus ``grant_read_access``, ``to_json`` and ``skip_autoescape``; the
crowd elements whose output shapes are documented are the only ones the local polyfill and
complete_human_review understand. ``skip_autoescape`` on any input would reopen HTML injection.
"""

from __future__ import annotations

import re
from pathlib import Path

from liquid import Environment

UI = Path(__file__).resolve().parents[2] / "ui" / "moderation-review.liquid.html"
A2I_FILTERS = {"grant_read_access", "to_json"}
DOCUMENTED_ELEMENTS = {
    "crowd-form",
    "crowd-button",
    "crowd-radio-group",
    "crowd-radio-button",
    "crowd-checkbox",
    "crowd-classifier",
    "crowd-text-area",
    "crowd-input",
}


def parsed():
    env = Environment(autoescape=True)
    for name in (*A2I_FILTERS, "skip_autoescape"):
        env.filters[name] = lambda value, *args: value
    return env.from_string(UI.read_text(encoding="utf-8"))


def test_only_standard_liquid_and_a2i_filters_and_never_skip_autoescape():
    template = parsed()
    standard = set(Environment().filters)
    used = set(template.filter_names())
    assert "skip_autoescape" not in used
    assert used <= standard | A2I_FILTERS, used - standard - A2I_FILTERS
    assert "grant_read_access" in used  # the video is reached through A2I's presigned URL, not a public one
    assert set(template.tag_names()) <= {"if", "unless", "for", "assign", "capture", "case", "comment", "raw"}


def test_only_documented_crowd_elements_and_only_task_input():
    source = UI.read_text(encoding="utf-8")
    assert set(re.findall(r"<(crowd-[a-z-]+)", source)) <= DOCUMENTED_ELEMENTS
    assert {"crowd-form", "crowd-radio-group"} <= set(re.findall(r"<(crowd-[a-z-]+)", source))
    roots = {str(path).split(".")[0] for path in parsed().global_variables()}
    assert roots == {"task"}, roots  # A2I gives a template task.input and nothing else
    assert 'src="https://assets.crowd.aws/crowd-html-elements.js"' in source  # A2I's own script, replaced locally
