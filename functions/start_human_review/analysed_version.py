"""Refuse to review content other than what Rekognition and the rules saw.

If the video was replaced or deleted during moderation, the new version has its own execution: reviewing
the old one would waste a reviewer's time on outdated content, so this one fails with a named error instead.
What the reviewer watches is a copy of the analysed version (``review_media``): a replacement after this
check cannot change it.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class VideoReplaced(Exception):
    """The object's current version is not the one analysed: a reviewer would watch other content."""


class VideoNotFound(Exception):
    """The analysed object was deleted (or became unreadable) before its review started."""


def check_still_analysed_version(s3, video: dict) -> None:
    """``video`` is the job's video (bucket, key, and the versionId or ETag that was analysed)."""
    bucket, key = video["bucket"], video["key"]
    try:
        meta = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        # With s3:ListBucket granted a missing key is a 404; a 403 is a real permission (or KMS) problem.
        if error.response.get("Error", {}).get("Code") in MISSING:
            raise VideoNotFound(f"s3://{bucket}/{key} was deleted during moderation; nothing to review") from error
        raise
    analysed, current = video.get("versionId") or "", meta.get("VersionId") or ""
    if analysed and current != analysed:
        raise VideoReplaced(
            f"s3://{bucket}/{key} was replaced by version {current or '(unversioned)'} during moderation "
            f"(analysed version {analysed}); the new version has its own execution"
        )
    analysed_etag, current_etag = video.get("etag") or "", meta.get("ETag", "").strip('"')
    if not analysed and analysed_etag and current_etag != analysed_etag:
        raise VideoReplaced(
            f"s3://{bucket}/{key} was overwritten during moderation (ETag {current_etag}, analysed {analysed_etag}); "
            "the new content has its own execution"
        )
