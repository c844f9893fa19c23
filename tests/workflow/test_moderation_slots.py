"""Admission control on the local stack: a burst is held to MaxConcurrentModerationJobs, first come first served.

The real template, ASL, admission Lambda and local detector; the limit is 3 here. Job records come from the
local Rekognition (when each job started and ended), grants from each execution's own history.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from harness import Workflow, start_stack
from scripted_rekognition import Script

from vidmod.audit.history import waiting_in
from vidmod.cli.main import main
from vidmod.detector.synthetic import make_test_video
from vidmod.emulator.rekognition import peak_concurrency
from vidmod_contracts.moderation_slots import SlotTable

LIMIT = 3
LONG = Script(in_progress_polls=100_000)  # a job that holds its slot until the execution is stopped


@pytest.fixture(scope="module")
def admission(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory, MaxConcurrentModerationJobs=str(LIMIT))
    yield Workflow(stack, scripted)
    stack.stop()


def slots(workflow: Workflow) -> SlotTable:
    return SlotTable(workflow.ddb, workflow.stack.resources.tables["ModerationSlotsTable"]["TableName"])


def until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def grant_of(workflow: Workflow, arn: str) -> dict | None:
    """The grant the execution received ($.admission after WaitForModerationSlot), None while it waits."""
    for event in workflow.history(arn):
        details = event.get("stateExitedEventDetails", {})
        if details.get("name") == "WaitForModerationSlot":
            return json.loads(details["output"])["admission"]
    return None


def held_slot(workflow: Workflow, arn: str) -> dict:
    """A time the execution surely held its slot, as StartedAt/CompletedAt (``peak_concurrency`` counts them):
    from leaving WaitForModerationSlot (granted) to entering ReleaseModerationSlot (the release, and the next
    grant it triggers, come after)."""
    times = {}
    for event in workflow.history(arn):
        if event.get("stateExitedEventDetails", {}).get("name") == "WaitForModerationSlot":
            times["StartedAt"] = event["timestamp"].timestamp()
        if event.get("stateEnteredEventDetails", {}).get("name") == "ReleaseModerationSlot":
            times["CompletedAt"] = event["timestamp"].timestamp()
    return times


def settled(workflow: Workflow, arn: str) -> bool:
    """In human review, or finished."""
    if workflow.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
        return True
    return waiting_in(workflow.history(arn)) == "HumanReview"


def status_text(workflow: Workflow, capsys) -> str:
    capsys.readouterr()
    assert main(["status", "--endpoint-url", workflow.stack.endpoint_url]) == 0
    return " ".join(capsys.readouterr().out.split())


def queue_page(workflow: Workflow) -> str:
    with httpx.Client(base_url=workflow.stack.start_portal()) as portal:
        token = re.search(r'name="csrf-token" content="([^"]+)"', portal.get("/login").text).group(1)
        portal.post("/login", data={"reviewer": "lead", "csrf": token})
        return " ".join(portal.get("/").text.split())


def test_an_execution_stopped_while_it_holds_a_slot_or_waits_for_one_frees_its_place(admission, capsys):
    workflow, table = admission, slots(admission)
    until(lambda: table.usage(LIMIT).in_use == 0, 120, "a free stack")
    holders = []
    for i in range(LIMIT):
        admission.scripted.script(f"hold/{i}.mp4", LONG)
        workflow.upload(f"hold/{i}.mp4")
        holders.append(workflow.execution_for(f"hold/{i}.mp4"))
    until(lambda: all(grant_of(workflow, arn) for arn in holders), 60, "three grants")
    admission.scripted.script("hold/next.mp4", LONG)
    admission.scripted.script("hold/given-up.mp4", LONG)
    workflow.upload("hold/next.mp4")
    waiting = workflow.execution_for("hold/next.mp4")
    until(lambda: table.queue_length() == 1, 30, "the fourth execution to queue")
    workflow.upload("hold/given-up.mp4")
    given_up = workflow.execution_for("hold/given-up.mp4")
    until(lambda: table.queue_length() == 2, 30, "the fifth execution to queue")
    assert grant_of(workflow, waiting) is None and table.usage(LIMIT).in_use == LIMIT
    shown = "3 of 3 in use; 2 (?:execution|video)\\(s\\) waiting for one"
    assert re.search(shown, status_text(workflow, capsys)), "vidmod status shows the slots"
    assert re.search(shown, queue_page(workflow)), "the portal's queue page shows the slots"

    workflow.sfn.stop_execution(executionArn=given_up, cause="test: gave up while queued")
    until(lambda: table.queue_length() == 1, 30, "the stopped execution to leave the queue")
    workflow.sfn.stop_execution(executionArn=holders[0], cause="test: stopped while holding a slot")
    grant = until(lambda: grant_of(workflow, waiting), 30, "the waiting execution to be let in")
    assert grant["limit"] == LIMIT and grant["queuedSeconds"] > 0
    usage = table.usage(LIMIT)
    assert usage.in_use == LIMIT and usage.queued == 0 and holders[0] not in usage.holders
    assert grant_of(workflow, given_up) is None
    assert "StartModeration" not in workflow.states(given_up)

    for arn in [*holders[1:], waiting]:
        workflow.sfn.stop_execution(executionArn=arn, cause="test: done")
    until(lambda: table.usage(LIMIT).in_use == 0, 30, "every slot back")


def test_a_burst_is_held_to_the_limit_and_let_in_first_come_first_served(admission, tmp_path):
    workflow, table = admission, slots(admission)
    until(lambda: table.usage(LIMIT).in_use == 0, 120, "a free stack")
    video = make_test_video(tmp_path / "clip.mp4", seconds=1, size=(64, 48)).read_bytes()
    keys = [f"burst/{i:02d}.mp4" for i in range(32)]
    for key in keys:
        workflow.upload(key, video)
    arns = [workflow.execution_for(key) for key in keys]
    until(lambda: all(settled(workflow, arn) for arn in arns), 300, "every video in review or decided")

    grants = [grant_of(workflow, arn) for arn in arns]
    assert all(grants), "an execution reached review without a grant"
    # FIFO: the queued ones were let in in arrival order (those let in at once, the first few, arrived together)
    queued = sorted((g for g in grants if g["queuedSeconds"] > 0), key=lambda g: (g["grantedAt"], g["ticket"]))
    assert [g["ticket"] for g in queued] == sorted(g["ticket"] for g in queued)
    assert sum(g["queuedSeconds"] > 0.5 for g in grants) >= len(keys) - 2 * LIMIT  # most of the burst waited

    jobs = [
        job
        for job in workflow.stack.detector.jobs.values()
        if job["Video"]["S3Object"]["Name"].startswith("burst/") and "CompletedAt" in job
    ]
    assert len(jobs) == len(keys)  # one analysis per video, none lost
    assert peak_concurrency(jobs) <= LIMIT  # never exceeded (a 1 s clip's job may end before the next starts)
    assert peak_concurrency([held_slot(workflow, arn) for arn in arns]) == LIMIT  # the limit was used
    ticket = {arn: grant["ticket"] for arn, grant in zip(arns, grants, strict=True)}
    key_ticket = {key: ticket[arn] for key, arn in zip(keys, arns, strict=True)}
    started = [key_ticket[j["Video"]["S3Object"]["Name"]] for j in sorted(jobs, key=lambda j: j["StartedAt"])]
    # Jobs start in arrival order, but for executions let in at the same moment (at most LIMIT of them).
    assert all(later > earlier - LIMIT for i, earlier in enumerate(started) for later in started[i + 1 :])
    assert table.usage(LIMIT) == table.usage(LIMIT).__class__(0, LIMIT, 0, ())
