"""A burst of uploads, the local stack killed (SIGKILL) half-way through it: nothing acknowledged is lost,
nothing is moderated twice, and the moderation slots (3 here) neither leak nor are granted twice."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from local_process import FAST, MEDIA, LocalProcess

from vidmod.detector.synthetic import make_test_video
from vidmod.emulator.rekognition import peak_concurrency
from vidmod_contracts.moderation_slots import SlotTable

pytestmark = pytest.mark.workflow
UPLOADS = 20
SLOTS = 3


def test_a_burst_killed_half_way_keeps_every_acknowledged_upload_and_moderates_each_once(tmp_path):
    clips = [make_test_video(tmp_path / f"clip-{i:02d}.mp4", seconds=2, fps=24) for i in range(UPLOADS)]
    stack = LocalProcess(tmp_path / "state", *FAST, f"MaxConcurrentModerationJobs={SLOTS}").start()
    acknowledged: dict[str, str] = {}
    half_way = threading.Event()
    lock = threading.Lock()

    def upload(index: int) -> None:
        key = f"burst/{index:02d}.mp4"
        try:
            version = stack.s3.put_object(Bucket=MEDIA, Key=key, Body=clips[index].read_bytes())["VersionId"]
        except Exception:  # the stack was killed under this request: it was never acknowledged
            return
        with lock:
            acknowledged[key] = version
            if len(acknowledged) >= UPLOADS // 2:
                half_way.set()

    with ThreadPoolExecutor(4) as pool:
        for index in range(UPLOADS):
            pool.submit(upload, index)
        half_way.wait(120)
        stack.kill()
    assert UPLOADS // 2 <= len(acknowledged) < UPLOADS, "the kill came too late to cut the burst"

    stack.start()
    for key, version in acknowledged.items():
        assert stack.s3.head_object(Bucket=MEDIA, Key=key)["VersionId"] == version
    for key in acknowledged:
        [execution] = stack.executions_for(key) or [stack.execution_for(key)]
        stack.wait_for_review(execution, timeout=240)
    listed = {o["Key"] for o in stack.s3.list_objects_v2(Bucket=MEDIA, Prefix="burst/").get("Contents", [])}
    jobs = [json.loads(path.read_text()) for path in (stack.state_dir / "rekognition").glob("*.json")]
    analysed = [job["Video"]["S3Object"]["Name"] for job in jobs]
    for key in listed:  # acknowledged, or stored just before the kill cut its answer: once either way
        assert len(stack.executions_for(key)) <= 1
        assert analysed.count(key) <= 1, f"{key} was analysed {analysed.count(key)} times"
    assert set(acknowledged) <= set(analysed)
    # Across the kill: never more than SLOTS jobs at once, and every slot back once the labels were stored.
    assert peak_concurrency([job for job in jobs if "CompletedAt" in job]) <= SLOTS
    usage = SlotTable(stack.ddb, "vidmod-ModerationSlotsTable").usage(SLOTS)
    assert (usage.in_use, usage.queued) == (0, 0)

    # Stopped while they all wait in review: one line, however many executions it suspends.
    said = [line for line in stack.stop().splitlines() if line.strip()]
    assert len(said) == 1 and re.match(r"vidmod local stack stopped; (\d+) running execution\(s\) suspended", said[0])
    assert int(re.match(r"\D+(\d+)", said[0])[1]) >= len(acknowledged)
