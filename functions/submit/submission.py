"""What a submission names: the video (bucket, key, version or ETag) and who or what asked.

The execution name is derived from the video's identity (``vidmod_contracts.executions``), so an S3 event
delivered twice, or an API client retrying, starts the workflow once.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from urllib.parse import unquote_plus

from vidmod_contracts.executions import execution_name

S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<key>.+)$")


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

    @property
    def execution_name(self) -> str:
        """The one execution this version of the video gets (the ETag stands in when S3 keeps no versions)."""
        return execution_name(self.bucket, self.key, self.version_id or self.etag)


@dataclass(frozen=True)
class Trigger:
    """Who or what asked for the moderation; recorded in the execution input and the decision record."""

    type: str
    id: str
    principal: str
    receivedAt: str

    def to_dict(self) -> dict:
        return asdict(self)


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
