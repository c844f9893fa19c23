"""One local AWS endpoint on 127.0.0.1: moto for most services, the project's own services for the rest.

| request                                  | served by                                   |
| ---------------------------------------- | ------------------------------------------- |
| ``X-Amz-Target: RekognitionService.*``   | the local detector (or a scripted stand-in) |
| path ``/human-loops...``                 | the local A2I runtime                       |
| ``X-Amz-Target: AWSEvents.PutEvents``    | the event router (template rules)           |
| everything else                          | moto's server application                   |

Requests a web page makes (cross-site, or through a rebound DNS name) are refused before any of them. A write
that moto serves runs inside ``on_write`` (the stack's: its changes reach the disk before the answer is sent),
and ``stop`` waits for the requests under way.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

import flask
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from vidmod.emulator.event_router import EventRouter
from vidmod.emulator.hosts import LOOPBACK_NAMES, host_name

WSGIApp = Callable
READS = frozenset({"GET", "HEAD", "OPTIONS"})
LARGE_BODY = 1024 * 1024  # a request body above this is an upload (a part of one): at most four at a time


class QuietRequestHandler(MotoRequestHandler):
    """No access log on stderr: the CLI shows progress instead."""

    def log_request(self, *args, **kwargs) -> None:
        pass


def _with_request_id(start_response):
    """AWS answers carry a request id; the engine's error handling reads it from every error response."""

    def start(status, headers, exc_info=None):
        if not any(name.lower() == "x-amzn-requestid" for name, _ in headers):
            headers = [*headers, ("x-amzn-RequestId", str(uuid.uuid4()))]
        return start_response(status, headers, exc_info)

    return start


def _forget_body(_app, **_extra) -> None:
    """Flask's request keeps the body it read, and moto leaves the request in reference cycles that only a full
    garbage collection frees — one that runs by object count, not bytes: the 8 MB parts of a multipart upload
    piled up by the hundred MB. The body is dropped when the request is torn down."""
    request = flask.request._get_current_object()
    request.__dict__.pop("data", None)
    request.__dict__.pop("_cached_data", None)


flask.request_tearing_down.connect(_forget_body)


def refusal(environ: dict) -> str | None:
    """Why a request must not reach the local services, or None: only this machine's AWS clients may use them.

    A web page open in the user's browser can address 127.0.0.1 too, directly or through a name of its own that
    it re-points at 127.0.0.1 (DNS rebinding), and the stack holds task tokens and decision records. Browsers
    mark such requests (``Origin``, ``Sec-Fetch-Site``) and keep the page's own name in ``Host``; the AWS CLI,
    the SDKs and the engine send neither header and name this machine.
    """
    host = environ.get("HTTP_HOST", "")
    name = host_name(host)
    if not (name in LOOPBACK_NAMES or name.endswith(".localhost") or name == environ.get("SERVER_NAME", "").lower()):
        return f"Host {host!r} is not this machine: the local endpoint answers only requests addressed to it"
    if "HTTP_ORIGIN" in environ or environ.get("HTTP_SEC_FETCH_SITE", "none") != "none":
        return "requests made by web pages are refused: use the AWS CLI or an SDK with --endpoint-url"
    return None


# Services whose requests always reach one moto app (S3 only path-style here: no s3-control, no virtual hosts).
CACHED_SERVICES = frozenset({"dynamodb", "states", "lambda", "s3", "iam", "sts"})
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def _signed_service(environ: dict) -> str | None:
    """The service a SigV4-signed request names in its credential scope (``…/us-east-1/dynamodb/aws4_request``)."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match[1] if match else None


def _refuse(reason: str, start_response) -> list[bytes]:
    body = json.dumps({"__type": "AccessDeniedException", "message": reason}).encode()
    start_response(
        "403 Forbidden",
        [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
    )
    return [body]


class Gateway:
    def __init__(self, router: EventRouter, rekognition: WSGIApp | None = None, a2i: WSGIApp | None = None):
        self.moto = DomainDispatcherApplication(create_backend_app)
        self._apps: dict[str, WSGIApp] = {}  # signing service → moto's app for it
        self.router = router
        self.rekognition = rekognition
        self.a2i = a2i
        self.on_write: Callable[[dict], AbstractContextManager] | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._under_way = 0
        self._idle = threading.Condition()
        # moto holds a request body in memory several times over while it stores it; ten 8 MB parts of a multipart
        # upload at once (boto3 default) would cost the stack hundreds of MB; two cores gain nothing from ten.
        self._uploads = threading.BoundedSemaphore(4)
        # DynamoDB applies each request atomically; moto's backend is not thread-safe (a transaction's condition
        # checks and writes can interleave with another request's). One request at a time gives conditional
        # writes their meaning, and the journal the order the writes were applied in.
        self._dynamodb = threading.Lock()

    def __call__(self, environ, start_response):
        if (reason := refusal(environ)) is not None:
            return _refuse(reason, start_response)
        with self._idle:
            self._under_way += 1
        try:
            return self._route(environ, start_response)
        finally:
            with self._idle:
                self._under_way -= 1
                self._idle.notify_all()

    def _route(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        path = environ.get("PATH_INFO", "")
        if target.startswith("RekognitionService.") and self.rekognition is not None:
            return self.rekognition(environ, _with_request_id(start_response))
        if path.startswith("/human-loops") and self.a2i is not None:
            return self.a2i(environ, _with_request_id(start_response))
        if target == "AWSEvents.PutEvents":
            return self._put_events(environ, start_response)
        if target.startswith("DynamoDB_"):
            with self._dynamodb:
                return self._moto(environ, start_response)
        return self._moto(environ, start_response)

    def _moto_app(self, environ) -> WSGIApp:
        """moto's dispatcher finds a request's service under one global lock, scanning its module folders each
        time; the app for a service never changes, so it is found once per service the request is signed for."""
        service = _signed_service(environ)
        if service not in CACHED_SERVICES:
            return self.moto
        app = self._apps.get(service)
        if app is None:
            app = self._apps[service] = self.moto.get_application(environ)
        return app

    def _moto(self, environ, start_response):
        moto = self._moto_app(environ)
        if self.on_write is None or environ.get("REQUEST_METHOD", "GET") in READS:
            return moto(environ, start_response)
        declared = max(int(environ.get(name) or 0) for name in ("CONTENT_LENGTH", "HTTP_X_AMZ_DECODED_CONTENT_LENGTH"))
        large = declared > LARGE_BODY or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "")
        with self._uploads if large else contextlib.nullcontext(), self.on_write(environ):
            # moto's answer is complete here (nothing is sent before the server iterates it), so the write is on
            # disk before a byte of the answer leaves.
            response = moto(environ, start_response)
            try:
                return list(response)
            finally:
                getattr(response, "close", lambda: None)()

    def _put_events(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        response = json.dumps(self.router.put_events(body.get("Entries", []))).encode()
        start_response(
            "200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(response)))]
        )
        return [response]

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        # A port in use: werkzeug says so ("Port N is in use by another program") and exits.
        self._server = make_server(host, port, self, threaded=True, request_handler=QuietRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="vidmod-gateway", daemon=True)
        self._thread.start()
        return f"http://{host}:{self._server.server_port}"

    def stop(self, timeout: float = 30) -> None:
        """Stop accepting requests, then wait (up to ``timeout`` seconds) for those under way to answer."""
        if self._server is not None:
            self._server.shutdown()
            deadline = time.monotonic() + timeout
            with self._idle:
                while self._under_way and time.monotonic() < deadline:
                    self._idle.wait(0.1)
            with contextlib.suppress(OSError):
                self._server.server_close()
