"""Local ``sagemaker-a2i-runtime``: human loops with A2I's validation, output layout and status events.

Loops persist as JSON files under ``<state dir>/a2i/`` (they survive a restart). Completing a loop writes
``output.json`` exactly where and how A2I writes it, then emits the "SageMaker A2I HumanLoop Status Change"
event through the local endpoint so the workflow resumes.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote

from vidmod.local.clients import local_client

NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
MAX_INPUT = 3_145_728


class A2IError(Exception):
    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class HumanLoopRuntime:
    def __init__(
        self,
        endpoint_url: str,
        state_dir: Path,
        flow_definitions: dict[str, str],
        region: str = "us-east-1",
        account: str = "123456789012",
    ):
        self.endpoint_url, self.region, self.account = endpoint_url, region, account
        self.flow_definitions = flow_definitions
        self.directory = Path(state_dir) / "a2i"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ storage
    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def _load(self, name: str) -> dict:
        path = self._path(name)
        if not NAME.match(name or "") or not path.exists():
            raise A2IError("ResourceNotFoundException", f"Human loop {name} not found", 404)
        return json.loads(path.read_text(encoding="utf-8"))

    def _save(self, loop: dict) -> None:
        path = self._path(loop["HumanLoopName"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(loop), encoding="utf-8")
        tmp.replace(path)

    def _client(self, service: str):
        return local_client(service, self.endpoint_url, self.region)

    # ------------------------------------------------------------------ API
    def start_human_loop(self, name: str, flow_definition_arn: str, input_content: str) -> str:
        if not isinstance(name, str) or not 1 <= len(name) <= 63 or not NAME.match(name):
            raise A2IError(
                "ValidationException",
                "HumanLoopName must be 1-63 lowercase letters, digits and hyphens (^[a-z0-9](-*[a-z0-9])*$)",
                400,
            )
        if flow_definition_arn not in self.flow_definitions:
            raise A2IError("ValidationException", f"Flow definition {flow_definition_arn} does not exist", 400)
        if not isinstance(input_content, str) or len(input_content) > MAX_INPUT:
            raise A2IError(
                "ValidationException", f"InputContent must be a string of at most {MAX_INPUT} characters", 400
            )
        try:
            json.loads(input_content)
        except json.JSONDecodeError as error:
            raise A2IError("ValidationException", f"InputContent is not valid JSON: {error}", 400) from error
        with self._lock:
            if self._path(name).exists():
                existing = self._load(name)
                if existing["InputContent"] == input_content and existing["FlowDefinitionArn"] == flow_definition_arn:
                    return existing["HumanLoopArn"]
                raise A2IError("ConflictException", f"Human loop {name} already exists with different input", 409)
            loop = {
                "HumanLoopName": name,
                "FlowDefinitionArn": flow_definition_arn,
                "InputContent": input_content,
                "HumanLoopArn": f"arn:aws:sagemaker:{self.region}:{self.account}:human-loop/{name}",
                "HumanLoopStatus": "InProgress",
                "CreationTime": _iso(datetime.now(UTC)),
            }
            self._save(loop)
            return loop["HumanLoopArn"]

    def describe(self, name: str) -> dict:
        loop = self._load(name)
        described = {
            k: loop[k]
            for k in ("CreationTime", "HumanLoopStatus", "HumanLoopName", "HumanLoopArn", "FlowDefinitionArn")
        }
        for key in ("FailureReason", "FailureCode"):
            if loop.get(key):
                described[key] = loop[key]
        if loop.get("OutputS3Uri"):
            described["HumanLoopOutput"] = {"OutputS3Uri": loop["OutputS3Uri"]}
        return described

    def input_content(self, name: str) -> dict:
        return json.loads(self._load(name)["InputContent"])

    def loops(self) -> list[dict]:
        loops = [json.loads(p.read_text(encoding="utf-8")) for p in self.directory.glob("*.json")]
        return sorted(loops, key=lambda loop: loop["CreationTime"])

    def list_open(self) -> list[dict]:
        """Loops waiting for a reviewer, oldest first."""
        return [
            self.describe(loop["HumanLoopName"]) for loop in self.loops() if loop["HumanLoopStatus"] == "InProgress"
        ]

    def list_loops(self, flow_definition_arn: str) -> list[dict]:
        return [
            {
                "HumanLoopName": loop["HumanLoopName"],
                "HumanLoopStatus": loop["HumanLoopStatus"],
                "CreationTime": loop["CreationTime"],
                "FlowDefinitionArn": loop["FlowDefinitionArn"],
                **({"FailureReason": loop["FailureReason"]} if loop.get("FailureReason") else {}),
            }
            for loop in self.loops()
            if loop["FlowDefinitionArn"] == flow_definition_arn
        ]

    def submit(self, name: str, answer_content: dict, worker_id: str, acceptance_time: datetime) -> str:
        """A reviewer's answer: written once, in A2I's output format and path; then the status event."""
        with self._lock:
            loop = self._load(name)
            if loop["HumanLoopStatus"] != "InProgress":
                raise A2IError(
                    "ConflictException",
                    f"Human loop {name} is {loop['HumanLoopStatus']}: it cannot be submitted again",
                    409,
                )
            now = datetime.now(UTC)
            prefix = self.flow_definitions[loop["FlowDefinitionArn"]].rstrip("/")
            flow_name = loop["FlowDefinitionArn"].rsplit("/", 1)[-1]
            uri = f"{prefix}/{flow_name}/{now:%Y/%m/%d/%H/%M/%S}/{name}/output.json"
            output = {
                "flowDefinitionArn": loop["FlowDefinitionArn"],
                "humanLoopName": name,
                "inputContent": json.loads(loop["InputContent"]),
                "humanAnswers": [
                    {
                        "acceptanceTime": _iso(acceptance_time),
                        "submissionTime": _iso(now),
                        "timeSpentInSeconds": round(max((now - acceptance_time).total_seconds(), 0.0), 3),
                        "workerId": worker_id,
                        "workerMetadata": {
                            "identityData": {"identityProviderType": "Oidc", "issuer": "vidmod-local", "sub": worker_id}
                        },
                        "answerContent": answer_content,
                    }
                ],
            }
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            self._client("s3").put_object(
                Bucket=bucket, Key=key, Body=json.dumps(output).encode(), ContentType="application/json"
            )
            loop.update(HumanLoopStatus="Completed", OutputS3Uri=uri)
            self._save(loop)
        self._emit(loop)
        return uri

    def stop(self, name: str) -> None:
        with self._lock:
            loop = self._load(name)
            if loop["HumanLoopStatus"] != "InProgress":
                return
            loop["HumanLoopStatus"] = "Stopped"
            self._save(loop)
        self._emit(loop)

    def fail(self, name: str, code: str, reason: str) -> None:
        with self._lock:
            loop = self._load(name)
            loop.update(HumanLoopStatus="Failed", FailureCode=code, FailureReason=reason)
            self._save(loop)
        self._emit(loop)

    def delete(self, name: str) -> None:
        with self._lock:
            self._load(name)
            self._path(name).unlink()

    def _emit(self, loop: dict) -> None:
        detail = {
            "creationTime": loop["CreationTime"],
            "failureCode": loop.get("FailureCode"),
            "failureReason": loop.get("FailureReason"),
            "flowDefinitionArn": loop["FlowDefinitionArn"],
            "humanLoopArn": loop["HumanLoopArn"],
            "humanLoopName": loop["HumanLoopName"],
            "humanLoopOutput": {"outputS3Uri": loop.get("OutputS3Uri", "")},
            "humanLoopStatus": loop["HumanLoopStatus"],
        }
        self._client("events").put_events(
            Entries=[
                {
                    "Source": "aws.sagemaker",
                    "DetailType": "SageMaker A2I HumanLoop Status Change",
                    "Detail": json.dumps(detail),
                    "Resources": [loop["HumanLoopArn"]],
                }
            ]
        )

    # ------------------------------------------------------------------ rest-json wire format
    def wsgi_app(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            try:
                request = json.loads(body or b"{}")
            except ValueError as error:
                raise A2IError("ValidationException", f"request body is not JSON: {error}", 400) from error
            status, payload = self._route(method, path, request, parse_qs(environ.get("QUERY_STRING", "")))
            headers = [("Content-Type", "application/json")]
        except A2IError as error:
            status, payload = error.status, {"message": error.message}
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error.code)]
        data = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}.get(status, "Error")
        start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(data)))])
        return [data]

    def _route(self, method: str, path: str, body: dict, query: dict) -> tuple[int, dict]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "POST" and parts == ["human-loops"]:
            arn = self.start_human_loop(
                body.get("HumanLoopName", ""),
                body.get("FlowDefinitionArn", ""),
                (body.get("HumanLoopInput") or {}).get("InputContent", ""),
            )
            return 200, {"HumanLoopArn": arn}
        if method == "POST" and parts == ["human-loops", "stop"]:
            self.stop(body.get("HumanLoopName", ""))
            return 200, {}
        if method == "GET" and parts == ["human-loops"]:
            arn = (query.get("FlowDefinitionArn") or [""])[0]
            return 200, {"HumanLoopSummaries": self.list_loops(arn)}
        if len(parts) == 2 and parts[0] == "human-loops":
            if method == "GET":
                return 200, self.describe(parts[1])
            if method == "DELETE":
                self.delete(parts[1])
                return 200, {}
        raise A2IError("ValidationException", f"{method} {path} is not an A2I runtime operation", 400)

    def close(self) -> None:
        pass
