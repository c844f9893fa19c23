"""The portal over HTTP (no browser): rendering and escaping, login gate, byte-range video, one submit, and the
protections a portal on 127.0.0.1 needs against other web pages (Host check, CSRF, origin, media limits)."""

from __future__ import annotations

import importlib
import json
import re
import sys
import time
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from moto.server import ThreadedMotoServer
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from vidmod.emulator.a2i import HumanLoopRuntime
from vidmod.emulator.portal.app import create_app

ROOT = Path(__file__).resolve().parents[2]
FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/review-flow"
EVIL = '<img src=x onerror="window.__pwned=1">'
VIDEO = bytes(range(256)) * 40  # 10,240 bytes; the route serves bytes, not pictures
VIDEO_URL = "/media/media/clips%2Fa%20b.mp4"
OWN = "http://127.0.0.1"
ANSWER = {"decision-approve": {"value": True}, "decision-reject": {"value": False}}


def content(name: str, uncovered: list[str], label: str = "Weapons", uri: str = "s3://media/clips/a b.mp4", **more):
    return json.dumps(
        {
            "schemaVersion": "1",
            "video": {"uri": uri, "name": name, "durationMillis": 8000},
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
        | more
    )


def audit_page(request):
    return PlainTextResponse("audit index")


@pytest.fixture
def portal(tmp_path):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)  # binds a free port and keeps it
    server.start()
    port = server.get_host_and_port()[1]
    url = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    for bucket in ("media", "results"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="media", Key="clips/a b.mp4", Body=VIDEO, ContentType="video/mp4")
    runtime = HumanLoopRuntime(url, tmp_path, {FLOW: "s3://results/out"})
    app = create_app(
        runtime,
        url,
        ROOT / "ui" / "moderation-review.liquid.html",
        extra_routes=[Route("/audit", audit_page), Route("/audit/{name}", audit_page)],
        allowed_hosts=["review.internal"],
    )
    with TestClient(app, base_url=OWN) as client:
        yield runtime, client, s3
    server.stop()


def csrf(client: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text).group(1)


def login(client: TestClient, name: str = "alice") -> None:
    token = csrf(client)
    response = client.post("/login", data={"reviewer": name, "csrf": token}, follow_redirects=False)
    assert response.status_code == 303


def submit(client: TestClient, loop: str, answer: dict = ANSWER, **headers):
    """POST an answer as the task page does; a header given as None is left out."""
    sent = {"Content-Type": "application/json", "Origin": OWN} | headers
    return client.post(
        f"/tasks/{loop}/submit", content=json.dumps(answer), headers={k: v for k, v in sent.items() if v is not None}
    )


def read_output(runtime, s3, loop: str) -> dict:
    uri = runtime.describe(loop)["HumanLoopOutput"]["OutputS3Uri"]
    return json.loads(s3.get_object(Bucket="results", Key=uri.split("/", 3)[3])["Body"].read())


def test_queue_needs_a_reviewer_name_and_lists_open_loops(portal):
    runtime, client, _ = portal
    runtime.start_human_loop("first", FLOW, content("first.mp4", []))
    runtime.start_human_loop("second", FLOW, content("second.mp4", []))
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    login(client)
    page = client.get("/").text
    assert page.index("/tasks/first") < page.index("/tasks/second") and "waiting" in page


def test_task_page_escapes_input_and_shows_what_was_and_was_not_checked(portal):
    runtime, client, _ = portal
    runtime.start_human_loop(
        "evil", FLOW, content(EVIL, ["Alcohol", EVIL], label="</script><b>x</b>", coveredCategories=["Explicit"])
    )
    runtime.start_human_loop("plain", FLOW, content("plain.mp4", []))
    login(client)
    page = client.get("/tasks/evil").text
    assert EVIL not in page and "&lt;img src=x onerror=" in page
    assert "</script><b>x</b>" not in page and "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in page
    assert re.search(r"Not checked:</strong> Alcohol, &lt;img src=x", page)
    assert re.search(r"Checked by the detector:</strong> Explicit\s+— the flagged segments are listed below", page)
    assert f'src="{VIDEO_URL}"' in page
    assert "/static/crowd-polyfill.js" in page and "assets.crowd.aws" not in page
    assert 'name="seg-0-tp"' in page and 'name="seg-0-category"' in page and 'data-start="65000"' in page
    plain = client.get("/tasks/plain").text
    assert "Not checked" not in plain and "Checked by the detector" not in plain
    assert client.get("/tasks/no-such-loop").status_code == 404


