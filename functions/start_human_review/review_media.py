"""The reviewer watches a copy of exactly the analysed version, so a replacement cannot change what they see.

A2I's grant_read_access presigns an s3:// URI as it is, with no version: the link would serve the key's
current version, and an upload during the review would put other content in front of the reviewer. So the
analysed version (its VersionId; in an unversioned bucket the current object, guarded by its analysed ETag) is
copied server-side to ``s3://<results>/review-media/<humanLoopName>/<file name>`` and the InputContent points
there. A retried task finds the copy by its key and its metadata and does not copy again. The copies are
temporary: the results bucket's lifecycle rule expires ``review-media/`` (longer than any loop stays open).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from analysed_version import MISSING, VideoNotFound, VideoReplaced
from aws_lambda_powertools import Logger
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

logger = Logger(service="vidmod-start-human-review")

PREFIX = "review-media"
MAX_KEY_BYTES = 1024  # S3's limit for a key
MIB = 1024 * 1024
# Server-side copy (no byte passes through the Lambda). One CopyObject up to the threshold; above it (and
# necessarily above CopyObject's 5 GB limit) UploadPartCopy of 256 MiB parts, 10 at a time (boto3's default
# connection pool): a 10 GB video, Rekognition's largest, is 40 parts. Parts are pinned to the source's ETag.
COPY_CONFIG = TransferConfig(multipart_threshold=256 * MIB, multipart_chunksize=256 * MIB, max_concurrency=10)
PIN = "vidmod-source"  # the copy's user metadata: which content of the source it holds
CHANGED = frozenset({"412", "PreconditionFailed"})
GONE = MISSING | {"NoSuchVersion"}


@dataclass(frozen=True)
class ReviewCopy:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def copy_key(loop_name: str, source_key: str) -> str:
    """One key per loop (a retried task finds it), ending with the video's own file name."""
    name = posixpath.basename(source_key) or "video"
    key = f"{PREFIX}/{loop_name}/{name}"
    if len(key.encode()) > MAX_KEY_BYTES:  # a very long file name: keep its extension only
        key = f"{PREFIX}/{loop_name}/video{posixpath.splitext(name)[1][:16]}"
    return key


def source_pin(video: dict) -> tuple[dict, dict, str]:
    """(CopySource, the copy's source conditions, the pin recorded on the copy) for the analysed content."""
    source = {"Bucket": video["bucket"], "Key": video["key"]}
    version, etag = video.get("versionId") or "", (video.get("etag") or "").strip('"')
    if version:
        return source | {"VersionId": version}, {}, f"version:{version}"
    if etag:  # unversioned: the current object, only while it still is the analysed content
        return source, {"CopySourceIfMatch": f'"{etag}"'}, f"etag:{etag}"
    return source, {}, "current"  # nothing recorded to pin (not a job validate_input plans)


def existing_pin(s3, copy: ReviewCopy) -> str | None:
    """The pin of a copy a previous attempt made, None when there is none."""
    try:
        return s3.head_object(Bucket=copy.bucket, Key=copy.key).get("Metadata", {}).get(PIN, "")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in MISSING:
            return None
        raise


def _source_error(error: ClientError, video: dict) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    where = f"s3://{video['bucket']}/{video['key']}"
    if code in CHANGED:
        return VideoReplaced(
            f"{where} was overwritten during moderation (analysed ETag {video.get('etag')}); "
            "the new content has its own execution"
        )
    if code in GONE:
        analysed = video.get("versionId") or "(unversioned)"
        return VideoNotFound(f"{where} (version {analysed}) was deleted during moderation; nothing to review")
    return error


def make_review_copy(s3, video: dict, bucket: str, loop_name: str) -> ReviewCopy:
    """Copy the analysed content for the reviewer, once per loop: a retry keeps the copy already made."""
    copy = ReviewCopy(bucket, copy_key(loop_name, video["key"]))
    source, conditions, pin = source_pin(video)
    if existing_pin(s3, copy) == pin:
        logger.info("review copy already made", extra={"copy": copy.uri})
        return copy
    try:
        if_match = {"IfMatch": conditions["CopySourceIfMatch"]} if conditions else {}
        head = s3.head_object(**source, **if_match)  # its type goes with the copy
        s3.copy(
            CopySource=source,
            Bucket=copy.bucket,
            Key=copy.key,
            ExtraArgs={
                **conditions,
                # the pin goes with the copy; the source's tags do not (they would need s3:GetObjectVersionTagging)
                "MetadataDirective": "REPLACE",
                "Metadata": {PIN: pin},
                "ContentType": head.get("ContentType") or "binary/octet-stream",
                "TaggingDirective": "REPLACE",
            },
            Config=COPY_CONFIG,
        )
    except ClientError as error:
        raise _source_error(error, video) from error
    logger.info("review copy made", extra={"copy": copy.uri, "bytes": head.get("ContentLength")})
    return copy
