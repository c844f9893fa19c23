"""A job that never finishes: the poll loop gives up after exactly PollMaxAttempts status checks."""

from __future__ import annotations

import pytest
from harness import Workflow, start_stack
from scripted_rekognition import Script

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory, PollMaxAttempts="3")
    yield Workflow(stack, scripted)
    stack.stop()


def test_a_job_still_running_after_the_poll_budget_fails_naming_the_checks_made(workflow):
    workflow.scripted.script("stuck.mp4", Script(in_progress_polls=1000))
    workflow.upload("stuck.mp4")
    arn = workflow.execution_for("stuck.mp4")
    result = workflow.wait(arn)
    assert result["status"] == "FAILED" and result["error"] == "ModerationPollingTimedOut"
    assert "still IN_PROGRESS after 3 polls" in result["cause"]
    assert workflow.states(arn).count("CheckModeration") == 3  # PollMaxAttempts checks, not one more
    record = workflow.decision(arn)
    assert record["decision"] == "FAILED" and "after 3 polls" in record["detail"]
