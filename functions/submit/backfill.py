"""One object of a backfill (the backfill state machine's Distributed Map): checked and started exactly as an
upload of the same version would be, and reported as one outcome the summary counts.

Outcomes: ``submitted`` (started now), ``would-submit`` (a dry run), ``already-decided`` (its execution
ended), ``in-progress`` (its execution is still running), ``refused`` (with the reason), ``not-a-video``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from moderations import Moderations
from submission import Trigger, VideoNotReadable
from video_lookup import locate

from vidmod_contracts.times import now_iso


@dataclass(frozen=True)
class VideoRules:
    """What ValidateInput would refuse, checked before a start: the same extensions and size limit."""

    extensions: tuple[str, ...]
    max_bytes: int

    @classmethod
    def from_env(cls, env: dict[str, str]) -> VideoRules:
        extensions = tuple(e.strip().lower() for e in env["VIDEO_EXTENSIONS"].split(",") if e.strip())
        return cls(extensions, int(env["MAX_VIDEO_BYTES"]))


@dataclass(frozen=True)
class BackfillItem:
    bucket: str
    key: str
    size: int
    dry_run: bool
    backfill: str  # the backfill execution's name: the trigger id of everything it starts
    principal: str

    @classmethod
    def from_event(cls, item: dict) -> BackfillItem:
        return cls(
            str(item["bucket"]),
            str(item["key"]),
            int(item.get("size") or 0),
            bool(item.get("dryRun")),
            str(item.get("backfill") or ""),
            str(item.get("principal") or "unknown"),
        )


def _outcome(item: BackfillItem, outcome: str, reason: str = "", execution_name: str = "") -> dict:
    return {"key": item.key, "outcome": outcome, "reason": reason, "executionName": execution_name}


def backfill_one(moderations: Moderations, item: BackfillItem, media_buckets: set[str], rules: VideoRules) -> dict:
    extension = posixpath.splitext(item.key)[1].lower()
    if extension not in rules.extensions:
        return _outcome(
            item, "not-a-video", f"{extension or 'no extension'} is not one of {', '.join(rules.extensions)}"
        )
    if item.bucket not in media_buckets:
        return _outcome(item, "refused", f"bucket {item.bucket} is not a media bucket of this deployment")
    if item.size == 0:
        return _outcome(item, "refused", "empty object (0 bytes)")
    if item.size > rules.max_bytes:
        return _outcome(item, "refused", f"{item.size} bytes is over MaxVideoBytes ({rules.max_bytes})")
    try:
        video = locate(moderations.s3, item.bucket, [item.key])
    except VideoNotReadable as error:
        return _outcome(item, "refused", str(error))
    if video is None:
        return _outcome(item, "refused", "deleted after it was listed")
    name = video.execution_name
    status = moderations.execution_status(name)
    if status is not None:
        return _outcome(item, "in-progress" if status == "RUNNING" else "already-decided", status, name)
    if item.dry_run:
        return _outcome(item, "would-submit", "", name)
    started = moderations.start(video, Trigger("backfill", item.backfill, item.principal, now_iso()))
    return _outcome(item, "in-progress" if started.duplicate else "submitted", "", started.executionName)
