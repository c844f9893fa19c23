"""Execution names and ARNs: how an upload becomes exactly one named execution, and how to find it again.

The name is derived from bucket/key/version (or ETag when the bucket is not versioned), so an S3 event
delivered twice, or an API client retrying, starts the workflow once; the audit searches by the same stem.
"""

from __future__ import annotations

import hashlib
import re

NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
STEM_CHARS = 20
DIGEST_CHARS = 40  # stem (≤ 20) + "-" + 40 hex ≤ 80, Step Functions' limit for a name


def name_stem(key: str) -> str:
    """A readable part of the object key: its file name without extension, made safe for a name."""
    return NAME_UNSAFE.sub("-", key.rsplit("/", 1)[-1].rsplit(".", 1)[0]).strip("-")[:STEM_CHARS] or "video"


def execution_name(bucket: str, key: str, version_or_etag: str) -> str:
    """≤ 80 chars of [A-Za-z0-9_-]: the key's stem plus a digest of the video's identity."""
    identity = f"{bucket}/{key}/{version_or_etag}"
    return f"{name_stem(key)}-{hashlib.sha256(identity.encode()).hexdigest()[:DIGEST_CHARS]}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:…:stateMachine:M`` + name → ``arn:…:execution:M:NAME``."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def split_execution_arn(arn: str) -> tuple[str, str]:
    """``arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`` → (MACHINE, NAME)."""
    parts = arn.split(":")
    if len(parts) != 8 or parts[5] != "execution":
        raise ValueError(f"not a Step Functions execution ARN: {arn!r}")
    return parts[6], parts[7]
