"""The local endpoint answers this machine's AWS clients, never a web page open in the user's browser.

The stack keeps task tokens and decision records behind that endpoint: a page that could call it could
approve any video. The page here is real (served from another local port, run by Debian chromium).
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser import launch_chromium
from playwright.sync_api import sync_playwright

from vidmod.emulator.clients import local_client
from vidmod.emulator.event_router import EventRouter
from vidmod.emulator.gateway import Gateway


@pytest.fixture
def endpoint():
    gateway = Gateway(EventRouter(lambda function, event: None))
    url = gateway.start()
    s3 = local_client("s3", url)
    s3.create_bucket(Bucket="private")
    s3.put_object(Bucket="private", Key="secret.txt", Body=b"task token AAAA")
    yield url
    gateway.stop()


def request(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_the_aws_cli_and_sdks_are_served(endpoint):
    s3 = local_client("s3", endpoint)
    assert s3.get_object(Bucket="private", Key="secret.txt")["Body"].read() == b"task token AAAA"
    ddb = local_client("dynamodb", endpoint)
    ddb.create_table(
        TableName="gateway-check",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert "gateway-check" in ddb.list_tables()["TableNames"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "rebound.evil.example"},  # DNS rebinding: the page's own name, now pointing at 127.0.0.1
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Sec-Fetch-Site": "cross-site"},  # e.g. <img src> or <video src>: no Origin, but marked
    ],
)
def test_what_a_web_page_can_send_is_refused_with_a_reason(endpoint, headers):
    status, body = request(endpoint, "GET", "/private/secret.txt", headers)
    assert status == 403 and b"task token" not in body
    assert b"AccessDeniedException" in body and (b"not this machine" in body or b"web pages are refused" in body)


class HostilePage(BaseHTTPRequestHandler):
    """Serves the page a user might have open in another tab; it tries the local endpoint in three ways."""

    endpoint = ""

    def do_GET(self):
        body = f"""<!doctype html><title>cat pictures</title><script>
        window.results = {{}};
        async function attempt(name, run) {{
          try {{ window.results[name] = await run(); }} catch (error) {{ window.results[name] = "blocked"; }}
        }}
        Promise.all([
          attempt("read", () => fetch("{self.endpoint}/private/secret.txt").then(r => r.text())),
          attempt("api", () => fetch("{self.endpoint}/", {{method: "POST",
              headers: {{"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"}},
              body: "{{}}"}}).then(r => r.text())),
          attempt("blind", () => fetch("{self.endpoint}/private/planted.txt", {{method: "PUT", mode: "no-cors",
              body: "planted"}}).then(() => "sent")),
        ]).then(() => {{ window.done = true; }});
        </script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.browser
def test_a_page_in_the_browser_can_neither_read_nor_change_anything(endpoint):
    HostilePage.endpoint = endpoint
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostilePage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.wait_for_function("window.done === true", timeout=20_000)
            results = page.evaluate("window.results")
            browser.close()
    finally:
        server.shutdown()
    assert results["read"] == "blocked" and results["api"] == "blocked"
    keys = [o["Key"] for o in local_client("s3", endpoint).list_objects_v2(Bucket="private").get("Contents", [])]
    assert keys == ["secret.txt"]  # the blind write never landed
