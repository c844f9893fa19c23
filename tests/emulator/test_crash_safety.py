"""Nothing the local stack acknowledged is lost when it is killed with SIGKILL (issue: crash-safe embedded stack).

One state directory, one ``vidmod local up`` process after another, each killed at another point of a video's
lifecycle: right after an upload is acknowledged, while the detector runs, while two videos wait in review,
right after a reviewer's answer is acknowledged, and while the decision is being recorded. After every restart
the acknowledged objects are there with their version ids and tags, each upload has exactly one execution,
the detector analysed each video once, every answer became exactly one decision record, and the audit agrees.
The real detector, the real portal over HTTP, the real engine.
"""

from __future__ import annotations

import json

import pytest
from local_process import MEDIA, LocalProcess

from vidmod.detector.synthetic import make_test_video

pytestmark = pytest.mark.workflow


def jobs_for(state_dir, key: str) -> list[dict]:
    """The local detector's jobs for ``key`` (one per analysis)."""
    jobs = [json.loads(path.read_text()) for path in (state_dir / "rekognition").glob("*.json")]
    return [job for job in jobs if job["Video"]["S3Object"]["Name"] == key]


def entered(state: str):
    return lambda events: any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events)


def test_a_kill_at_any_point_of_the_lifecycle_loses_nothing_acknowledged(tmp_path):
    short = make_test_video(tmp_path / "short.mp4", seconds=3, fps=24)
    long = make_test_video(tmp_path / "long.mp4", seconds=20, fps=24)
    stack = LocalProcess(tmp_path / "state").start()

    # 1. Killed right after S3 acknowledged an upload (with tags).
    put = stack.s3.put_object(Bucket=MEDIA, Key="a.mp4", Body=short.read_bytes(), Tagging="team=alpha")
    stack.kill()

    stack.start()
    head = stack.s3.head_object(Bucket=MEDIA, Key="a.mp4")
    assert head["VersionId"] == put["VersionId"] and head["ETag"] == put["ETag"]
    tags = stack.s3.get_object_tagging(Bucket=MEDIA, Key="a.mp4", VersionId=put["VersionId"])["TagSet"]
    assert {"Key": "team", "Value": "alpha"} in tags
    a = stack.execution_for("a.mp4")
    loop_a = stack.wait_for_review(a)

    # 2. Killed while the detector analyses a 20-second video.
    stack.s3.upload_file(str(long), MEDIA, "b.mp4")
    b = stack.execution_for("b.mp4")
    stack.wait_for(b, entered("WaitForModeration"), "moderation job", interval=0.05)
    assert [job["JobStatus"] for job in jobs_for(stack.state_dir, "b.mp4")] == ["IN_PROGRESS"]
    stack.kill()

    # 3. Killed while both wait in review.
    stack.start()
    assert stack.executions_for("b.mp4") == [b]
    loop_b = stack.wait_for_review(b)
    assert [job["JobStatus"] for job in jobs_for(stack.state_dir, "b.mp4")] == ["SUCCEEDED"]  # the same job, once
    stack.kill()

    # 4. Killed right after the portal acknowledged a reviewer's answer.
    stack.start()
    assert stack.wait_for_review(a) == loop_a and stack.wait_for_review(b) == loop_b  # same loops, still open
    stack.answer(loop_a, "REJECT")
    stack.kill()

    # 5. Killed while the decision is being recorded.
    stack.start()
    assert stack.wait_until_ended(a)["status"] == "SUCCEEDED"
    stack.answer(loop_b, "APPROVE")
    stack.wait_for(b, entered("RecordDecision"), "RecordDecision", interval=0.02)
    stack.kill()

    stack.start()
    assert stack.wait_until_ended(b)["status"] == "SUCCEEDED"
    for key, execution, decision in (("a.mp4", a, "REJECT"), ("b.mp4", b, "APPROVE")):
        assert stack.executions_for(key) == [execution]
        records = stack.decisions(key)
        assert [(r["decision"], r["source"], r["reviewer"]) for r in records] == [(decision, "human", "rita")]
        assert len(jobs_for(stack.state_dir, key)) == 1
        audit = stack.audit(execution)
        assert audit.returncode == 0 and "integrity ok" in audit.stdout, audit.stdout + audit.stderr
    tags = stack.s3.get_object_tagging(Bucket=MEDIA, Key="a.mp4", VersionId=put["VersionId"])["TagSet"]
    assert {"Key": "team", "Value": "alpha"} in tags and {"Key": "vidmod-decision", "Value": "REJECT"} in tags

    # A clean stop says one line, however busy the stack was; nothing of the engine's internals.
    said = stack.stop()
    assert stack.process.returncode == 0
    assert [line for line in said.splitlines() if line.strip()] == [
        f"vidmod local stack stopped; 0 running execution(s) suspended, resumed by the next "
        f"`vidmod local up --state-dir {stack.state_dir.resolve()}`"
    ]
