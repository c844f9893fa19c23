"""Warm Lambda environments on the local stack: what a warm container keeps between invocations now runs (and
is tested) locally, as it runs in AWS — here evaluate_rules' cached copy of an overridden rule set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import Workflow, start_stack
from scripted_rekognition import Script

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = json.loads((ROOT / "functions" / "evaluate_rules" / "rules" / "ruleset.json").read_text())
OVERRIDE_KEY = "rules/override.json"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory, RulesetS3Uri=f"s3://vidmod-resultsbucket/{OVERRIDE_KEY}")
    yield Workflow(stack, scripted)
    stack.stop()


def put_ruleset(workflow: Workflow, version: str) -> None:
    body = json.dumps(SHIPPED | {"version": version}).encode()
    workflow.s3.put_object(Bucket="vidmod-resultsbucket", Key=OVERRIDE_KEY, Body=body)


def test_a_warm_rule_lambda_keeps_its_copy_of_the_rule_set_until_it_rechecks(workflow):
    put_ruleset(workflow, "override-A")
    workflow.scripted.script("first.mp4", Script(labels=[]))
    workflow.upload("first.mp4")
    first = workflow.execution_for("first.mp4")
    assert workflow.wait(first)["status"] == "SUCCEEDED"
    assert workflow.decision(first)["ruleSetVersion"] == "override-A"

    put_ruleset(workflow, "override-B")  # within RULESET_TTL_SECONDS (60 s): the warm copy still applies
    workflow.scripted.script("second.mp4", Script(labels=[]))
    workflow.upload("second.mp4")
    second = workflow.execution_for("second.mp4")
    assert workflow.wait(second)["status"] == "SUCCEEDED"
    assert workflow.decision(second)["ruleSetVersion"] == "override-A"

    log = (workflow.stack.options.state_dir / "logs" / "vidmod-EvaluateRulesFunction.log").read_text()
    assert log.count("INIT_START") == 1 and log.count("REPORT RequestId") == 2  # one environment served both