def test_label_coverage_is_listed_per_category_and_escaped(portal):
    runtime, client, _ = portal
    coverage = [
        {"category": "Explicit", "checked": ["Exposed Female Nipple"], "notChecked": ["Sex Toys", EVIL]},
        {"category": EVIL, "checked": [], "notChecked": ["Middle Finger"]},
        {"category": "Violence", "checked": ["Weapons"], "notChecked": []},
    ]
    runtime.start_human_loop("labels", FLOW, content("labels.mp4", ["Explicit", EVIL], coverage=coverage))
    login(client)
    page = client.get("/tasks/labels").text
    assert EVIL not in page and "&lt;img src=x onerror=" in page
    checked = re.search(r'<div class="checked">(.*?)</div>', page, flags=re.S).group(1)
    assert re.search(r"<strong>Explicit</strong>: Exposed Female Nipple</li>", checked)
    assert re.search(r"<strong>Violence</strong>: every label \(Weapons\)</li>", checked)
    assert "Middle Finger" not in checked and "Sex Toys" not in checked
    unchecked = re.search(r'<div class="uncovered">(.*?)</div>', page, flags=re.S).group(1)
    assert re.search(r"<strong>Explicit</strong>: Sex Toys, &lt;img src=x", unchecked)
    assert re.search(r"<strong>&lt;img src=x[^<]*</strong>: every label \(Middle Finger\)</li>", unchecked)
    assert "Violence" not in unchecked and "Exposed Female Nipple" not in unchecked
    # all checked (Rekognition): one line, not a list of every label
    everything = [{"category": "Violence", "checked": ["Weapons"], "notChecked": []}]
    runtime.start_human_loop("all", FLOW, content("all.mp4", [], coverage=everything))
    page = client.get("/tasks/all").text
    assert re.search(r"Checked by the detector:</strong> every label the rules act on\s+— the flagged segments", page)
    assert "Not checked" not in page and "Weapons</li>" not in page


