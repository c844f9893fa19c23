"""What a decision's reasons say, how several segments of one label count, which labels a rule set makes a detector
responsible for, and how detections become segments (each case kills mutants `make mutate` found; docs/testing.md)."""

from __future__ import annotations

import json

import pytest
from unit.detections import det

KISSING_L1 = "Non-Explicit Nudity of Intimate parts and Kissing"


def shipped(er, **changes):
    """The shipped rule set (Violence: review 60, reject 97; Alcohol: review 80), full coverage unless changed."""
    rules, _, taxonomy = er
    data = json.loads(rules.DEFAULT_RULESET.read_text()) | {"coverage": []} | changes
    return rules.load_ruleset(json.dumps(data), taxonomy.load_taxonomy())


def decide(er, detections: list[dict], policy=None, model_version: str = "7.0"):
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    policy = policy or shipped(er)
    return rules.decide(segments.merge_segments(detections, tax, policy.mergeGapMillis), policy, model_version, tax)


@pytest.mark.parametrize(("confidence", "band", "threshold"), [(65.0, "review", 60.0), (98.0, "reject", 97.0)])
def test_a_reason_names_the_category_the_confidence_and_the_threshold_it_crossed(er, confidence, band, threshold):
    rules, _, _ = er
    decision = decide(er, [det("Weapons", "Violence", 2, confidence, 0)])
    assert decision.reasons == [rules.Reason("Violence", "Weapons", band, confidence, threshold, 1)]


def test_a_label_crossing_in_several_segments_is_one_reason_with_its_strongest_moment_and_every_segment(er):
    rules, _, _ = er
    # Three segments (10 s apart, more than the 2 s merge gap): strong, weaker, strongest, all in the review band.
    detections = [det("Weapons", "Violence", 2, c, ts) for c, ts in [(90, 0), (70, 10_000), (95, 20_000)]]
    assert decide(er, detections).reasons == [rules.Reason("Violence", "Weapons", "review", 95.0, 60.0, 3)]
    # A rejecting segment decides the label's band whatever comes after it.
    detections = [det("Weapons", "Violence", 2, c, ts) for c, ts in [(98, 0), (70, 10_000)]]
    decision = decide(er, detections)
    assert decision.outcome == "REJECT"
    assert decision.reasons == [rules.Reason("Violence", "Weapons", "reject", 98.0, 97.0, 2)]


def test_reasons_in_one_band_are_listed_most_confident_first_not_by_name(er):
    detections = [det("Weapons", "Violence", 2, 90, 0), det("Drinking", "Alcohol Use", 3, 85, 0)]
    decision = decide(er, detections)
    assert [(r.label, r.band) for r in decision.reasons] == [("Weapons", "review"), ("Drinking", "review")]


def test_a_label_below_every_threshold_does_not_hide_the_labels_after_it(er):
    detections = [det("Weapons", "Violence", 2, 30, 0), det("Nazi Party", "Hate Symbols", 2, 95, 5_000)]
    decision = decide(er, detections)
    assert decision.outcome == "REJECT"
    assert [r.label for r in decision.reasons] == ["Nazi Party"]


def test_a_rule_on_one_label_makes_only_that_label_one_the_detector_must_see(er):
    rules, _, taxonomy = er
    blind = {"modelVersionPrefix": "blind", "covered": []}
    policy = shipped(er, defaults={"review": None}, categories={}, labels={"Weapons": {"review": 60}}, coverage=[blind])
    decision = decide(er, [], policy, "blind")
    assert decision.coverage == [taxonomy.CategoryCoverage("Violence", [], ["Weapons"])]
    assert decision.outcome == "REVIEW"  # the only label the rules act on was not checked
    assert decision.reasons == [rules.Reason("Violence", "Violence", "uncovered")]


def test_a_rule_on_a_level_2_name_makes_every_label_under_it_one_the_detector_must_see(er):
    _, _, taxonomy = er
    blind = {"modelVersionPrefix": "blind", "covered": []}
    policy = shipped(
        er, defaults={"review": None}, categories={}, labels={"Graphic Violence": {"review": 60}}, coverage=[blind]
    )
    decision = decide(er, [], policy, "blind")
    under = taxonomy.load_taxonomy().labels_under("Graphic Violence")
    assert "Blood & Gore" in under and "Weapons" not in under
    assert decision.coverage == [taxonomy.CategoryCoverage("Violence", [], under)]
    assert decision.outcome == "REVIEW"


