"""Look at the object S3 really holds before anything is spent on it, then plan the job from what is there.

The execution input only names a video; HeadObject says whether it exists, how big it is, and which version
and ETag it has now. An unversioned request is pinned to the version that exists now, so every later state
(and a retry) analyses exactly that version.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError
from job_plan import Settings, VideoNotFound, VideoRef, check_extension, check_size, normalize_trigger, plan_job

MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion", "400", "NoSuchBucket"})
FORBIDDEN = frozenset({"403", "AccessDenied", "Forbidden"})


@dataclass(frozen=True)
class Execution:
    """The running execution, as the ValidateInput state passes it (``$$.Execution``)."""

    name: str
    arn: str
    start_time: str

    @classmethod
    def from_state(cls, execution: dict) -> Execution:
        return cls(execution["name"], execution["id"], execution.get("startTime", ""))


def head(s3, video: VideoRef) -> dict:
    """HeadObject of the named version (or the current one); VideoNotFound for every "cannot see it" answer."""
    kwargs = {"Bucket": video.bucket, "Key": video.key}
    if video.version_id:
        kwargs["VersionId"] = video.version_id
    version = f" version {video.version_id}" if video.version_id else ""
    try:
        return s3.head_object(**kwargs)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in MISSING:
            raise VideoNotFound(f"s3://{video.bucket}/{video.key}{version} does not exist") from error
        if code in FORBIDDEN:
            # S3 answers 403 for a missing key when the caller lacks s3:ListBucket, and for an unreadable one.
            raise VideoNotFound(
                f"s3://{video.bucket}/{video.key}{version} does not exist or is not readable by this function "
                "(HeadObject: 403 Forbidden)"
            ) from error
        raise


def check_and_plan(s3, execution_input: object, execution: Execution, settings: Settings) -> dict:
    """The job plan for the video ``execution_input`` names; a named error when it cannot be moderated."""
    video = VideoRef.from_input(execution_input)
    check_extension(video, settings)
    meta = head(s3, video)
    pinned = meta.get("VersionId") or ""
    if not video.version_id and pinned not in {"", "null"}:
        video = VideoRef(video.bucket, video.key, pinned)  # analyse exactly the version that exists now
    size = int(meta["ContentLength"])
    check_size(video, size, settings)
    trigger = normalize_trigger((execution_input or {}).get("trigger"), execution.start_time)
    etag = meta.get("ETag", "").strip('"')
    return plan_job(video, size, etag, execution.name, execution.arn, settings, trigger)