def test_media_supports_byte_ranges_and_head(portal):
    runtime, client, _ = portal
    runtime.start_human_loop("clip", FLOW, content("a b.mp4", []))
    login(client)
    whole = client.get(VIDEO_URL)
    assert whole.status_code == 200 and whole.content == VIDEO and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["x-content-type-options"] == "nosniff"
    part = client.get(VIDEO_URL, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == VIDEO[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(VIDEO)}"
    tail = client.get(VIDEO_URL, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == VIDEO[-16:]
    head = client.head(VIDEO_URL)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(VIDEO)) and head.content == b""
    assert client.get(VIDEO_URL, headers={"Range": "bytes=99999-"}).status_code == 416


def test_a_loop_is_submitted_once(portal):
    runtime, client, s3 = portal
    runtime.start_human_loop("once", FLOW, content("once.mp4", []))
    assert submit(client, "once").status_code == 401  # not logged in
    login(client, "bob")
    client.get("/tasks/once")
    first = submit(client, "once")
    assert first.status_code == 200 and first.json()["ok"] is True and first.json()["redirect"] == "/"
    second = submit(client, "once", {"decision-reject": {"value": True}})
    assert second.status_code == 409 and "cannot be submitted again" in second.json()["message"]
    output = read_output(runtime, s3, "once")
    assert output["humanAnswers"][0]["workerId"] == "bob" and output["humanAnswers"][0]["answerContent"] == ANSWER


# ---------------------------------------------------------------- acceptance time (server side)
def test_acceptance_time_survives_many_task_pages_and_reloads(portal):
    """Each task page used to add its acceptance time to the signed session cookie: after ~45 tasks Chromium
    dropped the oversized cookie and every answer had timeSpentInSeconds 0. It is kept with the loop now."""
    runtime, client, s3 = portal
    names = [f"task-{i:02d}" for i in range(65)]
    for name in names:
        runtime.start_human_loop(name, FLOW, content(f"{name}.mp4", []))
    login(client, "carol")
    assert client.get("/tasks/task-00").status_code == 200
    first_open = runtime.acceptances("task-00")["carol"]
    time.sleep(0.3)
    for name in names:  # every task page, the first one again (a reload must not reset its clock)
        assert client.get(f"/tasks/{name}").status_code == 200
    assert runtime.acceptances("task-00")["carol"] == first_open
    assert len(client.cookies.get("session", "")) < 1024  # the session stays small
    assert submit(client, "task-00").status_code == 200
    (answer,) = read_output(runtime, s3, "task-00")["humanAnswers"]
    assert answer["acceptanceTime"] == first_open and answer["acceptanceTime"] < answer["submissionTime"]
    assert answer["timeSpentInSeconds"] >= 0.3


def test_two_reviewers_on_one_task_see_each_other(portal):
    runtime, client, _ = portal
    runtime.start_human_loop("shared", FLOW, content("shared.mp4", []))
    login(client, "dora")
    client.get("/tasks/shared")
    client.get("/logout")
    login(client, "<b>erin</b>")
    page = client.get("/tasks/shared").text
    assert re.search(r"Also being reviewed by dora since \d{4}-\d\d-\d\d \d\d:\d\d UTC", page)
    queue = client.get("/").text
    assert "dora since" in queue and "&lt;b&gt;erin&lt;/b&gt; since" in queue and "<b>erin</b> since" not in queue


# ---------------------------------------------------------------- other web pages must not drive the portal
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""])
def test_requests_for_another_host_name_are_refused(portal, host):
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 still sends its own Host."""
    runtime, client, _ = portal
    runtime.start_human_loop("rebind", FLOW, content("rebind.mp4", []))
    for path in ("/", "/login", "/tasks/rebind", VIDEO_URL, "/audit"):
        assert client.get(path, headers={"Host": host}).status_code == 400
    assert submit(client, "rebind", Host=host).status_code == 400


def test_local_names_and_configured_hosts_are_answered(portal):
    _, client, _ = portal
    for host in ("127.0.0.1", "localhost:8080", "review.internal:80", "[::1]:9000"):
        assert client.get("/login", headers={"Host": host}).status_code == 200, host


def test_login_needs_the_forms_csrf_token(portal):
    _, client, _ = portal
    csrf(client)  # a session with a token exists, but the attacker's form cannot know it
    for data in ({"reviewer": "mallory"}, {"reviewer": "mallory", "csrf": "guess"}):
        assert client.post("/login", data=data, follow_redirects=False).status_code == 403
    token = csrf(client)
    foreign = client.post(
        "/login",
        data={"reviewer": "m", "csrf": token},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303  # still nobody logged in


def test_submit_accepts_only_json_from_the_portals_own_pages(portal):
    runtime, client, s3 = portal
    runtime.start_human_loop("guarded", FLOW, content("guarded.mp4", []))
    login(client, "frank")
    client.get("/tasks/guarded")
    body = json.dumps(ANSWER)
    # a cross-site form or fetch: wrong origin, or a "simple" text/plain body
    assert submit(client, "guarded", Origin="http://evil.example").status_code == 403
    assert submit(client, "guarded", Origin="null").status_code == 403
    assert submit(client, "guarded", Origin=None, Referer="http://evil.example/page").status_code == 403
    plain = client.post("/tasks/guarded/submit", content=body, headers={"Content-Type": "text/plain", "Origin": OWN})
    assert plain.status_code == 415
    form = client.post(
        "/tasks/guarded/submit",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": OWN},
    )
    assert form.status_code == 415
    # neither Origin nor Referer: only with the page's CSRF token
    bare = client.post("/tasks/guarded/submit", content=body, headers={"Content-Type": "application/json"})
    assert bare.status_code == 403
    assert runtime.describe("guarded")["HumanLoopStatus"] == "InProgress"
    token = csrf(client, "/tasks/guarded")
    with_token = client.post(
        "/tasks/guarded/submit", content=body, headers={"Content-Type": "application/json", "X-CSRF-Token": token}
    )
    assert with_token.status_code == 200
    assert read_output(runtime, s3, "guarded")["humanAnswers"][0]["workerId"] == "frank"


def test_submit_from_a_same_origin_page_with_only_a_referer(portal):
    runtime, client, _ = portal
    runtime.start_human_loop("referred", FLOW, content("referred.mp4", []))
    login(client)
    response = submit(client, "referred", Origin=None, Referer=f"{OWN}/tasks/referred")
    assert response.status_code == 200


def test_media_needs_a_login_and_serves_only_the_loops_videos(portal):
    runtime, client, s3 = portal
    runtime.start_human_loop("clip", FLOW, content("a b.mp4", []))
    s3.put_object(Bucket="media", Key="clips/other.mp4", Body=VIDEO, ContentType="video/mp4")
    s3.put_object(Bucket="results", Key="secret.json", Body=b'{"secret": 1}', ContentType="application/json")
    assert client.get(VIDEO_URL).status_code == 401
    login(client)
    assert client.get(VIDEO_URL).status_code == 200
    assert client.get("/media/media/clips/other.mp4").status_code == 404  # exists, but no loop refers to it
    assert client.get("/media/results/secret.json").status_code == 404  # another bucket
    assert client.get("/media/media/missing.mp4").status_code == 404
    runtime.stop("clip")
    assert client.get(VIDEO_URL).status_code == 404  # its review is over: like A2I's links, it no longer plays


@pytest.mark.parametrize(
    ("key", "stored", "served"),
    [
        ("up/page.mp4", "text/html", None),
        ("up/script.mp4", "application/javascript", None),
        ("up/image.svg", "image/svg+xml", None),
        ("up/plain.mov", "binary/octet-stream", "video/quicktime"),
        ("up/clip.webm", "video/webm", "video/webm"),
    ],
)
def test_media_serves_only_video_types_inline(portal, key, stored, served):
    runtime, client, s3 = portal
    s3.put_object(Bucket="media", Key=key, Body=b"<script>window.__pwned=1</script>", ContentType=stored)
    runtime.start_human_loop("typed", FLOW, content("x", [], uri=f"s3://media/{key}"))
    login(client)
    response = client.get(f"/media/media/{key}")
    assert response.status_code == 200 and response.headers["x-content-type-options"] == "nosniff"
    if served is None:
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"] == "attachment"
    else:
        assert response.headers["content-type"] == served and "content-disposition" not in response.headers


def test_media_serves_exactly_the_analysed_version(portal):
    runtime, client, s3 = portal
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    analysed = s3.put_object(Bucket="versioned", Key="v.mp4", Body=b"first", ContentType="video/mp4")["VersionId"]
    s3.put_object(Bucket="versioned", Key="v.mp4", Body=b"second, replaced later", ContentType="video/mp4")
    video = {"uri": "s3://versioned/v.mp4", "name": "v.mp4", "versionId": analysed, "durationMillis": 1000}
    runtime.start_human_loop("pinned", FLOW, json.dumps({"video": video, "segments": []}))
    login(client)
    page = client.get("/tasks/pinned").text
    src = re.search(r'<video id="player"[^>]* src="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert src == f"/media/versioned/v.mp4?versionId={analysed}"
    assert analysed in page  # the version is shown to the reviewer too
    assert client.get(src).content == b"first"
    assert client.get(src, headers={"Range": "bytes=1-2"}).content == b"ir"
    assert client.get("/media/versioned/v.mp4?versionId=someotherversion").status_code == 404
    assert client.get("/media/versioned/v.mp4").status_code == 404  # not the current version either


@pytest.fixture
def review_start_modules(monkeypatch):
    """start_human_review's own modules (as Lambda loads them: its folder is the package root)."""
    monkeypatch.syspath_prepend(str(ROOT / "functions" / "start_human_review"))
    names = ("review_media", "review_input", "analysed_version")
    yield tuple(importlib.import_module(name) for name in names[:2])
    for name in names:
        sys.modules.pop(name, None)