def test_detections_exactly_the_merge_gap_apart_are_one_segment(er):
    _, segments, taxonomy = er
    detections = [det("Weapons", "Violence", 2, 70, 0), det("Weapons", "Violence", 2, 80, 2_000)]
    merged = segments.merge_segments(detections, taxonomy.load_taxonomy(), gap_millis=2_000)
    assert [(s.startMillis, s.endMillis, s.maxConfidence, s.detections) for s in merged] == [(0, 2_000, 80.0, 2)]


def test_two_hierarchies_reported_at_the_same_moment_each_keep_only_their_most_specific_label(er):
    _, segments, taxonomy = er
    detections = [
        det(KISSING_L1, "", 1, 92, 0),
        det("Kissing on the Lips", KISSING_L1, 2, 92, 0),
        det("Violence", "", 1, 70, 0),
        det("Weapons", "Violence", 2, 70, 0),
    ]
    merged = segments.merge_segments(detections, taxonomy.load_taxonomy(), 2_000)
    assert sorted(s.name for s in merged) == ["Kissing on the Lips", "Weapons"]


@pytest.mark.parametrize(
    ("parent", "level"),
    [
        ("Violence", 2),  # under a category: a level-2 label
        ("Graphic Violence", 3),  # under a level-2 label: a level-3 label
        ("Blood & Gore", 3),  # under a level-3 label: still level 3, the deepest v7 has
    ],
)
def test_a_label_rekognition_reports_that_the_taxonomy_does_not_know_is_judged_under_its_parents_category(
    er, parent, level
):
    rules, segments, taxonomy = er
    detections = [det("Brand New Label", parent, level, 70, 0)]
    (segment,) = segments.merge_segments(detections, taxonomy.load_taxonomy(), 2_000)
    assert segment.to_dict() == {
        "name": "Brand New Label",
        "parentName": parent,
        "category": "Violence",
        "taxonomyLevel": level,
        "startMillis": 0,
        "endMillis": 0,
        "maxConfidence": 70.0,
        "detections": 1,
    }
    assert decide(er, detections).reasons == [rules.Reason("Violence", "Brand New Label", "review", 70.0, 60.0, 1)]


def test_a_label_the_taxonomy_does_not_know_reported_without_a_parent_is_a_category_of_its_own(er):
    _, segments, taxonomy = er
    detection = {"Timestamp": 0, "ModerationLabel": {"Name": "Brand New Category", "Confidence": 70}}
    (segment,) = segments.merge_segments([detection], taxonomy.load_taxonomy(), 2_000)
    assert (segment.name, segment.parentName, segment.category, segment.taxonomyLevel) == (
        "Brand New Category",
        "",
        "Unknown",
        1,
    )


def test_a_detection_without_a_confidence_is_kept_at_zero_and_crosses_no_threshold(er):
    """A user's local model may leave Confidence out: the label is still listed, and judged as 0 %."""
    _, segments, taxonomy = er
    detection = {"Timestamp": 0, "ModerationLabel": {"Name": "Weapons", "ParentName": "Violence", "TaxonomyLevel": 2}}
    (segment,) = segments.merge_segments([detection], taxonomy.load_taxonomy(), 2_000)
    assert (segment.name, segment.maxConfidence) == ("Weapons", 0.0)
    # Every label reviewed from 0.5 %: a confidence made up as 1 % would cross it.
    policy = shipped(er, defaults={"review": 0.5}, categories={}, labels={})
    assert decide(er, [detection], policy).outcome == "APPROVE"


def test_a_pre_v7_explicit_nudity_category_is_judged_as_the_v7_category_explicit(er):
    """Before v7 "Explicit Nudity" was a category (level 1); now it is a level-2 label: the level tells which."""
    _, segments, taxonomy = er
    merged = segments.merge_segments([det("Explicit Nudity", "", 1, 95, 0)], taxonomy.load_taxonomy(), 2_000)
    assert [(s.name, s.parentName, s.category, s.taxonomyLevel) for s in merged] == [("Explicit", "", "Explicit", 1)]
    assert decide(er, [det("Explicit Nudity", "", 1, 95, 0)]).reasons[0].label == "Explicit"


def test_a_detection_without_a_timestamp_counts_at_the_start_of_the_video(er):
    """Neither TIMESTAMPS (Timestamp) nor SEGMENTS (Start/EndTimestampMillis) fields: still judged, at 0:00."""
    rules, _, _ = er
    detection = {"ModerationLabel": {"Name": "Weapons", "ParentName": "Violence", "TaxonomyLevel": 2, "Confidence": 70}}
    decision = decide(er, [detection])
    assert decision.reasons == [rules.Reason("Violence", "Weapons", "review", 70.0, 60.0, 1)]
    _, segments, taxonomy = er
    (segment,) = segments.merge_segments([detection], taxonomy.load_taxonomy(), 2_000)
    assert (segment.startMillis, segment.endMillis) == (0, 0)
