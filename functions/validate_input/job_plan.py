"""Everything the workflow needs to know before it calls Rekognition, computed once and kept in state.

Names and tokens are derived from the video and the execution so that every retry is idempotent:
the same video version → the same Rekognition ClientRequestToken → the same JobId; the same execution →
the same A2I human loop name.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass


class InvalidInput(Exception):
    """The execution input does not name a video (bucket and key)."""


class UnsupportedVideoType(Exception):
    """The object's extension is not one Rekognition Video accepts."""


class VideoNotFound(Exception):
    """No such object (or version) in S3, or one this function may not read (S3 answers 403 for both)."""


class VideoTooLarge(Exception):
    """Bigger than the configured limit (Rekognition's own is 10 GB)."""


class EmptyVideo(Exception):
    """A zero-byte object: nothing to analyse."""


class InvalidConfiguration(Exception):
    """The deployment's parameters cannot work together (e.g. no history left for label pages)."""


# GetContentModeration MaxResults in the ASL (FetchFirstLabelsPage / FetchNextLabelsPage). Worst case a
# detection is ~5.7 KB (ContentTypes: up to 50 entries); 40 of them plus the rest of the state stay under
# Step Functions' 256 KiB payload limit. docs/design.md "History and payload budget" has the arithmetic.
LABELS_PER_PAGE = 40
# A Standard execution fails at 25,000 history events. Each label page costs 12 (two Task states of 5
# events, one Choice of 2), each status poll at most 17; everything else (validation, start and its
# LimitExceeded retries, rules, review, decision, tagging, publishing) stays well within the reserve.
HISTORY_EVENT_LIMIT = 25_000
EVENTS_PER_LABEL_PAGE = 12
EVENTS_PER_POLL = 17
EVENTS_RESERVED = 600


@dataclass(frozen=True)
class Settings:
    video_extensions: tuple[str, ...]
    max_video_bytes: int
    min_confidence: float
    results_bucket: str
    poll_min_seconds: int
    poll_max_seconds: int
    poll_bytes_per_second: int
    poll_max_attempts: int
    review_timeout_seconds: int
    review_heartbeat_seconds: int
    slot_max_wait_seconds: int = 7 * 24 * 3600

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        return cls(
            video_extensions=tuple(
                e.strip().lower() for e in env.get("VIDEO_EXTENSIONS", ".mp4,.mov,.avi,.m4v").split(",") if e.strip()
            ),
            max_video_bytes=int(env.get("MAX_VIDEO_BYTES", str(10 * 1024**3))),
            min_confidence=float(env.get("MIN_CONFIDENCE", "50")),
            results_bucket=env["RESULTS_BUCKET"],
            poll_min_seconds=int(env.get("POLL_MIN_SECONDS", "10")),
            poll_max_seconds=int(env.get("POLL_MAX_SECONDS", "300")),
            poll_bytes_per_second=int(env.get("POLL_BYTES_PER_SECOND", str(4 * 1024**2))),
            poll_max_attempts=int(env.get("POLL_MAX_ATTEMPTS", "120")),
            review_timeout_seconds=int(env.get("REVIEW_TIMEOUT_SECONDS", str(3 * 24 * 3600))),
            review_heartbeat_seconds=int(env.get("REVIEW_HEARTBEAT_SECONDS", "3600")),
            slot_max_wait_seconds=int(env.get("MODERATION_SLOT_MAX_WAIT_SECONDS", str(7 * 24 * 3600))),
        )


@dataclass(frozen=True)
class VideoRef:
    bucket: str
    key: str
    version_id: str  # "" when the bucket is not versioned

    @classmethod
    def from_input(cls, payload: object) -> VideoRef:
        video = payload.get("video") if isinstance(payload, dict) else None
        if not isinstance(video, dict):
            raise InvalidInput('input must be {"video": {"bucket": ..., "key": ...}}')
        bucket, key, version = video.get("bucket"), video.get("key"), video.get("versionId") or ""
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            raise InvalidInput(f"video.bucket and video.key must be non-empty strings, got {video!r:.300}")
        if not isinstance(version, str):
            raise InvalidInput("video.versionId must be a string")
        return cls(bucket, key, version)