def test_the_video_stays_the_analysed_version_when_the_upload_is_replaced_during_the_review(
    portal, review_start_modules
):
    """start_human_review copies the analysed version and the page plays the copy: the original key replaced
    while the task is open changes nothing the reviewer sees (in AWS grant_read_access has no version)."""
    review_media, review_input = review_start_modules
    runtime, client, s3 = portal
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    analysed = s3.put_object(Bucket="versioned", Key="up/v.mp4", Body=b"analysed", ContentType="video/mp4")
    video = {"uri": "s3://versioned/up/v.mp4", "name": "v.mp4", "bucket": "versioned", "key": "up/v.mp4"}
    video["versionId"] = analysed["VersionId"]
    copy = review_media.make_review_copy(s3, video, "results", "loop-1")
    decision = {"ruleSetVersion": "r1", "reasons": []}
    content = review_input.build_input_content(video, copy.uri, decision, [], 1000)
    runtime.start_human_loop("loop-1", FLOW, json.dumps(content))
    s3.put_object(Bucket="versioned", Key="up/v.mp4", Body=b"replaced during the review", ContentType="video/mp4")
    login(client)
    page = client.get("/tasks/loop-1").text
    src = re.search(r'<video id="player"[^>]* src="([^"]+)"', page).group(1)
    assert src == "/media/results/review-media%2Floop-1%2Fv.mp4"  # the copy: unversioned, no ?versionId
    assert analysed["VersionId"] in page  # the page still names the analysed version
    assert client.get(src).content == b"analysed"
    assert client.get(src, headers={"Range": "bytes=2-4"}).content == b"aly"
    assert client.head(src).headers["content-length"] == str(len(b"analysed"))
    assert client.get(f"{src}?versionId={analysed['VersionId']}").status_code == 404  # the copy has no versions
    assert client.get("/media/versioned/up/v.mp4").status_code == 404  # nor is the (replaced) original served
    runtime.stop("loop-1")
    assert client.get(src).status_code == 404  # the review is over


