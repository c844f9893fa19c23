"""Keep one GetContentModeration page in S3 and pass on only a summary of it.

Full label lists can exceed Step Functions' 256 KiB payload limit, so the workflow carries the results prefix
and counts; the pages live at ``vidmod_contracts.label_pages.page_key`` for evaluate_rules to read. Writing
page N is idempotent: a retried state overwrites the same object.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from vidmod_contracts.label_pages import page_key


@dataclass(frozen=True)
class PageSummary:
    """What the workflow keeps of the pages so far (``$.labels``): counts and the token of the next page."""

    pages: int
    detections: int
    modelVersion: str
    statusMessage: str
    videoMetadata: dict
    hasMore: bool
    nextToken: str

    @classmethod
    def after(cls, page: dict, previous: dict, number: int) -> PageSummary:
        next_token = page.get("NextToken") or ""
        return cls(
            pages=number,
            detections=int(previous.get("detections", 0)) + len(page.get("ModerationLabels", [])),
            modelVersion=page.get("ModerationModelVersion", ""),
            statusMessage=page.get("StatusMessage", ""),
            videoMetadata=page.get("VideoMetadata", {}),
            hasMore=bool(next_token),
            nextToken=next_token,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StoredPage:
    key: str
    labels: int
    summary: PageSummary


def store_page(s3, bucket: str, prefix: str, page: dict, previous: dict) -> StoredPage:
    """Write the page after the ``previous`` ones and summarise all of them."""
    number = int(previous.get("pages", 0)) + 1
    key = page_key(prefix, number)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(page).encode(), ContentType="application/json")
    return StoredPage(key, len(page.get("ModerationLabels", [])), PageSummary.after(page, previous, number))