def check_extension(video: VideoRef, settings: Settings) -> None:
    extension = posixpath.splitext(video.key)[1].lower()
    if extension not in settings.video_extensions:
        raise UnsupportedVideoType(
            f"s3://{video.bucket}/{video.key}: extension {extension or '(none)'!r} is not a supported video "
            f"type ({', '.join(settings.video_extensions)})"
        )


def check_size(video: VideoRef, size: int, settings: Settings) -> None:
    if size == 0:
        raise EmptyVideo(f"s3://{video.bucket}/{video.key} is empty (0 bytes)")
    if size > settings.max_video_bytes:
        raise VideoTooLarge(
            f"s3://{video.bucket}/{video.key} is {size} bytes; the limit is {settings.max_video_bytes} bytes"
        )


def max_label_pages(settings: Settings) -> int:
    """Label pages an execution can read before its history would reach the 25,000-event limit."""
    left = HISTORY_EVENT_LIMIT - EVENTS_RESERVED - EVENTS_PER_POLL * settings.poll_max_attempts
    pages = left // EVENTS_PER_LABEL_PAGE
    if pages < 1:
        raise InvalidConfiguration(
            f"PollMaxAttempts {settings.poll_max_attempts} leaves no history events for label pages "
            f"(Step Functions allows {HISTORY_EVENT_LIMIT} per execution)"
        )
    return pages


def normalize_trigger(raw: object, started_at: str) -> dict:
    """Who/what started the execution, always present: submit writes one, but a console or CLI start (or a
    redrive of such an execution) may carry none, and the decision record must still say something."""
    trigger = {"type": "manual", "id": "", "principal": "unknown", "receivedAt": started_at}
    if isinstance(raw, dict):
        trigger |= {str(k)[:64]: str(v)[:1024] for k, v in raw.items() if v is not None}
    return trigger


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def first_wait_seconds(size: int, settings: Settings) -> int:
    """Size the first poll from what we know (bytes) so a long video does not cost many early polls."""
    estimate = size // max(settings.poll_bytes_per_second, 1)
    return int(min(max(estimate, settings.poll_min_seconds), settings.poll_max_seconds))


def plan_job(
    video: VideoRef,
    size: int,
    etag: str,
    execution_name: str,
    execution_arn: str,
    settings: Settings,
    trigger: dict | None = None,
) -> dict:
    # MinConfidence is part of the job's identity: re-analysing the same version with another MinConfidence
    # under the same token would get IdempotentParameterMismatch from Rekognition.
    identity = f"{video.bucket}/{video.key}/{video.version_id or etag}/{settings.min_confidence:g}"
    s3_object = {"Bucket": video.bucket, "Name": video.key}
    if video.version_id:
        s3_object["Version"] = video.version_id
    return {
        "video": {
            "bucket": video.bucket,
            "key": video.key,
            "versionId": video.version_id,
            "etag": etag,
            "sizeBytes": size,
            "name": posixpath.basename(video.key),
            "uri": f"s3://{video.bucket}/{video.key}",
            "s3Object": s3_object,
        },
        "clientRequestToken": _digest(identity)[:64],
        "humanLoopName": f"vidmod-{_digest(execution_arn)[:40]}",
        "minConfidence": settings.min_confidence,
        "jobTag": "vidmod",
        "poll": {
            "waitSeconds": first_wait_seconds(size, settings),
            "maxWaitSeconds": settings.poll_max_seconds,
            "maxPolls": settings.poll_max_attempts,
            "count": 1,  # checks made when PollBudgetLeft compares (after the first): PollMaxAttempts checks in all
        },
        "review": {
            "timeoutSeconds": settings.review_timeout_seconds,
            # Strictly below the timeout: a heartbeat limit equal to it would never be the one that fires.
            "heartbeatSeconds": max(1, min(settings.review_heartbeat_seconds, settings.review_timeout_seconds - 1)),
        },
        # How long WaitForModerationSlot may queue for one of MaxConcurrentModerationJobs slots.
        "admission": {"maxWaitSeconds": settings.slot_max_wait_seconds},
        "results": {"bucket": settings.results_bucket, "prefix": f"moderations/{execution_name}/"},
        "labelPages": {"pageSize": LABELS_PER_PAGE, "maxPages": max_label_pages(settings)},
        "trigger": trigger if trigger is not None else normalize_trigger(None, ""),
    }
