"""Find the object a submission means, and pin its version and ETag (they name the execution).

S3 notification keys may arrive URL-encoded, so several candidate keys are tried. S3 answers 403 instead of
404 for a missing key when the caller lacks s3:ListBucket, and for an object it may not read: that answer is
kept apart (VideoNotReadable) from "no such object".
"""

from __future__ import annotations

from botocore.exceptions import ClientError
from submission import Video, VideoNotReadable

MISSING = frozenset({"404", "NoSuchKey", "NotFound", "400"})
FORBIDDEN = frozenset({"403", "AccessDenied", "Forbidden"})


def locate(s3, bucket: str, keys: list[str], version_id: str = "") -> Video | None:
    """HeadObject the first candidate key that exists: pins version and ETag for the execution name.

    None when no candidate exists; VideoNotReadable when S3 answered 403 (missing or not readable by us)."""
    forbidden = False
    for key in keys:
        kwargs = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
        try:
            meta = s3.head_object(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in MISSING:
                continue
            if code in FORBIDDEN:
                forbidden = True
                continue
            raise
        version = meta.get("VersionId") or ""
        return Video(bucket, key, "" if version == "null" else version, meta.get("ETag", "").strip('"'))
    if forbidden:
        raise VideoNotReadable(
            f"s3://{bucket}/{keys[0]}"
            + (f" (version {version_id})" if version_id else "")
            + " does not exist or is not readable by this function (HeadObject: 403 Forbidden)"
        )
    return None