def test_a_large_review_copy_made_in_parts_plays_whole(portal, review_start_modules, monkeypatch):
    """The copy of a video above the multipart threshold (5 MiB parts here, 256 MiB in AWS) is byte-identical."""
    review_media, review_input = review_start_modules
    runtime, client, s3 = portal
    mib = 1024 * 1024
    big = bytes(range(256)) * (6 * mib // 256)
    s3.put_object(Bucket="media", Key="big.mov", Body=big)  # binary/octet-stream: served by its extension
    etag = s3.head_object(Bucket="media", Key="big.mov")["ETag"].strip('"')
    monkeypatch.setattr(
        review_media, "COPY_CONFIG", TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib)
    )
    video = {"uri": "s3://media/big.mov", "name": "big.mov", "bucket": "media", "key": "big.mov", "etag": etag}
    copy = review_media.make_review_copy(s3, video, "results", "loop-2")
    content = review_input.build_input_content(video, copy.uri, {"ruleSetVersion": "r1", "reasons": []}, [], None)
    runtime.start_human_loop("loop-2", FLOW, json.dumps(content))
    login(client)
    src = re.search(r'<video id="player"[^>]* src="([^"]+)"', client.get("/tasks/loop-2").text).group(1)
    response = client.get(src)
    assert response.content == big and response.headers["content-type"] == "video/quicktime"


def test_a_key_with_dot_segments_plays_its_own_video_not_another_loops(portal):
    """An uploader names a video ``x/../benign.mp4``: the reviewer must watch that object, not benign.mp4
    (which another loop refers to), although browsers resolve ``..`` in URL paths."""
    runtime, client, s3 = portal
    s3.put_object(Bucket="media", Key="benign.mp4", Body=b"the clean video", ContentType="video/mp4")
    s3.put_object(Bucket="media", Key="x/../benign.mp4", Body=b"the uploaded video", ContentType="video/mp4")
    runtime.start_human_loop("clean", FLOW, content("benign.mp4", [], uri="s3://media/benign.mp4"))
    runtime.start_human_loop("tricky", FLOW, content("benign.mp4", [], uri="s3://media/x/../benign.mp4"))
    login(client)
    src = re.search(r'<video id="player"[^>]* src="([^"]+)"', client.get("/tasks/tricky").text).group(1)
    assert "/../" not in src and "/.." not in src
    assert client.get(src).content == b"the uploaded video"


