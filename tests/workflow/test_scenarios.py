"""Scenario tests: the real workflow definition, template and handlers on the local engine.

Each asserts on the execution history and the recorded decision, not only on the final status.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from harness import WEAPON
from scripted_rekognition import Script, detection

from vidmod.detector import COVERED_LABELS
from vidmod.emulator.clients import http_api_event
from vidmod.emulator.event_router import s3_object_created_event

pytestmark = pytest.mark.workflow

HATE = detection("Nazi Party", "Hate Symbols", 2, 99.0, 4000)


def failed_event(history: list[dict], state_error: str) -> bool:
    return any(
        next((v for k, v in e.items() if k.endswith("EventDetails")), {}).get("error") == state_error for e in history
    )


def test_clean_video_is_approved_by_rules(workflow):
    workflow.scripted.script("clean.mp4", Script(labels=[]))
    workflow.upload("clean.mp4")
    arn = workflow.execution_for("clean.mp4")
    result = workflow.wait(arn)
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert (output["decision"], output["source"]) == ("APPROVE", "rules")
    states = workflow.states(arn)
    assert states[:4] == ["ValidateInput", "WaitForModerationSlot", "StartModeration", "WaitForModeration"]
    assert "HumanReview" not in states and states[-1] == "Done"
    record = workflow.decision(arn)
    assert record["decision"] == "APPROVE" and record["executionArn"] == arn and len(record["recordSha256"]) == 64
    admission = json.loads(record["admission"])  # when it queued for a moderation slot, and for how long
    assert admission["limit"] == 20 and admission["queuedSeconds"] >= 0
    assert admission["grantedAt"] >= admission["queuedAt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["decidedAt"])  # as AWS writes it
    tags = workflow.s3.get_object_tagging(Bucket=workflow.stack.media_bucket, Key="clean.mp4")["TagSet"]
    assert {"Key": "vidmod-decision", "Value": "APPROVE"} in tags
    logged = [json.loads(line) for line in (workflow.stack.options.state_dir / "events.jsonl").read_text().splitlines()]
    published = [
        entry["event"]
        for entry in logged
        if "event" in entry
        and entry["event"]["detail-type"] == "vidmod.decision"
        and entry["event"]["detail"]["executionArn"] == arn
    ]
    assert published and published[0]["detail"]["decision"] == "APPROVE"


def test_hate_symbol_is_rejected_with_its_reason(workflow):
    workflow.scripted.script("rally.mp4", Script(labels=[WEAPON, HATE]))
    workflow.upload("rally.mp4")
    arn = workflow.execution_for("rally.mp4")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    record = workflow.decision(arn)
    assert (record["decision"], record["source"]) == ("REJECT", "rules")
    reasons = json.loads(record["reasons"])
    assert reasons[0]["label"] == "Nazi Party" and reasons[0]["band"] == "reject"
    assert record["ruleSetVersion"] and record["modelVersion"] == "7.0"
    states = workflow.states(arn)
    assert "DecidedByRules" in states and "HumanReview" not in states  # no human was asked
    exited = [e for e in workflow.history(arn) if e.get("stateExitedEventDetails", {}).get("name") == "EvaluateRules"]
    assert json.loads(exited[0]["stateExitedEventDetails"]["output"])["decision"]["outcome"] == "REJECT"


@pytest.mark.parametrize(("verdict", "expected_tag"), [("APPROVE", "APPROVE"), ("REJECT", "REJECT")])
def test_review_then_reviewer_decides(workflow, verdict, expected_tag):
    key = f"borderline-{verdict.lower()}.mp4"
    workflow.scripted.script(key, Script(labels=[WEAPON]))
    workflow.upload(key)
    arn = workflow.execution_for(key)
    loop = workflow.wait_for_review(arn)
    workflow.review(loop, verdict, reviewer="alice", **{"seg-0-tp": {"value": True}, "comment": "checked"})
    result = workflow.wait(arn)
    assert result["status"] == "SUCCEEDED"
    record = workflow.decision(arn)
    assert (record["decision"], record["source"], record["reviewer"]) == (verdict, "human", "alice")
    detail = json.loads(record["detail"])
    assert detail["verdicts"] == [{"index": 0, "label": "Weapons", "verdict": "true-positive", "category": ""}]
    assert detail["outputS3Uri"].endswith(f"/{loop}/output.json")
    assert "HumanReview" in workflow.states(arn) and "DecidedByHuman" in workflow.states(arn)
    tags = workflow.s3.get_object_tagging(Bucket=workflow.stack.media_bucket, Key=key)["TagSet"]
    assert {"Key": "vidmod-decision", "Value": expected_tag} in tags


def test_failed_rekognition_job_fails_with_its_status_message(workflow):
    workflow.scripted.script("broken.mp4", Script(status="FAILED", status_message="Unsupported codec: prores"))
    workflow.upload("broken.mp4")
    arn = workflow.execution_for("broken.mp4")
    result = workflow.wait(arn)
    assert result["status"] == "FAILED" and result["error"] == "ModerationJobFailed"
    assert "Unsupported codec: prores" in result["cause"]
    record = workflow.decision(arn)
    assert record["decision"] == "FAILED" and "Unsupported codec" in record["detail"]
    states = workflow.states(arn)
    assert "ModerationJobFailed" in states and "EvaluateRules" not in states  # no rules ran on a failed job
    assert "ReleaseSlotAfterFailure" in states and "releasedAt" in json.loads(record["admission"])["release"]


def test_throttled_start_is_retried_then_succeeds(workflow):
    workflow.scripted.script("busy.mp4", Script(labels=[], throttle_starts=2))
    workflow.upload("busy.mp4")
    arn = workflow.execution_for("busy.mp4")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    starts = [
        p
        for op, p in workflow.scripted.calls
        if op == "StartContentModeration" and p["Video"]["S3Object"]["Name"] == "busy.mp4"
    ]
    assert len(starts) == 3
    history = workflow.history(arn)
    assert failed_event(history, "rekognition.ThrottlingException") or failed_event(
        history, "Rekognition.ThrottlingException"
    )
    assert workflow.decision(arn)["decision"] == "APPROVE"


def test_every_result_page_is_read(workflow):
    labels = [detection("Weapons", "Violence", 2, 55.0, i * 500) for i in range(250)]
    workflow.scripted.script("long.mp4", Script(labels=labels, model_version="7.0"))
    workflow.upload("long.mp4")
    arn = workflow.execution_for("long.mp4")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    assert workflow.states(arn).count("StoreLabelsPage") == 7  # 40 labels per page
    assert workflow.states(arn).count("FetchNextLabelsPage") == 6
    # 250 detections of 55 % Weapons stay below the 60 % review threshold: approve, having read them all.
    exited = [e for e in workflow.history(arn) if e.get("stateExitedEventDetails", {}).get("name") == "EvaluateRules"]
    assert json.loads(exited[0]["stateExitedEventDetails"]["output"])["decision"]["detections"] == 250


def test_results_larger_than_the_state_payload_limit_stay_in_s3(workflow):
    padding = [{"Confidence": 99.0, "Name": "Animated"}, {"Confidence": 98.0, "Name": "Illustrated"}]
    # 3 s apart (beyond the 2 s merge gap): 1,600 separate segments, more than a reviewer is shown
    labels = [
        detection("Weapons", "Violence", 2, 50.0 + (i % 40), i * 3000) | {"ContentTypes": padding} for i in range(1600)
    ]
    assert len(json.dumps(labels)) > 256 * 1024
    workflow.scripted.script("huge.mp4", Script(labels=labels, duration_millis=1600 * 3000))
    workflow.upload("huge.mp4")
    arn = workflow.execution_for("huge.mp4")
    loop = workflow.wait_for_review(arn, timeout=240)
    largest_state = max(
        len(next(v for k, v in e.items() if k.endswith("EventDetails")).get("output", "") or "")
        for e in workflow.history(arn)
        if any(k.endswith("EventDetails") for k in e)
    )
    assert largest_state < 256 * 1024
    content = workflow.stack.a2i.input_content(loop)
    assert (len(content["segments"]), content["segmentsTotal"], content["segmentsTruncated"]) == (200, 1600, True)
    strongest = sorted((50.0 + (i % 40) for i in range(1600)), reverse=True)[:200]  # the ones a reviewer sees
    assert sorted((s["maxConfidence"] for s in content["segments"]), reverse=True) == strongest
    assert [s["startMillis"] for s in content["segments"]] == sorted(s["startMillis"] for s in content["segments"])
    workflow.review(loop, "REJECT")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    assert workflow.decision(arn)["decision"] == "REJECT"


def test_a2i_loop_failed_or_stopped_fails_the_execution_with_the_reason(workflow):
    for key, action, error, decision in [
        ("broken-loop.mp4", "fail", "HumanLoopFailed", "FAILED"),
        ("withdrawn.mp4", "stop", "HumanLoopStopped", "FAILED"),
        # A2I's task lifetime ran out: a review timeout, escalated like the workflow's own timeout.
        ("expired.mp4", "expire", "ReviewTimedOut", "ESCALATED"),
    ]:
        workflow.scripted.script(key, Script(labels=[WEAPON]))
        workflow.upload(key)
        arn = workflow.execution_for(key)
        loop = workflow.wait_for_review(arn)
        if action == "fail":
            workflow.stack.a2i.fail(loop, "InternalError", "The worker portal failed")
        elif action == "expire":
            workflow.stack.a2i.fail(loop, "Expired", "No worker picked the task up in time")
        else:
            workflow.stack.a2i.stop(loop)
        result = workflow.wait(arn)
        assert (result["status"], result["error"]) == ("FAILED", error)
        record = workflow.decision(arn)
        assert record["decision"] == decision
        # the rules had sent it to a human: the record keeps why, from which job, and which review failed
        assert json.loads(record["reasons"])[0]["label"] == "Weapons" and record["ruleSetVersion"]
        assert record["jobId"] and record["modelVersion"] == "7.0" and record["humanLoopName"] == loop
        if action == "expire":
            assert "StopHumanLoop" in workflow.states(arn) and "HumanLoopExpired" in record["detail"]


def test_duplicate_s3_event_starts_one_execution(workflow):
    workflow.scripted.script("twice.mp4", Script(labels=[]))
    version = workflow.upload("twice.mp4")
    arn = workflow.execution_for("twice.mp4")
    head = workflow.s3.head_object(Bucket=workflow.stack.media_bucket, Key="twice.mp4")
    duplicate = s3_object_created_event(
        workflow.stack.media_bucket, "us-east-1", "twice.mp4", head["ContentLength"], head["ETag"].strip('"'), version
    )
    workflow.stack.router.publish(duplicate)
    workflow.wait(arn)
    submit = workflow.stack.resources.functions["SubmitFunction"].name
    delivered = [e for f, e in workflow.stack.router.delivered if f == submit and e is duplicate]
    assert delivered  # the duplicate did reach the submit function
    response, errored = workflow.stack.invoke(submit, duplicate)  # what its delivery got (delivered at least once)
    assert not errored and response["duplicate"] is True and response["executionArn"] == arn
    assert workflow.executions_for("twice.mp4") == [arn]
    assert workflow.states(arn).count("ValidateInput") == 1 and workflow.decision(arn)["decision"] == "APPROVE"


def test_duplicate_a2i_event_is_ignored(workflow):
    workflow.scripted.script("again.mp4", Script(labels=[WEAPON]))
    workflow.upload("again.mp4")
    arn = workflow.execution_for("again.mp4")
    loop = workflow.wait_for_review(arn)
    workflow.review(loop, "APPROVE")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    (original,) = [
        e
        for f, e in workflow.stack.router.delivered
        if e["source"] == "aws.sagemaker" and e["detail"]["humanLoopName"] == loop
    ]
    result, errored = workflow.stack.invoke(
        workflow.stack.resources.functions["CompleteHumanReviewFunction"].name, original
    )
    assert not errored and result == {"ignored": "duplicate"}
    assert workflow.decision(arn)["decision"] == "APPROVE"
    resumed = [
        e
        for e in workflow.history(arn)
        if e["type"] == "TaskSucceeded"
        and e["taskSucceededEventDetails"]["resource"] == "invoke.waitForTaskToken"
        and "humanLoopName" in e["taskSucceededEventDetails"]["output"]  # the review's, not the slot's
    ]
    assert len(resumed) == 1 and workflow.states(arn).count("DecidedByHuman") == 1  # resumed once, decided once


def test_a_refused_old_version_is_recorded_and_tagged_as_itself_not_as_the_current_one(workflow):
    """v1 was an empty placeholder, v2 the real file; v1's refusal must not overwrite v2's verdict tag."""
    key, bucket, router = "swap.mp4", workflow.stack.media_bucket, workflow.stack.router
    workflow.scripted.script(key, Script(labels=[]))
    with pytest.MonkeyPatch.context() as patch:  # both uploads land before any moderation starts
        original = router.matching
        patch.setattr(
            router, "matching", lambda e: [] if e.get("detail", {}).get("object", {}).get("key") == key else original(e)
        )
        placeholder, real = workflow.upload(key, b""), workflow.upload(key)
    submit = workflow.stack.resources.functions["SubmitFunction"].name

    def moderate(version: str) -> str:
        body = {"video": f"s3://{bucket}/{key}", "versionId": version}
        response, errored = workflow.stack.invoke(submit, http_api_event("POST", "/moderations", body))
        assert not errored and response["statusCode"] == 202, response
        arn = json.loads(response["body"])["executionArn"]
        workflow.wait(arn)
        return arn

    approved, refused = moderate(real), moderate(placeholder)
    assert workflow.sfn.describe_execution(executionArn=refused)["error"] == "EmptyVideo"
    assert (workflow.decision(refused)["decision"], workflow.decision(refused)["versionId"]) == ("FAILED", placeholder)
    assert "FailedValidation" in workflow.states(refused) and workflow.decision(approved)["decision"] == "APPROVE"

    def tag(version: str) -> str:
        tags = workflow.s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version)["TagSet"]
        return {t["Key"]: t["Value"] for t in tags}.get("vidmod-decision", "")

    assert (tag(real), tag(placeholder)) == ("APPROVE", "FAILED")


def test_non_video_upload_starts_nothing_and_api_submission_fails_clearly(workflow):
    workflow.upload("notes.txt", b"not a video")
    submit = workflow.stack.resources.functions["SubmitFunction"].name
    event = http_api_event("POST", "/moderations", {"video": f"s3://{workflow.stack.media_bucket}/notes.txt"})
    response, errored = workflow.stack.invoke(submit, event)
    assert not errored and response["statusCode"] == 202
    arn = workflow.execution_for("notes.txt")
    result = workflow.wait(arn)
    assert (result["status"], result["error"]) == ("FAILED", "UnsupportedVideoType")
    assert "'.txt' is not a supported video type" in result["cause"]
    assert workflow.decision(arn)["decision"] == "FAILED"
    assert len(workflow.executions_for("notes.txt")) == 1  # the upload itself did not match the rule
    # refused before Rekognition, without taking a moderation slot
    assert workflow.states(arn)[:4] == ["ValidateInput", "GiveBackSlotOnFailure", "NotAdmitted", "DescribeFailure"]
    assert json.loads(workflow.decision(arn)["admission"]) == {"admitted": False}


def test_real_detector_and_reviewer_on_a_real_video(workflow, tmp_path):
    """No script: the local detector decodes the sample video; what it cannot see goes to a human."""
    from vidmod.detector.samples import sample_video_path

    workflow.s3.upload_file(str(sample_video_path("bigbuckbunny.mp4")), workflow.stack.media_bucket, "real/bunny.mp4")
    arn = workflow.execution_for("real/bunny.mp4")
    loop = workflow.wait_for_review(arn, timeout=180)
    exited = {
        e["stateExitedEventDetails"]["name"]: json.loads(e["stateExitedEventDetails"]["output"])
        for e in workflow.history(arn)
        if "stateExitedEventDetails" in e
    }
    labels, decision = exited["StoreLabelsPage"]["labels"], exited["EvaluateRules"]["decision"]
    assert labels["modelVersion"].startswith("vidmod-local") and labels["detections"] == 0
    assert labels["videoMetadata"]["Codec"] == "h264" and labels["videoMetadata"]["FrameWidth"] == 1280
    assert "Not checked: " in labels["statusMessage"] and "Violence" in decision["uncoveredCategories"]
    assert decision["outcome"] == "REVIEW"
    content = workflow.stack.a2i.input_content(loop)
    assert content["uncoveredCategories"] == decision["uncoveredCategories"] and content["segments"] == []
    # the reviewer is told, label by label, what the detector checked and what it did not
    assert content["coverage"] == decision["coverage"]
    assert [label for c in content["coverage"] for label in c["checked"]] == list(COVERED_LABELS)
    workflow.review(loop, "APPROVE", reviewer="carol")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    assert (workflow.decision(arn)["decision"], workflow.decision(arn)["reviewer"]) == ("APPROVE", "carol")


def test_corrupt_video_fails_with_the_detectors_message(workflow):
    workflow.upload("real/corrupt.mp4", b"this is not an mp4 at all" * 100)
    arn = workflow.execution_for("real/corrupt.mp4")
    result = workflow.wait(arn, timeout=120)
    assert (result["status"], result["error"]) == ("FAILED", "ModerationJobFailed")
    assert "not a video this detector can decode" in result["cause"]
    assert workflow.decision(arn)["decision"] == "FAILED"


def test_an_execution_started_by_hand_without_a_trigger_is_recorded_and_merges_tags(workflow):
    """A console/CLI start (or a redrive) carries only {"video": ...}; the record names it "manual"."""
    bucket = workflow.stack.media_bucket
    workflow.scripted.script("by-hand.mp4", Script(labels=[]))
    version = workflow.s3.put_object(Bucket=bucket, Key="by-hand.mp4", Body=b"\x00" * 64, Tagging="owner=team-a")[
        "VersionId"
    ]
    uploaded = workflow.execution_for("by-hand.mp4")
    assert workflow.wait(uploaded)["status"] == "SUCCEEDED"
    video = {"bucket": bucket, "key": "by-hand.mp4", "versionId": version}
    arn = workflow.sfn.start_execution(
        stateMachineArn=workflow.stack.state_machine_arn, name="by-hand-again", input=json.dumps({"video": video})
    )["executionArn"]
    result = workflow.wait(arn)
    assert result["status"] == "SUCCEEDED"
    record = workflow.decision(arn)
    assert record["decision"] == "APPROVE" and json.loads(record["trigger"])["type"] == "manual"
    # The re-moderation replaced the first verdict's tags on that version and kept the owner's tag.
    tags = workflow.s3.get_object_tagging(Bucket=bucket, Key="by-hand.mp4", VersionId=version)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [
        ("owner", "team-a"),
        ("vidmod-decision", "APPROVE"),
        ("vidmod-execution", "by-hand-again"),
    ]
    # Rejected before ValidateInput could name a trigger: the failure is recorded all the same.
    workflow.upload("by-hand.txt", b"not a video")
    bad = {"bucket": bucket, "key": "by-hand.txt"}
    arn = workflow.sfn.start_execution(
        stateMachineArn=workflow.stack.state_machine_arn, name="by-hand-text", input=json.dumps({"video": bad})
    )["executionArn"]
    result = workflow.wait(arn)
    assert (result["status"], result["error"]) == ("FAILED", "UnsupportedVideoType")
    record = workflow.decision(arn)
    assert record["decision"] == "FAILED" and json.loads(record["trigger"])["type"] == "manual"


def test_a_video_replaced_during_moderation_is_not_reviewed_and_only_its_version_is_tagged(workflow):
    bucket = workflow.stack.media_bucket
    workflow.scripted.script("replaced.mp4", Script(labels=[WEAPON], in_progress_polls=4))
    analysed = workflow.upload("replaced.mp4")
    arn = workflow.execution_for("replaced.mp4")
    deadline = time.monotonic() + 60
    while "StartModeration" not in workflow.states(arn):
        assert time.monotonic() < deadline, f"no StartModeration within 60 s: {workflow.states(arn)}"
        time.sleep(0.2)
    current = workflow.upload("replaced.mp4", b"\x01" * 64)  # a new version while Rekognition is still busy
    result = workflow.wait(arn)
    assert (result["status"], result["error"]) == ("FAILED", "VideoReplaced")
    assert f"replaced by version {current}" in result["cause"]
    assert workflow._loop_of(arn) not in {loop["HumanLoopName"] for loop in workflow.stack.a2i.loops()}
    assert workflow.decision(arn)["decision"] == "FAILED"
    tags = workflow.s3.get_object_tagging(Bucket=bucket, Key="replaced.mp4", VersionId=analysed)["TagSet"]
    assert {"Key": "vidmod-decision", "Value": "FAILED"} in tags
    newer = workflow.s3.get_object_tagging(Bucket=bucket, Key="replaced.mp4", VersionId=current)["TagSet"]
    assert {"Key": "vidmod-execution", "Value": arn.rsplit(":", 1)[-1]} not in newer


def test_a_video_replaced_during_its_review_is_still_reviewed_and_decided_as_the_analysed_version(workflow):
    """The reviewer watches start_human_review's copy of the analysed version (A2I's links have no version): an
    upload while the task is open changes nothing they see, and the verdict is recorded for that version."""
    bucket, key = workflow.stack.media_bucket, "replaced-in-review.mp4"
    results = workflow.stack.resources.bucket_name("ResultsBucket")
    workflow.scripted.script(key, Script(labels=[WEAPON]))
    analysed = workflow.upload(key, b"\x02" * 64)
    arn = workflow.execution_for(key)
    loop = workflow.wait_for_review(arn)
    current = workflow.upload(key, b"\x03" * 64)  # the key now holds other content (with its own execution)
    video = workflow.stack.a2i.input_content(loop)["video"]
    assert video["uri"] == f"s3://{results}/review-media/{loop}/{key}"  # what grant_read_access gives the reviewer
    assert (video["sourceUri"], video["versionId"]) == (f"s3://{bucket}/{key}", analysed)
    copy = workflow.s3.get_object(Bucket=results, Key=f"review-media/{loop}/{key}")["Body"].read()
    assert copy == b"\x02" * 64 and workflow.s3.get_object(Bucket=bucket, Key=key)["VersionId"] == current
    workflow.review(loop, "REJECT", reviewer="carol")
    result = workflow.wait(arn)
    assert result["status"] == "SUCCEEDED"
    assert (workflow.decision(arn)["decision"], workflow.decision(arn)["source"]) == ("REJECT", "human")
    tags = workflow.s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=analysed)["TagSet"]
    assert {"Key": "vidmod-decision", "Value": "REJECT"} in tags
    newer = workflow.s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=current)["TagSet"]
    assert {"Key": "vidmod-decision", "Value": "REJECT"} not in newer  # the new version awaits its own verdict
