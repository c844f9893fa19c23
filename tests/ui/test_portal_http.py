"""The portal over HTTP (no browser): template rendering and escaping, login gate, byte-range video, one submit."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from starlette.testclient import TestClient

from vidmod.a2i.runtime import HumanLoopRuntime
from vidmod.portal.app import create_app

ROOT = Path(__file__).resolve().parents[2]
FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/review-flow"
EVIL = '<img src=x onerror="window.__pwned=1">'
VIDEO = bytes(range(256)) * 40  # 10,240 bytes; the route serves bytes, not pictures


def content(name: str, uncovered: list[str], label: str = "Weapons") -> str:
    return json.dumps(
        {
            "schemaVersion": "1",
            "video": {"uri": "s3://media/clips/a b.mp4", "name": name, "durationMillis": 8000},
            "decision": {"ruleSetVersion": "r1", "reasons": []},
            "uncoveredCategories": uncovered,
            "segments": [
                {
                    "index": 0,
                    "name": label,
                    "parentName": "Violence",
                    "startMillis": 65000,
                    "endMillis": 67500,
                    "maxConfidence": 81.5,
                },
            ],
            "segmentsTruncated": False,
        }
    )


@pytest.fixture
def portal(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    for bucket in ("media", "results"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="media", Key="clips/a b.mp4", Body=VIDEO, ContentType="video/mp4")
    runtime = HumanLoopRuntime(url, tmp_path, {FLOW: "s3://results/out"})
    app = create_app(runtime, url, ROOT / "ui" / "moderation-review.liquid.html")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield runtime, client, s3
    server.stop()


def login(client: TestClient, name: str = "alice") -> None:
    assert client.post("/login", data={"reviewer": name}, follow_redirects=False).status_code == 303


def test_queue_needs_a_reviewer_name_and_lists_open_loops(portal):
    runtime, client, _ = portal
    runtime.start_human_loop("first", FLOW, content("first.mp4", []))
    runtime.start_human_loop("second", FLOW, content("second.mp4", []))
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    login(client)
    page = client.get("/").text
    assert page.index("/tasks/first") < page.index("/tasks/second") and "waiting" in page


def test_task_page_escapes_input_and_shows_the_uncovered_banner(portal):
    runtime, client, _ = portal
    runtime.start_human_loop("evil", FLOW, content(EVIL, ["Alcohol", "Gambling"], label="</script><b>x</b>"))
    runtime.start_human_loop("plain", FLOW, content("plain.mp4", []))
    login(client)
    page = client.get("/tasks/evil").text
    assert EVIL not in page and "&lt;img src=x onerror=" in page
    assert "</script><b>x</b>" not in page and "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in page
    assert re.search(r"Not checked by the detector:</strong> Alcohol, Gambling", page)
    assert 'src="/media/media/clips/a%20b.mp4"' in page
    assert "/static/crowd-polyfill.js" in page and "assets.crowd.aws" not in page
    assert 'name="seg-0-tp"' in page and 'name="seg-0-category"' in page and 'data-start="65000"' in page
    assert "Not checked by the detector" not in client.get("/tasks/plain").text
    assert client.get("/tasks/no-such-loop").status_code == 404


def test_media_supports_byte_ranges_and_head(portal):
    _, client, _ = portal
    whole = client.get("/media/media/clips/a%20b.mp4")
    assert whole.status_code == 200 and whole.content == VIDEO and whole.headers["accept-ranges"] == "bytes"
    part = client.get("/media/media/clips/a%20b.mp4", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == VIDEO[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(VIDEO)}"
    tail = client.get("/media/media/clips/a%20b.mp4", headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == VIDEO[-16:]
    head = client.head("/media/media/clips/a%20b.mp4")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(VIDEO)) and head.content == b""
    assert client.get("/media/media/clips/a%20b.mp4", headers={"Range": "bytes=99999-"}).status_code == 416
    assert client.get("/media/media/missing.mp4").status_code == 404


def test_a_loop_is_submitted_once(portal):
    runtime, client, s3 = portal
    runtime.start_human_loop("once", FLOW, content("once.mp4", []))
    answer = {"decision-approve": {"value": True}, "decision-reject": {"value": False}}
    assert client.post("/tasks/once/submit", json=answer).status_code == 401  # not logged in
    login(client, "bob")
    client.get("/tasks/once")
    first = client.post("/tasks/once/submit", json=answer)
    assert first.status_code == 200 and first.json()["ok"] is True and first.json()["redirect"] == "/"
    second = client.post("/tasks/once/submit", json={"decision-reject": {"value": True}})
    assert second.status_code == 409 and "cannot be submitted again" in second.json()["message"]
    uri = runtime.describe("once")["HumanLoopOutput"]["OutputS3Uri"]
    output = json.loads(s3.get_object(Bucket="results", Key=uri.split("/", 3)[3])["Body"].read())
    assert output["humanAnswers"][0]["workerId"] == "bob" and output["humanAnswers"][0]["answerContent"] == answer
