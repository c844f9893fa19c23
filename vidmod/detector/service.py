"""StartContentModeration / GetContentModeration on the local endpoint, answering like Rekognition.

Jobs run one at a time on a worker thread (two cores: analysis already uses both), persist as JSON under
``<state dir>/rekognition/`` and are re-queued after a restart if they were still in progress.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import tempfile
import threading
import uuid
from pathlib import Path

from botocore.exceptions import ClientError

from vidmod.detector.analyze import NotAVideo, analyze
from vidmod.detector.models import MODEL_VERSION, UNCOVERED_CATEGORIES, Detector
from vidmod.local.clients import local_client


class RekognitionError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _merge_segments(detections: list[dict], sample_millis: int) -> list[dict]:
    """AggregateBy SEGMENTS: consecutive samples of one label become one detection with start/end."""
    segments: list[dict] = []
    open_by_label: dict[tuple, dict] = {}
    for detection in sorted(detections, key=lambda d: d["Timestamp"]):
        label = detection["ModerationLabel"]
        key = (label["Name"], label["ParentName"])
        current = open_by_label.get(key)
        if current and detection["Timestamp"] - current["EndTimestampMillis"] <= sample_millis:
            current["EndTimestampMillis"] = detection["Timestamp"]
            current["ModerationLabel"]["Confidence"] = max(
                current["ModerationLabel"]["Confidence"], label["Confidence"]
            )
            current["DurationMillis"] = current["EndTimestampMillis"] - current["StartTimestampMillis"]
            continue
        current = {
            "Timestamp": detection["Timestamp"],
            "ModerationLabel": dict(label),
            "StartTimestampMillis": detection["Timestamp"],
            "EndTimestampMillis": detection["Timestamp"],
            "DurationMillis": 0,
        }
        open_by_label[key] = current
        segments.append(current)
    return segments


class ContentModerationService:
    def __init__(
        self,
        endpoint_url: str,
        state_dir: Path,
        detector: Detector | None = None,
        max_video_bytes: int = 10 * 1024**3,
        fps: float | None = None,
    ):
        self.endpoint_url, self.detector, self.max_video_bytes = endpoint_url, detector, max_video_bytes
        self.fps = fps or float(os.environ.get("VIDMOD_DETECTOR_FPS", "1"))
        self.directory = Path(state_dir) / "rekognition"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._queue: queue.Queue = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self.jobs: dict[str, dict] = {}
        for path in self.directory.glob("*.json"):
            job = json.loads(path.read_text(encoding="utf-8"))
            self.jobs[job["JobId"]] = job
            if job["JobStatus"] == "IN_PROGRESS":
                self._enqueue(job["JobId"])
        self._worker = threading.Thread(target=self._work, name="vidmod-detector", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ jobs
    def _save(self, job: dict) -> None:
        path = self.directory / f"{job['JobId']}.json"
        path.with_suffix(".tmp").write_text(json.dumps(job), encoding="utf-8")
        path.with_suffix(".tmp").replace(path)

    def _enqueue(self, job_id: str) -> None:
        self._idle.clear()
        self._queue.put(job_id)

    def _s3(self):
        return local_client("s3", self.endpoint_url, os.environ.get("AWS_REGION", "us-east-1"))

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            job = self.jobs[job_id]
            try:
                self._run(job)
            except NotAVideo as error:
                job.update(JobStatus="FAILED", StatusMessage=str(error))
            except Exception as error:  # a job must end FAILED with a message, never hang IN_PROGRESS
                job.update(JobStatus="FAILED", StatusMessage=f"Analysis failed: {type(error).__name__}: {error}")
            with self._lock:
                self._save(job)
            if self._queue.empty():
                self._idle.set()

    def _run(self, job: dict) -> None:
        video = job["Video"]["S3Object"]
        kwargs = {"Bucket": video["Bucket"], "Key": video["Name"]} | (
            {"VersionId": video["Version"]} if video.get("Version") else {}
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(video["Name"]).name
            with path.open("wb") as handle:
                body = self._s3().get_object(**kwargs)["Body"]
                for chunk in iter(lambda: body.read(1024 * 1024), b""):
                    handle.write(chunk)

            def progress(done: int, total: int) -> None:
                job["Progress"] = {"framesAnalysed": done, "framesExpected": total}

            result = analyze(path, self.fps, self.detector, progress)
        minimum = float(job.get("MinConfidence", 50))
        job.update(
            JobStatus="SUCCEEDED",
            VideoMetadata=result.metadata,
            Detections=[d for d in result.detections if d["ModerationLabel"]["Confidence"] >= minimum],
            StatusMessage="Local detector. Not covered: " + ", ".join(UNCOVERED_CATEGORIES),
        )

    def wait_idle(self, timeout: float = 60) -> bool:
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)

    # ------------------------------------------------------------------ API
    def handle(self, operation: str, params: dict) -> dict:
        if operation == "StartContentModeration":
            return self.start(params)
        if operation == "GetContentModeration":
            return self.get(params)
        raise RekognitionError("InvalidParameterException", f"{operation} is not supported by the local detector")

    def start(self, params: dict) -> dict:
        video = (params.get("Video") or {}).get("S3Object") or {}
        if not video.get("Bucket") or not video.get("Name"):
            raise RekognitionError("InvalidParameterException", "Video.S3Object.Bucket and Name are required")
        minimum = params.get("MinConfidence", 50)
        if not isinstance(minimum, int | float) or not 0 <= minimum <= 100:
            raise RekognitionError("InvalidParameterException", "MinConfidence must be between 0 and 100")
        token = params.get("ClientRequestToken")
        with self._lock:
            for job in self.jobs.values():
                if token and job.get("ClientRequestToken") == token:
                    if job["Video"] != params["Video"]:
                        raise RekognitionError(
                            "IdempotentParameterMismatchException", "ClientRequestToken was used with a different video"
                        )
                    return {"JobId": job["JobId"]}
            kwargs = {"Bucket": video["Bucket"], "Key": video["Name"]} | (
                {"VersionId": video["Version"]} if video.get("Version") else {}
            )
            try:
                head = self._s3().head_object(**kwargs)
            except ClientError as error:
                raise RekognitionError(
                    "InvalidS3ObjectException",
                    f"Unable to get object metadata from S3. Check object key, region and/or access "
                    f"permissions. (s3://{video['Bucket']}/{video['Name']})",
                ) from error
            if head["ContentLength"] > self.max_video_bytes:
                raise RekognitionError(
                    "VideoTooLargeException",
                    f"Video is {head['ContentLength']} bytes; the limit is {self.max_video_bytes}",
                )
            job = {
                "JobId": uuid.uuid4().hex,
                "JobStatus": "IN_PROGRESS",
                "Video": params["Video"],
                "MinConfidence": minimum,
                "ClientRequestToken": token,
                "JobTag": params.get("JobTag"),
            }
            self.jobs[job["JobId"]] = job
            self._save(job)
        self._enqueue(job["JobId"])
        return {"JobId": job["JobId"]}

    def get(self, params: dict) -> dict:
        job = self.jobs.get(params.get("JobId", ""))
        if job is None:
            raise RekognitionError("ResourceNotFoundException", f"Job {params.get('JobId')} does not exist")
        sort_by, aggregate = params.get("SortBy", "TIMESTAMP"), params.get("AggregateBy", "TIMESTAMPS")
        if sort_by not in {"NAME", "TIMESTAMP"} or aggregate not in {"TIMESTAMPS", "SEGMENTS"}:
            raise RekognitionError(
                "InvalidParameterException", "SortBy is NAME|TIMESTAMP, AggregateBy TIMESTAMPS|SEGMENTS"
            )
        size = int(params.get("MaxResults", 1000))
        if not 1 <= size <= 1000:
            raise RekognitionError("InvalidParameterException", "MaxResults must be between 1 and 1000")
        offset = 0
        if params.get("NextToken"):
            try:
                token_job, offset_text = base64.urlsafe_b64decode(params["NextToken"]).decode().split(":")
                offset = int(offset_text)
                if token_job != job["JobId"] or not 0 <= offset <= len(job.get("Detections", [])):
                    raise ValueError
            except (ValueError, UnicodeDecodeError) as error:
                raise RekognitionError("InvalidPaginationTokenException", "Invalid pagination token") from error
        response = {
            "JobStatus": job["JobStatus"],
            "JobId": job["JobId"],
            "Video": job["Video"],
            "ModerationModelVersion": MODEL_VERSION,
            "GetRequestMetadata": {"SortBy": sort_by, "AggregateBy": aggregate},
        }
        if job.get("JobTag"):
            response["JobTag"] = job["JobTag"]
        if job.get("StatusMessage"):
            response["StatusMessage"] = job["StatusMessage"]
        if job["JobStatus"] != "SUCCEEDED":
            return response
        detections = job["Detections"]
        if aggregate == "SEGMENTS":
            detections = _merge_segments(detections, int(1000 / self.fps))
        key = (
            (lambda d: (d["ModerationLabel"]["Name"], d["Timestamp"]))
            if sort_by == "NAME"
            else (lambda d: (d["Timestamp"], d["ModerationLabel"]["Name"]))
        )
        detections = sorted(detections, key=key)
        response["VideoMetadata"] = job["VideoMetadata"]
        response["ModerationLabels"] = detections[offset : offset + size]
        if offset + size < len(detections):
            response["NextToken"] = base64.urlsafe_b64encode(f"{job['JobId']}:{offset + size}".encode()).decode()
        return response

    def wsgi_app(self, environ, start_response):
        operation = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[-1]
        try:
            params = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
            status, body = "200 OK", self.handle(operation, params)
        except RekognitionError as error:
            status, body = "400 Bad Request", {"__type": error.code, "message": error.message}
        except json.JSONDecodeError:
            status, body = "400 Bad Request", {"__type": "InvalidParameterException", "message": "invalid JSON"}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data)))])
        return [data]
