"""Copy one finished execution into the audit bucket, once.

Step Functions forgets a closed execution after 90 days; the audit reads this copy instead (its shape and key
are ``vidmod_contracts.archive``). The object is written with ``If-None-Match: *``: a duplicate event finds it
there and stops, so an archive is never silently replaced. The bucket has S3 Object Lock, which requires an
integrity checksum on every PutObject.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from vidmod_contracts.archive import archive_key, build_archive

# What S3 answers when If-None-Match finds the object (or a concurrent writer of the same key).
ALREADY_WRITTEN = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


@dataclass(frozen=True)
class Archived:
    key: str
    written: bool  # False: an earlier delivery of the same event wrote it
    size: int = 0


def history(sfn, execution_arn: str) -> list[dict]:
    """Every event, across all pages (a history can hold 25,000)."""
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


def archive_execution(sfn, s3, bucket: str, execution_arn: str, archived_at: datetime) -> Archived:
    """Write the execution's archive unless it is already there."""
    key = archive_key(execution_arn)
    body = build_archive(sfn.describe_execution(executionArn=execution_arn), history(sfn, execution_arn), archived_at)
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            IfNoneMatch="*",
            ChecksumAlgorithm="SHA256",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ALREADY_WRITTEN:
            raise
        return Archived(key, written=False)
    return Archived(key, written=True, size=len(body))
