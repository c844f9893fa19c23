"""StartContentModeration / GetContentModeration on the local endpoint, answering like Rekognition.

Jobs run one at a time on a worker thread (two cores: analysis already uses both), persist as JSON under
``<state dir>/rekognition/`` and are re-queued after a restart if they were still in progress. Parameters are
checked like Rekognition checks them, so a bad call gets a 400 with Rekognition's error name, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import queue
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError

from vidmod.detector.analyze import MAX_DURATION_MILLIS, NotAVideo, analyze
from vidmod.detector.models import (
    Detector,
    NudityDetector,
    coverage,
    detector_from_env,
    reported_version,
)
from vidmod.emulator.clients import local_client
from vidmod.emulator.journal import atomic_write

log = logging.getLogger(__name__)
_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")  # JobId and ClientRequestToken
_JOB_TAG = re.compile(r"^[a-zA-Z0-9_.\-:+=/]{1,1024}$")
_IDEMPOTENT = ("Video", "MinConfidence", "JobTag", "NotificationChannel")
PROGRESS_INTERVAL = 0.5  # seconds between on_progress calls for one job


def sampling_rate(text: str) -> float:
    """VIDMOD_DETECTOR_FPS: frames per second to analyse, refused at start rather than failing every job."""
    try:
        fps = float(text)
    except ValueError:
        fps = 0.0
    if not 0 < fps <= 60:
        raise ValueError(f"VIDMOD_DETECTOR_FPS={text!r}: give the frames per second to analyse, above 0 and at most 60")
    return fps


def coverage_message(detector: object) -> str:
    """What the job's labels can and cannot tell, label by label: ``Local detector. Checks: <labels>. Not
    checked: <category>: <labels>; <category> (every label); …``."""
    split = coverage(detector)
    checks = [label for entry in split for label in entry.checked]
    missing = [
        f"{entry.category} (every label)" if not entry.checked else f"{entry.category}: {', '.join(entry.notChecked)}"
        for entry in split
        if entry.notChecked
    ]
    return f"Local detector. Checks: {', '.join(checks) or 'nothing'}. Not checked: {'; '.join(missing) or 'none'}."


class RekognitionError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _invalid(message: str) -> RekognitionError:
    return RekognitionError("InvalidParameterException", message)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _merge_segments(detections: list[dict], sample_millis: int, duration_millis: int = 0) -> list[dict]:
    """AggregateBy SEGMENTS: samples of one label at most ~1.5 intervals apart become one detection.

    Samples land on frame times (1001 ms apart at 29.97 fps), so the tolerance is 1.5 intervals; each sample
    stands for one interval of video, so a one-sample segment lasts one interval, not zero.
    """
    segments: list[dict] = []
    open_by_label: dict[tuple, dict] = {}
    for detection in sorted(detections, key=lambda d: d["Timestamp"]):
        label = detection["ModerationLabel"]
        key = (label["Name"], label["ParentName"])
        timestamp = detection["Timestamp"]
        end = timestamp + sample_millis
        if duration_millis:
            end = max(timestamp, min(end, duration_millis))
        current = open_by_label.get(key)
        if current and timestamp - current["LastSample"] <= 1.5 * sample_millis:
            current["LastSample"] = timestamp
            current["EndTimestampMillis"] = max(current["EndTimestampMillis"], end)
            current["ModerationLabel"]["Confidence"] = max(
                current["ModerationLabel"]["Confidence"], label["Confidence"]
            )
            continue
        current = {
            "Timestamp": timestamp,
            "ModerationLabel": dict(label),
            "StartTimestampMillis": timestamp,
            "EndTimestampMillis": end,
            "LastSample": timestamp,
        }
        open_by_label[key] = current
        segments.append(current)
    for segment in segments:
        del segment["LastSample"]
        segment["DurationMillis"] = segment["EndTimestampMillis"] - segment["StartTimestampMillis"]
    return segments


def peak_concurrency(jobs: list[dict]) -> int:
    """The most jobs in progress at one moment (what Rekognition's concurrent-job quota counts), from job records'
    StartedAt / CompletedAt; a job not completed yet counts until now."""
    moments = sorted([(j["StartedAt"], 1) for j in jobs] + [(j.get("CompletedAt", math.inf), -1) for j in jobs])
    running = most = 0
    for _, change in moments:
        running += change
        most = max(most, running)
    return most


class ContentModerationService:
    """Rekognition's two content-moderation calls over a local detector.

    ``detector``: any ``Detector``; default the ONNX model named by ``VIDMOD_DETECTOR_MODEL`` /
    ``VIDMOD_DETECTOR_LABELS`` if set, else nudenet + open-nsfw (loaded once, on the first job).
    ``on_progress`` is called from the worker thread at most every ``PROGRESS_INTERVAL`` seconds per job and
    once when the job ends, with ``{"JobId", "Video", "framesDone", "framesExpected", "durationMillis",
    "JobStatus", "StatusMessage"}``.
    """

    def __init__(
        self,
        endpoint_url: str,
        state_dir: Path,
        detector: Detector | None = None,
        max_video_bytes: int = 10 * 1024**3,
        fps: float | None = None,
        on_progress: Callable[[dict], None] | None = None,
        max_duration_millis: int = MAX_DURATION_MILLIS,
        paused: bool = False,
    ):
        """``paused``: jobs (those a stop or a crash interrupted, too) wait for ``resume`` — the stack resumes
        once the videos they read are back in S3."""
        self.endpoint_url, self.max_video_bytes = endpoint_url, max_video_bytes
        self.detector: Detector = detector or detector_from_env() or NudityDetector()
        self.fps = fps or sampling_rate(os.environ.get("VIDMOD_DETECTOR_FPS", "1"))
        self.on_progress, self.max_duration_millis = on_progress, max_duration_millis
        self.directory = Path(state_dir) / "rekognition"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._queue: queue.Queue = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self.jobs: dict[str, dict] = {}
        self._ready = threading.Event()
        if not paused:
            self._ready.set()
        for path in self.directory.glob("*.json"):
            job = json.loads(path.read_text(encoding="utf-8"))
            self.jobs[job["JobId"]] = job
            if job["JobStatus"] == "IN_PROGRESS":
                self._enqueue(job["JobId"])
        self._worker = threading.Thread(target=self._work, name="vidmod-detector", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ jobs
    def _save(self, job: dict) -> None:
        atomic_write(self.directory / f"{job['JobId']}.json", json.dumps(job).encode())  # on disk before we answer

    def _enqueue(self, job_id: str) -> None:
        self._idle.clear()
        self._queue.put(job_id)

    def _s3(self):
        return local_client("s3", self.endpoint_url, os.environ.get("AWS_REGION", "us-east-1"))

    def resume(self) -> None:
        self._ready.set()

    def _work(self) -> None:
        self._ready.wait()
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            job = dict(self.jobs[job_id])  # answered as IN_PROGRESS until the result is on disk (below)
            try:
                self._run(job)
            except NotAVideo as error:
                job.update(JobStatus="FAILED", StatusMessage=str(error))
                if error.metadata:
                    job["VideoMetadata"] = error.metadata
            except Exception as error:  # a job must end FAILED with a message, never hang IN_PROGRESS
                job.update(JobStatus="FAILED", StatusMessage=f"Analysis failed: {type(error).__name__}: {error}")
            job["CompletedAt"] = time.time()
            try:
                with self._lock:
                    self._save(job)
            except OSError:  # a full or read-only state dir: the job is still answered from memory
                log.exception("could not save job %s", job_id)
            self._notify(job)
            self.jobs[job_id] = job
            if self._queue.empty():
                self._idle.set()

    def _notify(self, job: dict) -> None:
        """Tell ``on_progress`` how far the job is; a broken callback must not break the job."""
        if self.on_progress is None:
            return
        progress = job.get("Progress", {})
        try:
            self.on_progress(
                {
                    "JobId": job["JobId"],
                    "Video": job["Video"],
                    "framesDone": progress.get("framesAnalysed", 0),
                    "framesExpected": progress.get("framesExpected", 0),
                    "durationMillis": job.get("VideoMetadata", {}).get(
                        "DurationMillis", progress.get("durationMillis", 0)
                    ),
                    "JobStatus": job["JobStatus"],
                    "StatusMessage": job.get("StatusMessage", ""),  # at the end: what was not covered, or why not
                }
            )
        except Exception:
            log.exception("on_progress callback failed for job %s", job["JobId"])

    def _run(self, job: dict) -> None:
        video = job["Video"]["S3Object"]
        kwargs = {"Bucket": video["Bucket"], "Key": video["Name"]} | (
            {"VersionId": video["Version"]} if video.get("Version") else {}
        )
        last_report = [0.0]

        def progress(done: int, total: int, duration_millis: int) -> None:
            job["Progress"] = {"framesAnalysed": done, "framesExpected": total, "durationMillis": duration_millis}
            if time.monotonic() - last_report[0] >= PROGRESS_INTERVAL:
                last_report[0] = time.monotonic()
                self._notify(job)

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(video["Name"]).name
            with path.open("wb") as handle:
                body = self._s3().get_object(**kwargs)["Body"]
                for chunk in iter(lambda: body.read(1024 * 1024), b""):
                    handle.write(chunk)
            result = analyze(path, job.get("SamplingFps", self.fps), self.detector, progress, self.max_duration_millis)
        minimum = float(job.get("MinConfidence", 50))
        job.update(
            JobStatus="SUCCEEDED",
            VideoMetadata=result.metadata,
            Detections=[d for d in result.detections if d["ModerationLabel"]["Confidence"] >= minimum],
            ModelVersion=reported_version(self.detector),
            StatusMessage=coverage_message(self.detector),
        )

    def wait_idle(self, timeout: float = 60) -> bool:
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)

    # ------------------------------------------------------------------ API
    def handle(self, operation: str, params: dict) -> dict:
        if not isinstance(params, dict):
            raise _invalid("The request body must be a JSON object")
        if operation == "StartContentModeration":
            return self.start(params)
        if operation == "GetContentModeration":
            return self.get(params)
        raise _invalid(f"{operation} is not supported by the local detector")

    @staticmethod
    def _check_start(params: dict) -> None:
        """Rekognition's input constraints for StartContentModeration."""
        video = params.get("Video")
        s3 = video.get("S3Object") if isinstance(video, dict) else None
        if not isinstance(s3, dict) or not all(isinstance(s3.get(k), str) and s3[k] for k in ("Bucket", "Name")):
            raise _invalid("Video.S3Object.Bucket and Video.S3Object.Name are required strings")
        if "Version" in s3 and not (isinstance(s3["Version"], str) and s3["Version"]):
            raise _invalid("Video.S3Object.Version must be a non-empty string")
        if "MinConfidence" in params and not (
            _is_number(params["MinConfidence"]) and 0 <= params["MinConfidence"] <= 100
        ):
            raise _invalid("MinConfidence must be a number between 0 and 100")
        token = params.get("ClientRequestToken")
        if token is not None and not (isinstance(token, str) and _ID.fullmatch(token)):
            raise _invalid("ClientRequestToken must be 1-64 characters matching ^[a-zA-Z0-9-_]+$")
        tag = params.get("JobTag")
        if tag is not None and not (isinstance(tag, str) and _JOB_TAG.fullmatch(tag)):
            raise _invalid("JobTag must be 1-1024 characters matching [a-zA-Z0-9_.\\-:+=/]+")
        channel = params.get("NotificationChannel")
        if channel is not None and not (
            isinstance(channel, dict) and all(isinstance(channel.get(k), str) for k in ("SNSTopicArn", "RoleArn"))
        ):
            raise _invalid("NotificationChannel needs SNSTopicArn and RoleArn")

    def start(self, params: dict) -> dict:
        self._check_start(params)
        video = params["Video"]["S3Object"]
        request = {key: params.get(key) for key in _IDEMPOTENT}
        token = params.get("ClientRequestToken")
        with self._lock:
            for job in self.jobs.values():
                if token and job.get("ClientRequestToken") == token:
                    if job.get("Request", {key: job.get(key) for key in _IDEMPOTENT}) != request:
                        raise RekognitionError(
                            "IdempotentParameterMismatchException",
                            "ClientRequestToken was already used with different parameters "
                            "(Video, MinConfidence, JobTag or NotificationChannel)",
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
                "MinConfidence": params.get("MinConfidence", 50),
                "ClientRequestToken": token,
                "JobTag": params.get("JobTag"),
                "Request": request,
                "SamplingFps": self.fps,
                # From here until CompletedAt the job counts against the account's concurrent-job quota.
                "StartedAt": time.time(),
            }
            self.jobs[job["JobId"]] = job
            self._save(job)
        self._enqueue(job["JobId"])
        return {"JobId": job["JobId"]}

    @staticmethod
    def _check_get(params: dict) -> tuple[str, str, int]:
        """Rekognition's input constraints for GetContentModeration → (SortBy, AggregateBy, MaxResults)."""
        job_id = params.get("JobId")
        if not (isinstance(job_id, str) and _ID.fullmatch(job_id)):
            raise _invalid("JobId is required: 1-64 characters matching ^[a-zA-Z0-9-_]+$")
        sort_by, aggregate = params.get("SortBy", "TIMESTAMP"), params.get("AggregateBy", "TIMESTAMPS")
        if sort_by not in {"NAME", "TIMESTAMP"} or aggregate not in {"TIMESTAMPS", "SEGMENTS"}:
            raise _invalid("SortBy is NAME|TIMESTAMP, AggregateBy TIMESTAMPS|SEGMENTS")
        size = params.get("MaxResults", 1000)
        if not (isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= 1000):
            raise _invalid("MaxResults must be an integer between 1 and 1000")
        token = params.get("NextToken")
        if token is not None and not (isinstance(token, str) and len(token) <= 255):
            raise _invalid("NextToken must be a string of at most 255 characters")
        return sort_by, aggregate, size

    def get(self, params: dict) -> dict:
        sort_by, aggregate, size = self._check_get(params)
        job = self.jobs.get(params["JobId"])
        if job is None:
            raise RekognitionError("ResourceNotFoundException", f"Job {params['JobId']} does not exist")
        shape = f"{job['JobId']}:{sort_by}:{aggregate}"  # a token is only valid for the query that made it
        offset = 0
        if params.get("NextToken"):
            try:
                token_shape, offset_text = base64.urlsafe_b64decode(params["NextToken"]).decode().rsplit(":", 1)
                offset = int(offset_text)
                if token_shape != shape or not 0 <= offset <= len(job.get("Detections", [])):
                    raise ValueError
            except (ValueError, UnicodeDecodeError, binascii.Error) as error:
                raise RekognitionError(
                    "InvalidPaginationTokenException",
                    "Invalid pagination token (tokens are bound to the job, SortBy and AggregateBy that made them)",
                ) from error
        response = {
            "JobStatus": job["JobStatus"],
            "JobId": job["JobId"],
            "Video": job["Video"],
            "ModerationModelVersion": job.get("ModelVersion", reported_version(self.detector)),
            "GetRequestMetadata": {"SortBy": sort_by, "AggregateBy": aggregate},
        }
        if job.get("JobTag"):
            response["JobTag"] = job["JobTag"]
        if job.get("StatusMessage"):
            response["StatusMessage"] = job["StatusMessage"]
        if job.get("VideoMetadata"):
            response["VideoMetadata"] = job["VideoMetadata"]
        if job["JobStatus"] != "SUCCEEDED":
            return response
        detections = job["Detections"]
        if aggregate == "SEGMENTS":
            sample_millis = round(1000 / job.get("SamplingFps", self.fps))
            detections = _merge_segments(detections, sample_millis, job["VideoMetadata"]["DurationMillis"])
        key = (
            (lambda d: (d["ModerationLabel"]["Name"], d["Timestamp"]))
            if sort_by == "NAME"
            else (lambda d: (d["Timestamp"], d["ModerationLabel"]["Name"]))
        )
        detections = sorted(detections, key=key)
        response["ModerationLabels"] = detections[offset : offset + size]
        if offset + size < len(detections):
            response["NextToken"] = base64.urlsafe_b64encode(f"{shape}:{offset + size}".encode()).decode()
        return response

    def wsgi_app(self, environ, start_response):
        operation = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[-1]
        try:
            try:
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                params = json.loads(body or b"{}")
            except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, a bad Content-Length
                raise _invalid("The request body is not valid JSON") from error
            status, answer = "200 OK", self.handle(operation, params)
        except RekognitionError as error:
            status, answer = "400 Bad Request", {"__type": error.code, "Message": error.message}
        except Exception as error:  # answer in Rekognition's shape, never an HTML 500
            log.exception("%s failed", operation)
            status, answer = "500 Internal Server Error", {"__type": "InternalServerError", "Message": str(error)}
        data = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data)))])
        return [data]
