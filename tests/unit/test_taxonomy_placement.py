"""Where the taxonomy puts labels nobody placed, and a detector's own coverage report (no rule set involved).
Each case kills mutants `make mutate` found (docs/testing.md)."""

from __future__ import annotations

import pytest

from vidmod_contracts.taxonomy import CategoryCoverage, Placement, load_taxonomy


@pytest.mark.parametrize(
    ("reported", "placed"),
    [
        (("Brand New Label",), Placement("Brand New Label", "", "Unknown", 1)),
        (("Brand New Label", "Brand New Parent"), Placement("Brand New Label", "Brand New Parent", "Unknown", 2)),
    ],
)
def test_a_label_with_no_known_ancestor_stays_visible_in_the_unknown_category(reported, placed):
    """Its own category when reported alone, a level-2 label under its (equally unknown) parent otherwise."""
    assert load_taxonomy().place(*reported) == placed


def test_a_detectors_own_coverage_report_counts_every_v7_label_of_each_category():
    """No rule set (the detector describing itself): every label counts, whether a rule acts on it or not."""
    taxonomy = load_taxonomy()
    report = {entry.category: entry for entry in taxonomy.coverage(["Violence"])}
    assert list(report) == taxonomy.categories
    assert report["Violence"] == CategoryCoverage("Violence", taxonomy.labels_under("Violence"), [])
    assert report["Alcohol"] == CategoryCoverage("Alcohol", [], taxonomy.labels_under("Alcohol"))
    assert all(not entry.notChecked for entry in taxonomy.coverage(None))
