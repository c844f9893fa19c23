"""The local reviewer portal: a queue of open human loops, the ui/ template for one loop, A2I-format output.

Rendering uses python-liquid with autoescape on (as A2I does) and A2I's filters; the crowd elements come
from an offline polyfill; videos are streamed with HTTP byte ranges so seeking works. The portal's own pages
(and the audit pages) are the Liquid templates in ``templates/``, autoescaped too: Python passes them data.

Security (the portal listens on 127.0.0.1, but any web page the reviewer opens can reach that address):
only Host headers naming this machine are answered (no DNS rebinding; ``allowed_hosts`` adds names); the
login form carries a CSRF token; a submission must be JSON from a page of the portal itself (Origin/Referer,
or the page's CSRF token); every page, the media route and the extra (audit) routes need a logged-in
reviewer; the media route serves only the videos the known human loops refer to, and only as video
(anything else is an attachment).

Several reviewers per video (the loop's TaskCount): a task stays in the queue until that many distinct
reviewers have answered; a reviewer who answered no longer sees it, is told so on its page, and cannot submit
again (409). The queue shows each task's answers so far and marks audit reviews (InputContent ``audit``).
"""

from __future__ import annotations

import copy
import hmac
import json
import mimetypes
import posixpath
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from botocore.exceptions import ClientError
from liquid import Environment
from liquid.filter import with_context
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from vidmod.emulator.a2i import A2IError, HumanLoopRuntime
from vidmod.emulator.clients import local_client
from vidmod.emulator.hosts import LOOPBACK_NAMES, host_name
from vidmod.emulator.portal.pages import render_page
from vidmod_contracts.moderation_slots import Usage

CROWD_SCRIPT = "https://assets.crowd.aws/crowd-html-elements.js"
STATIC = Path(__file__).with_name("static")
GENERIC_TYPES = {"", "binary/octet-stream", "application/octet-stream"}


def grant_read_access(uri: object, video: dict | None = None) -> str:
    """A2I turns an s3:// URI into a short-lived URL; locally it is the portal's media route.

    The task's ``video.versionId`` is a version of ``video.sourceUri`` (the uploaded object; ``video.uri`` is
    then start_human_review's unversioned copy of that version), or of ``video.uri`` when there is no
    ``sourceUri``. A URL for that object asks for exactly that version (``?versionId=``).
    """
    text = str(uri)
    if not text.startswith("s3://"):
        return text
    bucket, _, key = text[5:].partition("/")
    # The key is one path segment (``/`` escaped too): a key like ``x/../other.mp4`` must not let the browser
    # resolve the dot segments into another video's URL.
    url = f"/media/{quote(bucket, safe='')}/{quote(key, safe='')}"
    if isinstance(video, dict) and (video.get("sourceUri") or video.get("uri")) == text and video.get("versionId"):
        url += f"?versionId={quote(str(video['versionId']), safe='')}"
    return url


@with_context
def _grant_read_access_filter(uri: object, *, context) -> str:
    task = context.resolve("task")
    video = task.get("input", {}).get("video") if isinstance(task, dict) else None
    return grant_read_access(uri, video)


def liquid_environment() -> Environment:
    env = Environment(autoescape=True)
    env.filters["grant_read_access"] = _grant_read_access_filter
    env.filters["to_json"] = lambda value: json.dumps(value)
    env.filters["skip_autoescape"] = lambda value: Markup(value)  # noqa: S704 - A2I's filter, never used on input
    return env


def media_type(stored: str, key: str) -> str | None:
    """The video type to serve an object as, or None when it is not a video."""
    stored = (stored or "").split(";")[0].strip().lower()
    if stored.startswith("video/"):
        return stored
    if stored in GENERIC_TYPES:
        guessed = mimetypes.guess_type(posixpath.basename(key))[0] or ""
        if guessed.startswith("video/"):
            return guessed
    return None