def test_audit_pages_need_a_login(portal):
    _, client, _ = portal
    for path in ("/audit", "/audit/some-execution"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.post("/audit", follow_redirects=False).status_code in (401, 405)
    login(client)
    assert client.get("/audit").text == "audit index"


def test_security_headers_on_pages(portal):
    _, client, _ = portal
    response = client.get("/login")
    assert response.headers["x-frame-options"] == "DENY" and response.headers["x-content-type-options"] == "nosniff"


def test_video_requests_do_not_wait_behind_a_slow_submit(portal):
    """Handlers that call the local endpoint run in the thread pool, not on the event loop."""
    import threading

    runtime, client, _ = portal
    runtime.start_human_loop("slow", FLOW, content("a b.mp4", []))
    login(client)
    client.get("/tasks/slow")
    real_answer, started, release = runtime.answer, threading.Event(), threading.Event()

    def slow_answer(*args, **kwargs):
        started.set()
        release.wait(30)  # held until the video request has been answered (or, if it waits behind us, 30 s)
        return real_answer(*args, **kwargs)

    runtime.answer = slow_answer
    posting = threading.Thread(target=lambda: submit(client, "slow"))
    posting.start()
    assert started.wait(30)
    assert client.get(VIDEO_URL, headers={"Range": "bytes=0-99"}).status_code == 206
    answered_during_submit = posting.is_alive() and not release.is_set()
    release.set()
    posting.join()
    assert answered_during_submit  # the video came while the submission was still held
    assert runtime.describe("slow")["HumanLoopStatus"] == "Completed"


def test_hostile_names_stay_text_on_the_portal_and_audit_pages(portal):
    """Reviewer, video and execution names are attacker-controlled: every page shows them as text."""
    from html.parser import HTMLParser
    from urllib.parse import quote

    from starlette.applications import Starlette

    from vidmod.emulator.portal.audit_pages import audit_routes

    script, attribute = "<script>alert(1)</script>", "\"'><img src=x onerror=alert(1)>"
    escaped = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&gt;&lt;img src=x onerror=alert(1)&gt;")
    me, other = script + attribute, attribute + script

    def parse(page: str) -> tuple[set[str], str]:
        """The elements of a page, and its text (entities decoded)."""
        elements, text = set(), []
        parser = HTMLParser()
        parser.handle_starttag = lambda tag, attrs: elements.add(tag)
        parser.handle_data = text.append
        parser.feed(page)
        parser.close()
        return elements, "".join(text)

    def shown_as_text(page: str, *shown: str) -> set[str]:
        assert script not in page and attribute not in page
        assert any(part in page for part in escaped)
        elements, text = parse(page)
        assert all(part in text for part in shown), text
        return elements

    runtime, client, s3 = portal
    runtime.start_human_loop("hostile", FLOW, content(me, []))
    runtime.accept("hostile", other)
    login(client, me)
    queue = client.get("/").text
    elements = shown_as_text(queue, f"reviewer {me} · log out", f"hostile{me}", f"{other} since")
    assert all(part in queue for part in escaped) and not elements & {"script", "img"}
    task = client.get("/tasks/hostile").text  # the worker template's own script elements are expected here
    shown_as_text(task, "review hostile", f"reviewer {me} · log out", f"Also being reviewed by {other} since")
    missing = client.get(f"/tasks/{quote(attribute, safe='')}")
    assert missing.status_code == 404
    assert not shown_as_text(missing.text, f"Human loop {attribute} not found") & {"script", "img"}

    state_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:moderation"
    audit = TestClient(Starlette(routes=audit_routes(s3.meta.endpoint_url, state_machine, "decisions", "")))
    unknown = audit.get(f"/audit/{quote(attribute, safe='')}")
    assert unknown.status_code == 404
    assert not shown_as_text(unknown.text, "Not found", attribute) & {"script", "img"}


# ---------------------------------------------------------------- several reviewers per video (TaskCount)
def test_a_task_needing_three_reviewers_is_never_given_to_the_same_reviewer_twice(portal):
    runtime, client, s3 = portal
    runtime.task_counts[FLOW] = 3
    runtime.start_human_loop("panel", FLOW, content("panel.mp4", []))
    login(client, "ann")
    row = re.search(r"<tr><td><a href='/tasks/panel'>.*?</tr>", client.get("/").text, re.S).group(0)
    assert "<td class='answers'>0 of 3 answers</td>" in row
    client.get("/tasks/panel")
    first = submit(client, "panel", {"decision-reject": {"value": True}})
    assert first.status_code == 200 and first.json() == {
        "ok": True,
        "outputS3Uri": None,
        "answers": 1,
        "needed": 3,
        "redirect": "/",
    }
    queue = client.get("/").text
    assert "Saved: waiting for 2 more reviewers on panel." in queue
    assert "/tasks/panel" not in queue  # answered: no longer listed for ann
    page = client.get("/tasks/panel")
    assert page.status_code == 409 and "You have already answered this task" in page.text
    assert "waiting for 2 more reviewers" in page.text and "crowd-form" not in page.text  # not the form
    again = submit(client, "panel", {"decision-approve": {"value": True}})
    assert again.status_code == 409 and "already answered" in again.json()["message"]
    assert runtime.answers("panel") == (["ann"], 3)

    client.get("/logout")
    login(client, "ben")
    row = re.search(r"<tr><td><a href='/tasks/panel'>.*?</tr>", client.get("/").text, re.S).group(0)
    assert "<td class='answers'>1 of 3 answers</td>" in row and "ann since" not in row
    task = client.get("/tasks/panel").text
    assert "3 reviewers answer this video independently; 1 of 3 answers are in." in task
    assert submit(client, "panel", {"decision-approve": {"value": True}}).status_code == 200
    assert "Saved: waiting for 1 more reviewer on panel." in client.get("/").text
    client.get("/logout")
    login(client, "cat")
    last = submit(client, "panel", {"decision-reject": {"value": True}})
    assert last.status_code == 200 and last.json()["outputS3Uri"].endswith("/panel/output.json")
    assert "Submitted panel. Thank you." in client.get("/").text
    answers = read_output(runtime, s3, "panel")["humanAnswers"]
    assert [(a["workerId"], a["answerContent"]) for a in answers] == [
        ("ann", {"decision-reject": {"value": True}}),
        ("ben", {"decision-approve": {"value": True}}),
        ("cat", {"decision-reject": {"value": True}}),
    ]
    page = client.get("/tasks/panel")
    assert page.status_code == 409 and "This task is Completed" in page.text


def test_audit_tasks_carry_an_audit_badge_in_the_queue_and_names_stay_text(portal):
    runtime, client, _ = portal
    runtime.start_human_loop("audited", FLOW, content(EVIL, [], audit={"decision": "APPROVE", "reason": EVIL}))
    runtime.start_human_loop("ordinary", FLOW, content("ordinary.mp4", []))
    login(client, "<b>ann</b>")
    queue = client.get("/").text
    audited = re.search(r"<tr class='audit'><td><a href='/tasks/audited'>.*?</tr>", queue, re.S).group(0)
    assert "<span class='badge audit'" in audited and ">Audit</span>" in audited
    assert EVIL not in queue and "&lt;img src=x onerror=" in audited
    ordinary = re.search(r"<tr><td><a href='/tasks/ordinary'>.*?</tr>", queue, re.S).group(0)
    assert "Audit" not in ordinary and "<td class='answers'>0 of 1 answers</td>" in ordinary
    assert "&lt;b&gt;ann&lt;/b&gt;" in queue and "<b>ann</b>" not in queue
