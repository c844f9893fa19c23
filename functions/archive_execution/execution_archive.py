"""Copy one finished execution into the audit bucket, once per time it ends.

Step Functions forgets a closed execution after 90 days; the audit reads this copy instead (its shape and keys
are ``vidmod_contracts.archive``). A history can hold 25,000 events of up to 256 KB each, so it is never held
whole: pages of events are serialised as they arrive and sent to S3 in multipart parts (one PutObject when
the archive is small). Every event passes through ``on_event`` on its way, for the execution's metrics.

The object is written with ``If-None-Match: *`` (on PutObject, or on CompleteMultipartUpload): a duplicate
event finds it there and stops, so an archive is never silently replaced. A redriven execution ends again
and is archived under its redrive count's own key. The bucket has S3 Object Lock, which requires an integrity
checksum on every PutObject and UploadPart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from vidmod_contracts.archive import archive_chunks, archive_key

logger = Logger(service="vidmod-archive-execution")
# What S3 answers when If-None-Match finds the object (or a concurrent writer of the same key).
ALREADY_WRITTEN = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
# Events per GetExecutionHistory call: bounds the memory of one page (AWS allows up to 1,000).
PAGE_EVENTS = 250
# Bytes per multipart part (S3: at least 5 MiB except the last; at most 10,000 parts, so up to 80 GB).
PART_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Archived:
    key: str
    written: bool  # False: an earlier delivery of the same event wrote it
    size: int = 0
    redrive_count: int = 0


def history(sfn, execution_arn: str) -> Iterator[dict]:
    """Every event, page by page (a history can hold 25,000): only the current page is in memory."""
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn, maxResults=PAGE_EVENTS)
    for page in pages:
        yield from page["events"]


class ConditionalUpload:
    """Bytes written in order become one S3 object, created only if the key is free.

    Up to ``PART_BYTES`` stay in memory; past that the object goes up as a multipart upload, completed with
    If-None-Match, and aborted if anything fails so no part outlives the attempt."""

    def __init__(self, s3, bucket: str, key: str):
        self.s3, self.bucket, self.key = s3, bucket, key
        self.buffer, self.size = bytearray(), 0
        self.upload_id: str | None = None
        self.parts: list[dict] = []

    def write(self, data: bytes) -> None:
        self.buffer += data
        self.size += len(data)
        if len(self.buffer) >= PART_BYTES:
            self._send_part()

    def _send_part(self) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/json", ChecksumAlgorithm="SHA256"
            )["UploadId"]
        number = len(self.parts) + 1
        body, self.buffer = bytes(self.buffer), bytearray()
        answer = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="SHA256",
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": answer["ChecksumSHA256"]})

    def close(self) -> bool:
        """Create the object; False when the key was already taken (nothing is replaced)."""
        try:
            if self.upload_id is None:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=self.key,
                    Body=bytes(self.buffer),
                    ContentType="application/json",
                    IfNoneMatch="*",
                    ChecksumAlgorithm="SHA256",
                )
                return True
            if self.buffer:
                self._send_part()
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
                IfNoneMatch="*",
            )
            return True
        except ClientError as error:
            self.abort()
            if error.response.get("Error", {}).get("Code") not in ALREADY_WRITTEN:
                raise
            return False

    def abort(self) -> None:
        """Drop the parts sent so far (best effort: the bucket's lifecycle rule removes any left behind)."""
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except ClientError as error:
            logger.warning("could not abort the multipart upload", extra={"key": self.key, "error": str(error)})


def archive_execution(
    sfn, s3, bucket: str, execution_arn: str, archived_at: datetime, on_event: Callable[[dict], None] = lambda _: None
) -> Archived:
    """Write the archive of the execution's latest run unless it is already there."""
    execution = sfn.describe_execution(executionArn=execution_arn)
    redrive_count = int(execution.get("redriveCount") or 0)
    key = archive_key(execution_arn, redrive_count)
    upload = ConditionalUpload(s3, bucket, key)

    def events() -> Iterator[dict]:
        for event in history(sfn, execution_arn):
            on_event(event)
            yield event

    try:
        for chunk in archive_chunks(execution, events(), archived_at):
            upload.write(chunk)
    except BaseException:
        upload.abort()
        raise
    written = upload.close()
    return Archived(key, written, upload.size if written else 0, redrive_count)
