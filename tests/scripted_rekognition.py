"""A scripted Rekognition content-moderation endpoint, for workflow tests that must force a path.

Scripts are keyed by the S3 object key the workflow asks about, so one stack can serve every scenario:
throttling on start, N polls IN_PROGRESS, FAILED with a message, or SUCCEEDED with any label list (paged
with NextToken exactly as GetContentModeration pages). Same JSON 1.1 wire format as the real service.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid
from dataclasses import dataclass, field


@dataclass
class Script:
    labels: list[dict] = field(default_factory=list)
    status: str = "SUCCEEDED"
    status_message: str = ""
    in_progress_polls: int = 1
    throttle_starts: int = 0
    model_version: str = "7.0"
    duration_millis: int = 10_000


def detection(name: str, parent: str, level: int, confidence: float, timestamp: int) -> dict:
    return {
        "Timestamp": timestamp,
        "ModerationLabel": {"Name": name, "ParentName": parent, "TaxonomyLevel": level, "Confidence": confidence},
    }


class ScriptedRekognition:
    """Serves scripted keys; anything else (unscripted video or job) goes to ``fallback`` if given."""

    def __init__(self, fallback=None):
        self.fallback = fallback
        self.scripts: dict[str, Script] = {}
        self.jobs: dict[str, dict] = {}
        self.calls: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def script(self, key: str, script: Script) -> None:
        self.scripts[key] = script

    def _start(self, params: dict) -> tuple[int, dict]:
        key = params["Video"]["S3Object"]["Name"]
        script = self.scripts.get(key, Script())
        if script.throttle_starts > 0:
            script.throttle_starts -= 1
            return 400, {"__type": "ThrottlingException", "message": "Rate exceeded (scripted)"}
        token = params.get("ClientRequestToken") or uuid.uuid4().hex
        for job_id, job in self.jobs.items():
            if job["token"] == token:
                return 200, {"JobId": job_id}
        job_id = uuid.uuid4().hex
        self.jobs[job_id] = {"token": token, "script": script, "polls": 0, "params": params}
        return 200, {"JobId": job_id}

    def _get(self, params: dict) -> tuple[int, dict]:
        job = self.jobs.get(params["JobId"])
        if job is None:
            return 400, {"__type": "ResourceNotFoundException", "message": "no such job"}
        script: Script = job["script"]
        job["polls"] += 1
        if job["polls"] <= script.in_progress_polls:
            return 200, {"JobStatus": "IN_PROGRESS", "JobId": params["JobId"]}
        response = {
            "JobStatus": script.status,
            "JobId": params["JobId"],
            "ModerationModelVersion": script.model_version,
            "VideoMetadata": {
                "Codec": "h264",
                "DurationMillis": script.duration_millis,
                "Format": "QuickTime / MOV",
                "FrameRate": 30.0,
                "FrameHeight": 720,
                "FrameWidth": 1280,
                "ColorRange": "LIMITED",
            },
        }
        if script.status == "FAILED":
            return 200, response | {"StatusMessage": script.status_message}
        offset = int(base64.b64decode(params["NextToken"]).decode()) if params.get("NextToken") else 0
        size = int(params.get("MaxResults", 1000))
        response["ModerationLabels"] = script.labels[offset : offset + size]
        if offset + size < len(script.labels):
            response["NextToken"] = base64.b64encode(str(offset + size).encode()).decode()
        if script.status_message:
            response["StatusMessage"] = script.status_message
        return 200, response

    def _scripted(self, operation: str, params: dict) -> bool:
        if operation == "StartContentModeration":
            return params.get("Video", {}).get("S3Object", {}).get("Name") in self.scripts
        return params.get("JobId") in self.jobs

    def __call__(self, environ, start_response):
        operation = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[-1]
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        params = json.loads(raw or b"{}")
        if self.fallback is not None and not self._scripted(operation, params):
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.fallback(environ, start_response)
        with self._lock:
            self.calls.append((operation, params))
            handler = {"StartContentModeration": self._start, "GetContentModeration": self._get}.get(operation)
            status, body = (
                handler(params)
                if handler
                else (400, {"__type": "InvalidParameterException", "message": f"{operation} is not scripted"})
            )
        data = json.dumps(body).encode()
        start_response(
            "200 OK" if status == 200 else "400 Bad Request",
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data)))],
        )
        return [data]
