"""The local reviewer portal: a queue of open human loops, the ui/ template for one loop, A2I-format output.

Rendering uses python-liquid with autoescape on (as A2I does) and A2I's filters; the crowd elements come
from an offline polyfill; videos are streamed with HTTP byte ranges so seeking works.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from botocore.exceptions import ClientError
from liquid import Environment
from liquid.filter import string_filter
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vidmod.a2i.runtime import A2IError, HumanLoopRuntime
from vidmod.local.clients import local_client

CROWD_SCRIPT = "https://assets.crowd.aws/crowd-html-elements.js"
STATIC = Path(__file__).with_name("static")
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:1140px;color:#16191f}}
header{{display:flex;justify-content:space-between;border-bottom:1px solid #dde;margin-bottom:1rem}}
td,th{{padding:.35rem .6rem;border-bottom:1px solid #eee;text-align:left}}.flash{{background:#e8f6ec;padding:.5rem}}
.error{{color:#d13212;font-weight:600}}</style></head><body><header><h1>vidmod review</h1><p>{who}</p></header>
{body}</body></html>"""


def grant_read_access(uri: object) -> str:
    """A2I turns an s3:// URI into a short-lived URL; locally it is the portal's media route."""
    text = str(uri)
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        return f"/media/{quote(bucket)}/{quote(key)}"
    return text


def liquid_environment() -> Environment:
    env = Environment(autoescape=True)
    env.filters["grant_read_access"] = string_filter(grant_read_access)
    env.filters["to_json"] = lambda value: json.dumps(value)
    env.filters["skip_autoescape"] = lambda value: Markup(value)  # noqa: S704 - A2I's filter, never used on input
    return env


def create_app(
    runtime: HumanLoopRuntime, endpoint_url: str, ui_template: Path, extra_routes=None, secret_key: str | None = None
) -> Starlette:
    env = liquid_environment()
    s3 = local_client("s3", endpoint_url)

    def page(request: Request, title: str, body: str, status: int = 200) -> HTMLResponse:
        who = request.session.get("reviewer")
        who_html = f"reviewer <strong>{html.escape(who)}</strong> · <a href='/logout'>log out</a>" if who else ""
        return HTMLResponse(PAGE.format(title=html.escape(title), who=who_html, body=body), status_code=status)

    async def queue(request: Request) -> Response:
        if not request.session.get("reviewer"):
            return RedirectResponse("/login", status_code=303)
        now = datetime.now(UTC)
        rows = []
        for loop in runtime.list_open():
            created = datetime.fromisoformat(loop["CreationTime"].replace("Z", "+00:00"))
            age = int((now - created).total_seconds())
            video = runtime.input_content(loop["HumanLoopName"]).get("video", {})
            name = html.escape(loop["HumanLoopName"])
            rows.append(
                f"<tr><td><a href='/tasks/{name}'>{name}</a></td><td>{html.escape(str(video.get('name', '')))}</td>"
                f"<td>{age // 3600}h {age % 3600 // 60}m {age % 60}s</td></tr>"
            )
        flash = request.session.pop("flash", "")
        body = (f"<p class='flash'>{html.escape(flash)}</p>" if flash else "") + (
            "<h2>Open reviews (oldest first)</h2><table><tr><th>task</th><th>video</th><th>waiting</th></tr>"
            + "".join(rows)
            + "</table>"
            if rows
            else "<h2>No open reviews</h2>"
        )
        return page(request, "vidmod review queue", body + "<p><a href='/audit'>audit</a></p>")

    async def login(request: Request) -> Response:
        if request.method == "POST":
            form = await request.form()
            name = str(form.get("reviewer", "")).strip()
            if not name or len(name) > 64:
                return page(request, "log in", _login_form("Enter your reviewer name (1-64 characters)."), 400)
            request.session["reviewer"] = name
            return RedirectResponse("/", status_code=303)
        return page(request, "log in", _login_form(""))

    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def task(request: Request) -> Response:
        if not request.session.get("reviewer"):
            return RedirectResponse("/login", status_code=303)
        name = request.path_params["name"]
        try:
            described = runtime.describe(name)
        except A2IError as error:
            return page(request, "not found", f"<p class='error'>{html.escape(error.message)}</p>", 404)
        if described["HumanLoopStatus"] != "InProgress":
            return page(
                request, "done", f"<p>This task is {described['HumanLoopStatus']}.</p><a href='/'>queue</a>", 409
            )
        request.session.setdefault("accepted", {})[name] = time.time()
        request.session["accepted"] = dict(request.session["accepted"])
        rendered = env.from_string(ui_template.read_text(encoding="utf-8")).render(
            task={"input": runtime.input_content(name)}
        )
        rendered = rendered.replace(CROWD_SCRIPT, "/static/crowd-polyfill.js")
        return page(request, f"review {name}", rendered)

    async def submit(request: Request) -> Response:
        reviewer = request.session.get("reviewer")
        if not reviewer:
            return JSONResponse({"message": "log in first"}, status_code=401)
        name = request.path_params["name"]
        try:
            answer = await request.json()
        except json.JSONDecodeError:
            return JSONResponse({"message": "the answer is not JSON"}, status_code=400)
        if not isinstance(answer, dict):
            return JSONResponse({"message": "the answer must be a JSON object"}, status_code=400)
        accepted = request.session.get("accepted", {}).get(name, time.time())
        try:
            uri = runtime.submit(name, answer, reviewer, datetime.fromtimestamp(accepted, UTC))
        except A2IError as error:
            return JSONResponse({"message": error.message}, status_code=error.status)
        request.session["flash"] = f"Submitted {name}. Thank you."
        return JSONResponse({"ok": True, "outputS3Uri": uri, "redirect": "/"})

    async def media(request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            return Response("not found", status_code=404)
        size, content_type = head["ContentLength"], head.get("ContentType") or "video/mp4"
        if content_type in {"binary/octet-stream", "application/octet-stream"}:
            content_type = "video/mp4"
        headers = {"Accept-Ranges": "bytes", "Content-Type": content_type}
        start, end, status = 0, size - 1, 200
        spec = request.headers.get("range", "")
        if spec.startswith("bytes="):
            first, _, last = spec[6:].split(",")[0].partition("-")
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
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")["Body"]
        return StreamingResponse(iter(lambda: body.read(256 * 1024), b""), status_code=status, headers=headers)

    routes = [
        Route("/", queue),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout),
        Route("/tasks/{name}", task),
        Route("/tasks/{name}/submit", submit, methods=["POST"]),
        Route("/media/{bucket}/{key:path}", media, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *(extra_routes or []),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, secret_key=secret_key or secrets.token_hex(32), same_site="strict")],
    )


def _login_form(message: str) -> str:
    error = f"<p class='error'>{html.escape(message)}</p>" if message else ""
    return (
        f"<h2>Log in</h2>{error}<form method='post'><label>Reviewer name <input name='reviewer' "
        "autofocus required maxlength='64'></label> <button type='submit'>Log in</button></form>"
    )
