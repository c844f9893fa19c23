"""`vidmod backfill` on the local stack: a library that predates the stack, moderated once per object version.

The real template's backfill state machine (Distributed Map over listObjectsV2, ResultWriter to S3), the real
submit function, and the moderation workflow behind it with MaxConcurrentModerationJobs=3.
"""

from __future__ import annotations

import time

import pytest
from harness import Workflow, start_stack
from scripted_rekognition import Script

from vidmod.cli.backfill import BackfillError, run_backfill
from vidmod.cli.main import main

VIDEOS, NOT_VIDEOS, EMPTY, MODERATED = 40, 5, 2, 3
UPLOAD_RULE = "SubmitFunction.VideoUploaded"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """library/: 40 videos and 5 other files put there before the stack watched the bucket, 2 empty videos,
    and 3 videos uploaded (and moderated) since."""
    stack, scripted = start_stack(tmp_path_factory, MaxConcurrentModerationJobs="3")
    workflow = Workflow(stack, scripted)
    with stack.router.rule_disabled(UPLOAD_RULE):
        for i in range(VIDEOS):
            scripted.script(f"library/old-{i:02d}.mp4", Script(labels=[]))
            workflow.upload(f"library/old-{i:02d}.mp4")
        for i, name in enumerate(["notes.txt", "poster.jpg", "subtitles.srt", "README", "clip.mp4.part"][:NOT_VIDEOS]):
            workflow.upload(f"library/{name}", f"file {i}".encode())
        for i in range(EMPTY):
            workflow.upload(f"library/empty-{i}.mp4", b"")
        workflow.upload("docs/only-text.txt", b"no videos here")
    for i in range(MODERATED):
        scripted.script(f"library/new-{i}.mp4", Script(labels=[]))
        workflow.upload(f"library/new-{i}.mp4")
    for i in range(MODERATED):
        assert workflow.wait(workflow.execution_for(f"library/new-{i}.mp4"))["status"] == "SUCCEEDED"
    yield workflow
    stack.stop()


def backfill(workflow: Workflow, prefix: str, dry_run: bool = False):
    machine = workflow.stack.resources.state_machines["BackfillStateMachine"]["arn"]
    uri = f"s3://{workflow.stack.media_bucket}/{prefix}"
    return run_backfill(workflow.s3, workflow.sfn, machine, uri, dry_run, "test:lead", poll=0.3)


def moderation_executions(workflow: Workflow) -> list[dict]:
    pages = workflow.sfn.get_paginator("list_executions").paginate(stateMachineArn=workflow.stack.state_machine_arn)
    return [e for page in pages for e in page["executions"]]


def test_a_dry_run_then_a_backfill_moderates_each_version_once_and_a_second_run_starts_nothing(library):
    """As a lead would: a dry run first (it reports and starts nothing), then the backfill, then again."""
    before = len(moderation_executions(library))
    planned = backfill(library, "library/", dry_run=True)
    assert dict(planned.counts) == {
        "would-submit": VIDEOS,
        "already-decided": MODERATED,
        "refused": EMPTY,
        "not-a-video": NOT_VIDEOS,
    }
    assert planned.reasons["refused"] == {"empty object (0 bytes)": EMPTY}
    assert len(moderation_executions(library)) == before

    summary = backfill(library, "library/")
    assert dict(summary.counts) == {
        "submitted": VIDEOS,
        "already-decided": MODERATED,
        "refused": EMPTY,
        "not-a-video": NOT_VIDEOS,
    }
    keys = [f"library/old-{i:02d}.mp4" for i in range(VIDEOS)]
    arns = [library.execution_for(key) for key in keys]
    deadline = time.monotonic() + 300
    for arn in arns:
        assert library.wait(arn, timeout=max(1, deadline - time.monotonic()))["status"] == "SUCCEEDED"
    assert all(len(library.executions_for(key)) == 1 for key in keys)  # one execution per object version
    trigger = library.decision(arns[0])["trigger"]
    assert '"type":"backfill"' in trigger and '"principal":"test:lead"' in trigger

    again = backfill(library, "library/")
    assert again.counts["submitted"] == 0 and again.counts["already-decided"] == VIDEOS + MODERATED
    assert all(len(library.executions_for(key)) == 1 for key in keys)


def test_a_prefix_without_videos_is_a_summary_not_an_error(library):
    assert backfill(library, "docs/").lines("s3://m/docs/")[:2] == [
        "1 object(s) under s3://m/docs/, 0 of them video(s)",
        "no videos there: nothing to moderate",
    ]
    assert backfill(library, "nothing-here/").lines("s3://m/nothing-here/") == [
        "no objects under s3://m/nothing-here/: nothing to moderate"
    ]


def test_a_bucket_that_does_not_exist_is_one_line(library, capsys):
    with pytest.raises(BackfillError, match="bucket no-such-bucket does not exist or cannot be read"):
        backfill_uri = "s3://no-such-bucket/videos/"
        machine = library.stack.resources.state_machines["BackfillStateMachine"]["arn"]
        run_backfill(library.s3, library.sfn, machine, backfill_uri, False, "test")
    capsys.readouterr()
    code = main(["backfill", "s3://no-such-bucket/videos/", "--endpoint-url", library.stack.endpoint_url])
    out = capsys.readouterr().out.strip()
    assert code == 2 and out.count("\n") == 0 and "no-such-bucket does not exist or cannot be read" in out