def _since(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    minutes = int((datetime.now(UTC) - moment).total_seconds() // 60)
    return f"{moment:%Y-%m-%d %H:%M} UTC ({minutes} min ago)"


def _more_reviewers(count: int) -> str:
    return f"{count} more reviewer" + ("" if count == 1 else "s")


def _reviewers(acceptances: dict[str, str], me: str | None = None) -> list[dict[str, str]]:
    """Who has a task open (``me`` left out), first first: name and since (when, for humans)."""
    ordered = sorted(((who, when) for who, when in acceptances.items() if who != me), key=lambda item: item[1])
    return [{"name": who, "since": _since(when)} for who, when in ordered]


class SecurityHeaders:
    """nosniff, no framing, no referrer to other sites: on every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LocalHostsOnly:
    """Answer only requests whose Host names this machine (no DNS rebinding: a page on evil.example whose name
    now resolves to 127.0.0.1 still sends ``Host: evil.example``). The address the server listens on counts
    too, unless it is a wildcard address."""

    def __init__(self, app, allowed_hosts: Iterable[str]):
        self.app = app
        self.allowed = {host.lower().strip("[]") for host in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        name = host_name(Headers(scope=scope).get("host", ""))
        server = (scope.get("server") or ("",))[0] or ""
        listening = {server.lower()} - {"", "0.0.0.0", "::"}  # noqa: S104 - compared against, never bound
        if name and (name in self.allowed or name in listening):
            await self.app(scope, receive, send)
            return
        await PlainTextResponse("Invalid host header", status_code=400)(scope, receive, send)


def require_login(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """The same routes, answering only a logged-in reviewer (others: a redirect to /login, or 401)."""

    def guard(app):
        async def guarded(scope, receive, send):
            if scope["type"] == "http" and not (scope.get("session") or {}).get("reviewer"):
                if scope.get("method") in ("GET", "HEAD"):
                    response: Response = RedirectResponse("/login", status_code=303)
                else:
                    response = JSONResponse({"message": "log in first"}, status_code=401)
                await response(scope, receive, send)
                return
            await app(scope, receive, send)

        return guarded

    guarded_routes = []
    for route in routes:
        route = copy.copy(route)
        if hasattr(route, "app"):
            route.app = guard(route.app)
        guarded_routes.append(route)
    return guarded_routes


def create_app(
    runtime: HumanLoopRuntime,
    endpoint_url: str,
    ui_template: Path,
    extra_routes=None,
    secret_key: str | None = None,
    allowed_hosts: Iterable[str] = (),
    slot_usage: Callable[[], Usage] | None = None,
) -> Starlette:
    """The portal. ``allowed_hosts``: host names besides 127.0.0.1/localhost it may be reached under;
    ``slot_usage``: the stack's moderation slots, shown above the queue."""
    env = liquid_environment()
    s3 = local_client("s3", endpoint_url)

    def csrf_token(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(32)
        return request.session["csrf"]

    def valid_token(request: Request, token: object) -> bool:
        expected = request.session.get("csrf")
        return bool(expected) and isinstance(token, str) and hmac.compare_digest(token, expected)

    def own_origin(request: Request) -> str:
        return f"{request.url.scheme}://{request.headers.get('host', '')}"

    def foreign(request: Request) -> bool:
        """Origin (else Referer) names another site."""
        own, origin, referer = own_origin(request), request.headers.get("origin"), request.headers.get("referer")
        if origin is not None:
            return origin != own
        return referer is not None and referer != own and not referer.startswith(own + "/")

    def from_portal(request: Request) -> bool:
        """Sent by one of the portal's own pages: its Origin (else Referer) is the portal, or it has the CSRF header."""
        if foreign(request):
            return False
        if request.headers.get("origin") is not None or request.headers.get("referer") is not None:
            return True
        return valid_token(request, request.headers.get("x-csrf-token"))

    def page(request: Request, template: str, status_code: int = 200, **data: object) -> HTMLResponse:
        """A page in the portal's layout: the reviewer logged in (if any) and the CSRF token for its scripts."""
        reviewer = request.session.get("reviewer") or None
        return render_page(template, status_code, csrf=csrf_token(request), reviewer=reviewer, **data)

    def queue(request: Request) -> Response:
        reviewer = request.session.get("reviewer")
        if not reviewer:
            return RedirectResponse("/login", status_code=303)
        now = datetime.now(UTC)
        tasks = []
        for loop in runtime.list_open():
            if reviewer in loop["Answered"]:  # never the same task twice: this reviewer's answer is in
                continue
            created = datetime.fromisoformat(loop["CreationTime"].replace("Z", "+00:00"))
            try:
                content = runtime.input_content(loop["HumanLoopName"])
            except A2IError:  # completed or removed meanwhile
                continue
            video = content.get("video") if isinstance(content.get("video"), dict) else {}
            tasks.append(
                {
                    "name": loop["HumanLoopName"],
                    "video": str(video.get("name", "")),
                    "waiting": int((now - created).total_seconds()),
                    "reviewers": _reviewers(loop.get("Acceptances", {})),
                    "answers": len(loop["Answered"]),
                    "needed": loop["TaskCount"],
                    "audit": bool(content.get("audit")),
                }
            )
        flash = request.session.pop("flash", None) or None
        usage = slot_usage() if slot_usage is not None else None
        slots = {"inUse": usage.in_use, "max": usage.limit, "queued": usage.queued} if usage else None
        return page(request, "queue.liquid.html", flash=flash, tasks=tasks, slots=slots)

    async def login(request: Request) -> Response:
        if request.method == "POST":
            form = await request.form()
            if not valid_token(request, form.get("csrf")) or foreign(request):
                return page(request, "login.liquid.html", 403, message="The form expired; try again.")
            name = str(form.get("reviewer", "")).strip()
            if not name or len(name) > 64:
                return page(request, "login.liquid.html", 400, message="Enter your reviewer name (1-64 characters).")
            request.session["reviewer"] = name
            return RedirectResponse("/", status_code=303)
        return page(request, "login.liquid.html")

    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    def task(request: Request) -> Response:
        reviewer = request.session.get("reviewer")
        if not reviewer:
            return RedirectResponse("/login", status_code=303)
        name = request.path_params["name"]
        try:
            described = runtime.describe(name)
            if described["HumanLoopStatus"] != "InProgress":
                return page(request, "task_done.liquid.html", 409, status=described["HumanLoopStatus"])
            answered, needed = runtime.answers(name)
            if reviewer in answered:  # the answer is in: the form is not shown again
                waiting = _more_reviewers(needed - len(answered))
                return page(request, "task_done.liquid.html", 409, status="InProgress", waiting=waiting)
            # The acceptance time lives with the loop (server side), per reviewer; the first opening counts.
            acceptances = runtime.accept(name, reviewer)
            content = runtime.input_content(name)
        except A2IError as error:
            return page(request, "task_not_found.liquid.html", 404, message=error.message)
        rendered = env.from_string(ui_template.read_text(encoding="utf-8")).render(task={"input": content})
        # Markup already: the worker template, its input values escaped by its own autoescaped environment.
        rendered = Markup(rendered.replace(CROWD_SCRIPT, "/static/crowd-polyfill.js"))  # noqa: S704 - see above
        others = _reviewers(acceptances, reviewer)
        return page(
            request,
            "task.liquid.html",
            name=name,
            others=others,
            content=rendered,
            answers=len(answered),
            needed=needed,
        )

    async def submit(request: Request) -> Response:
        reviewer = request.session.get("reviewer")
        if not reviewer:
            return JSONResponse({"message": "log in first"}, status_code=401)
        if not from_portal(request):
            return JSONResponse({"message": "submissions must come from the portal's own task page"}, status_code=403)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return JSONResponse({"message": "the answer must be sent as application/json"}, status_code=415)
        name = request.path_params["name"]
        try:
            answer = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"message": "the answer is not JSON"}, status_code=400)
        if not isinstance(answer, dict):
            return JSONResponse({"message": "the answer must be a JSON object"}, status_code=400)
        try:
            saved = await run_in_threadpool(runtime.answer, name, answer, reviewer)
        except A2IError as error:
            return JSONResponse({"message": error.message}, status_code=error.status)
        if saved.waiting_for:
            request.session["flash"] = f"Saved: waiting for {_more_reviewers(saved.waiting_for)} on {name}."
        else:
            request.session["flash"] = f"Submitted {name}. Thank you."
        return JSONResponse(
            {
                "ok": True,
                "outputS3Uri": saved.output_uri or None,
                "answers": saved.answers,
                "needed": saved.needed,
                "redirect": "/",
            }
        )

    def media(request: Request) -> Response:
        if not request.session.get("reviewer"):
            return Response("log in first", status_code=401, media_type="text/plain")
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        version = request.query_params.get("versionId", "")
        known = runtime.media_references().get((bucket, key))
        if known is None or version not in known:  # a pinned video is served only as its analysed version
            return Response("not found", status_code=404, media_type="text/plain")
        pinned = {"VersionId": version} if version else {}
        try:
            head = s3.head_object(Bucket=bucket, Key=key, **pinned)
        except ClientError:
            return Response("not found", status_code=404, media_type="text/plain")
        size = head["ContentLength"]
        video_type = media_type(head.get("ContentType", ""), key)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private"}  # nosniff: SecurityHeaders
        if video_type:
            headers["Content-Type"] = video_type
        else:  # never let a stored text/html (or anything else) render on the portal's origin
            headers["Content-Type"] = "application/octet-stream"
            headers["Content-Disposition"] = "attachment"
        start, end, status = 0, size - 1, 200
        spec = request.headers.get("range", "")
        if spec.startswith("bytes="):
            first, _, last = spec[6:].split(",")[0].strip().partition("-")
            try:
                start = int(first) if first else max(size - int(last), 0)
                end = min(int(last), size - 1) if first and last else size - 1
            except ValueError:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            if start > end or start >= size:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        if request.method == "HEAD" or size == 0:
            return Response(status_code=status, headers=headers)
        if head.get("VersionId"):  # the bytes of the version whose size was just announced
            pinned = {"VersionId": head["VersionId"]}
        try:
            body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}", **pinned)["Body"]
        except ClientError:  # deleted between the two calls
            return Response("not found", status_code=404, media_type="text/plain")
        return StreamingResponse(iter(lambda: body.read(256 * 1024), b""), status_code=status, headers=headers)

    routes = [
        Route("/", queue),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout),
        Route("/tasks/{name}", task),
        Route("/tasks/{name}/submit", submit, methods=["POST"]),
        Route("/media/{bucket}/{key:path}", media, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *require_login(extra_routes or []),
    ]
    hosts = list(dict.fromkeys([*LOOPBACK_NAMES, *allowed_hosts]))
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(LocalHostsOnly, allowed_hosts=hosts),
            Middleware(SecurityHeaders),
            Middleware(SessionMiddleware, secret_key=secret_key or secrets.token_hex(32), same_site="strict"),
        ],
    )
