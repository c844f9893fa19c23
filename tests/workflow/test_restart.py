"""The embedded stack keeps its state across a clean restart, as an AWS account would (``vidmod.emulator.persistence``;
kills with SIGKILL are in ``tests/emulator/test_crash_safety.py``).

A finished execution stays listed with its history and its decision record; an execution that was waiting
for a reviewer when the stack stopped is started again under its own name, finds its review still in the
queue, and finishes with the reviewer's decision.
"""

from __future__ import annotations

import json

import pytest
from harness import WEAPON, Workflow, start_stack
from scripted_rekognition import Script

from vidmod.emulator import persistence
from vidmod.emulator.stack import LocalStack, StackOptions

pytestmark = pytest.mark.workflow


def test_restart_keeps_finished_executions_and_resumes_a_pending_review(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("restart")
    stack, scripted = start_stack(tmp_path_factory, state_dir=state_dir)
    try:
        before = Workflow(stack, scripted)
        scripted.script("clean.mp4", Script(labels=[]))
        scripted.script("pending.mp4", Script(labels=[WEAPON]))
        clean_version = before.upload("clean.mp4")
        clean = before.execution_for("clean.mp4")
        assert before.wait(clean)["status"] == "SUCCEEDED"
        clean_history = before.history(clean)
        clean_record = before.decision(clean)
        before.upload("pending.mp4")
        pending = before.execution_for("pending.mp4")
        loop = before.wait_for_review(pending)
    finally:
        stack.stop()
    assert json.loads((state_dir / persistence.FORMAT_FILE).read_text())["version"] == persistence.FORMAT_VERSION

    stack, scripted = start_stack(tmp_path_factory, state_dir=state_dir)
    try:
        after = Workflow(stack, scripted)
        scripted.script("pending.mp4", Script(labels=[WEAPON]))
        assert stack.restored.finished == 1
        assert stack.restored.rerun == [pending.rsplit(":", 1)[-1]]

        # The finished execution: same status, same history, same decision record, same object version and tag.
        described = after.sfn.describe_execution(executionArn=clean)
        assert described["status"] == "SUCCEEDED"
        assert after.history(clean) == clean_history
        assert after.decision(clean) == clean_record
        head = after.s3.head_object(Bucket=stack.media_bucket, Key="clean.mp4")
        assert head["VersionId"] == clean_version
        tags = after.s3.get_object_tagging(Bucket=stack.media_bucket, Key="clean.mp4")["TagSet"]
        assert {"Key": "vidmod-decision", "Value": "APPROVE"} in tags
        # As in AWS, a finished name cannot be started again with other input.
        with pytest.raises(after.sfn.exceptions.ExecutionAlreadyExists):
            after.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=described["name"], input="{}")

        # The interrupted execution runs again under its own name and reuses its human loop.
        assert after.wait_for_review(pending) == loop
        assert [item["HumanLoopName"] for item in stack.a2i.list_open()] == [loop]
        after.review(loop, "REJECT", reviewer="bob")
        assert after.wait(pending)["status"] == "SUCCEEDED"
        record = after.decision(pending)
        assert (record["decision"], record["source"], record["reviewer"]) == ("REJECT", "human", "bob")
    finally:
        stack.stop()


def test_a_state_directory_of_another_format_is_refused_in_one_line(tmp_path):
    (tmp_path / persistence.FORMAT_FILE).write_text(json.dumps({"format": "vidmod-state", "version": 1, "moto": "0.1"}))
    refusal = r"^\S+ holds vidmod state format 1 \(moto 0\.1\); .*move it aside"
    with pytest.raises(persistence.StateError, match=refusal) as e:
        persistence.check_format(tmp_path)
    assert "\n" not in str(e.value)


def test_a_state_directory_from_before_the_journal_is_refused(tmp_path):
    (tmp_path / "stack.pickle").write_bytes(b"old snapshot")
    with pytest.raises(persistence.StateError, match=r"format 1 \(stack\.pickle\).*move it aside"):
        persistence.check_format(tmp_path)


def test_a_stack_that_cannot_load_its_state_leaves_the_state_directory_alone(tmp_path):
    """A refused state directory is the user's data: stopping the half-started stack must not write to it."""
    (tmp_path / "stack.pickle").write_bytes(b"old snapshot")
    before = sorted(p.name for p in tmp_path.iterdir())
    stack = LocalStack(StackOptions(state_dir=tmp_path))
    with pytest.raises(persistence.StateError):
        stack.start()
    stack.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "stack.pickle").read_bytes() == b"old snapshot"


def test_a_logged_in_reviewer_stays_logged_in_across_a_restart(tmp_path_factory):
    """The session key lives in the state directory (owner-only): a restart must not log a reviewer out mid-task."""
    import re

    import httpx

    state_dir = tmp_path_factory.mktemp("session")
    sessions = []
    for _ in range(2):
        stack, _ = start_stack(tmp_path_factory, state_dir=state_dir)
        try:
            portal = stack.start_portal(0).rstrip("/")
            with httpx.Client(base_url=portal, cookies=sessions[-1] if sessions else None) as client:
                if not sessions:
                    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text)[1]
                    client.post("/login", data={"reviewer": "dana", "csrf": token})
                    sessions.append(client.cookies)
                queue = client.get("/", follow_redirects=False)
                assert queue.status_code == 200 and "dana" in queue.text  # no redirect to /login
        finally:
            stack.stop()
    assert (state_dir / "portal-secret").stat().st_mode & 0o077 == 0
