"""The reviewer portal's video latency while a submission is in flight (``make bench``).

A reviewer's player asks for byte ranges while another tab's submit waits on the local endpoint: the portal
runs such handlers in its thread pool, so the video must not wait behind the submit. ``tests/ui`` checks that
it does not (by an event, not a clock); this prints how long a range request takes, idle and during a submit
held for a second.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from pathlib import Path

from moto.server import ThreadedMotoServer
from starlette.testclient import TestClient

from vidmod.emulator.a2i import HumanLoopRuntime
from vidmod.emulator.clients import local_client
from vidmod.emulator.portal.app import create_app

UI_TEMPLATE = Path(__file__).resolve().parents[2] / "ui" / "moderation-review.liquid.html"
FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/bench"
ORIGIN = "http://127.0.0.1"
ANSWER = {"decision-approve": {"value": True}, "decision-reject": {"value": False}}
VIDEO_URL = "/media/media/clip.mp4"


def _range_ms(client: TestClient) -> float:
    started = time.perf_counter()
    assert client.get(VIDEO_URL, headers={"Range": "bytes=0-65535"}).status_code == 206
    return 1000 * (time.perf_counter() - started)


def _task(runtime: HumanLoopRuntime, name: str) -> None:
    video = {"uri": "s3://media/clip.mp4", "name": "clip.mp4", "durationMillis": 1000}
    content = {"schemaVersion": "1", "video": video, "decision": {"ruleSetVersion": "bench", "reasons": []}}
    runtime.start_human_loop(name, FLOW, json.dumps(content))


def media_latency(work: Path, rounds: int = 5, held_seconds: float = 1.0) -> tuple[float, float]:
    """Median milliseconds of a 64 KiB range request: idle, and while a submit is held ``held_seconds``."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    try:
        s3 = local_client("s3", url)
        for bucket in ("media", "results"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="media", Key="clip.mp4", Body=bytes(range(256)) * 4096, ContentType="video/mp4")
        runtime = HumanLoopRuntime(url, work, {FLOW: "s3://results/out"})
        headers = {"Content-Type": "application/json", "Origin": ORIGIN}
        with TestClient(create_app(runtime, url, UI_TEMPLATE), base_url=ORIGIN) as client:
            token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text).group(1)
            client.post("/login", data={"reviewer": "bench", "csrf": token}, follow_redirects=False)
            _task(runtime, "bench-idle")
            client.get("/tasks/bench-idle")
            idle = [_range_ms(client) for _ in range(rounds)]
            busy, real_submit = [], runtime.submit

            def held_submit(*args, **kwargs):
                time.sleep(held_seconds)
                return real_submit(*args, **kwargs)

            def post(name: str) -> None:
                client.post(f"/tasks/{name}/submit", content=json.dumps(ANSWER), headers=headers)

            runtime.submit = held_submit
            for index in range(rounds):
                _task(runtime, f"bench-{index}")
                client.get(f"/tasks/bench-{index}")
                posting = threading.Thread(target=post, args=(f"bench-{index}",))
                posting.start()
                time.sleep(0.1)  # the submit is in its handler
                busy.append(_range_ms(client))
                posting.join()
        return statistics.median(idle), statistics.median(busy)
    finally:
        server.stop()
