"""Turn an upload event or an API request into one named Step Functions execution.

The execution name is derived from bucket/key/version (or ETag when the bucket is not versioned), so an
S3 event delivered twice, or an API client retrying, starts the workflow once.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<key>.+)$")
NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


# Request parts that carry credentials (SigV4 signature, session token, cookies): never logged.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-amz-security-token", "cookie", "x-api-key"})
REDACTED = "***"


class BadRequest(ValueError):
    """The request cannot name a video we may moderate (→ HTTP 400 with this message)."""


class VideoNotReadable(Exception):
    """HeadObject answered 403: the object is missing (without s3:ListBucket S3 says 403) or unreadable."""


@dataclass(frozen=True)
class Video:
    bucket: str
    key: str
    version_id: str = ""
    etag: str = ""

    def as_input(self) -> dict:
        return {"bucket": self.bucket, "key": self.key, "versionId": self.version_id or None, "etag": self.etag}


def execution_name(video: Video) -> str:
    """≤ 80 chars of [A-Za-z0-9_-]: a readable stem of the key plus a digest of the video's identity."""
    identity = f"{video.bucket}/{video.key}/{video.version_id or video.etag}"
    stem = NAME_UNSAFE.sub("-", video.key.rsplit("/", 1)[-1].rsplit(".", 1)[0]).strip("-")[:20] or "video"
    return f"{stem}-{hashlib.sha256(identity.encode()).hexdigest()[:40]}"


def parse_s3_uri(uri: object, allowed_buckets: set[str]) -> tuple[str, str]:
    if not isinstance(uri, str) or not (match := S3_URI.match(uri.strip())):
        raise BadRequest('"video" must be an S3 URI like s3://bucket/path/video.mp4')
    bucket, key = match["bucket"], match["key"]
    if bucket not in allowed_buckets:
        raise BadRequest(
            f"bucket {bucket!r} is not a media bucket of this deployment ({', '.join(sorted(allowed_buckets))})"
        )
    return bucket, key


def parse_request_body(body: object, allowed_buckets: set[str]) -> tuple[str, str, str]:
    if not isinstance(body, dict):
        raise BadRequest('body must be a JSON object: {"video": "s3://bucket/key.mp4", "versionId": "optional"}')
    bucket, key = parse_s3_uri(body.get("video"), allowed_buckets)
    version = body.get("versionId") or ""
    if not isinstance(version, str) or len(version) > 1024:
        raise BadRequest('"versionId" must be a string')
    return bucket, key, version


def key_candidates(raw_key: str) -> list[str]:
    """S3 notification keys may arrive URL-encoded ("my+video.mp4"); try the key as given first."""
    decoded = unquote_plus(raw_key)
    return [raw_key] if decoded == raw_key else [raw_key, decoded]


def redact_event(event: dict) -> dict:
    """A copy of an invocation event that is safe to log: HTTP API events carry the caller's SigV4
    ``authorization`` header and, for temporary credentials, ``x-amz-security-token``."""
    safe = copy.deepcopy(event)
    for field in ("headers", "multiValueHeaders"):
        headers = safe.get(field)
        if isinstance(headers, dict):
            for name in headers:
                if name.lower() in SECRET_HEADERS:
                    headers[name] = REDACTED
    if safe.get("cookies"):
        safe["cookies"] = [REDACTED]
    iam = ((safe.get("requestContext") or {}).get("authorizer") or {}).get("iam")
    if isinstance(iam, dict) and iam.get("accessKey"):
        iam["accessKey"] = REDACTED
    return safe
