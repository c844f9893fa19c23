"""The workshop's policy (``rules/workshop.json``, chosen with the template's ``Ruleset`` parameter) on the
local engine: Rekognition labels under the workshop's pre-v7 names, scripted, decide as its notebook did —
human review above 80 for "Alcoholic Beverages", "Drinking" and "Barechested Male", approval otherwise."""

from __future__ import annotations

import json

import pytest
from harness import Workflow, start_stack
from scripted_rekognition import Script, detection

pytestmark = pytest.mark.workflow

# (pre-v7 name, its pre-v7 parent, the v7 label the rule set names)
WORKSHOP_LABELS = [
    ("Alcoholic Beverages", "Alcohol", "Alcoholic Beverages"),
    ("Drinking", "Alcohol", "Drinking"),
    ("Barechested Male", "Suggestive", "Exposed Male Nipple"),
]
# The notebook's test is "confidence > 80": exactly 80 is approved.
CASES = [(name, parent, v7, confidence) for name, parent, v7 in WORKSHOP_LABELS for confidence in (85.0, 80.0, 75.0)]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory, Ruleset="workshop")
    yield Workflow(stack, scripted)
    stack.stop()


def pre_v7(name: str, parent: str, confidence: float) -> list[dict]:
    """The label and its level-1 parent at one moment, as Rekognition's pre-v7 model reported them."""
    return [detection(parent, "", 1, confidence, 4000), detection(name, parent, 2, confidence, 4000)]


def rules_output(workflow: Workflow, arn: str) -> dict:
    for event in workflow.history(arn):
        details = event.get("stateExitedEventDetails", {})
        if details.get("name") == "EvaluateRules":
            return json.loads(details["output"])["decision"]
    raise AssertionError(f"{arn} has not left EvaluateRules: {workflow.states(arn)}")


def test_the_workshop_policy_reviews_its_three_labels_above_80_and_approves_the_rest(workflow):
    keys = {}
    for name, parent, v7, confidence in CASES:
        key = f"workshop/{v7}-{confidence:g}.mp4".replace(" ", "-")
        workflow.scripted.script(key, Script(labels=pre_v7(name, parent, confidence)))
        keys[key] = (v7, confidence)
    # Anything else, however strong, is approved by this policy.
    workflow.scripted.script("workshop/weapons.mp4", Script(labels=[detection("Weapons", "Violence", 2, 99.0, 1000)]))
    for key in [*keys, "workshop/weapons.mp4"]:
        workflow.upload(key)

    for key, (v7, confidence) in keys.items():
        arn = workflow.execution_for(key)
        if confidence > 80:
            workflow.wait_for_review(arn)
            decision = rules_output(workflow, arn)
            assert decision["outcome"] == "REVIEW", key
            assert [(r["label"], r["band"], r["threshold"]) for r in decision["reasons"]] == [(v7, "review", 80)]
        else:
            assert workflow.wait(arn)["status"] == "SUCCEEDED", key
            record = workflow.decision(arn)
            assert (record["decision"], record["source"]) == ("APPROVE", "rules"), key
        assert rules_output(workflow, arn)["ruleSetVersion"].startswith("workshop-")

    weapons = workflow.execution_for("workshop/weapons.mp4")
    assert workflow.wait(weapons)["status"] == "SUCCEEDED"
    assert workflow.decision(weapons)["decision"] == "APPROVE"
