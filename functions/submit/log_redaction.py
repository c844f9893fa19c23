"""Make an invocation event safe to log: HTTP API events carry the caller's credentials.

The SigV4 ``authorization`` header, ``x-amz-security-token`` for temporary credentials, cookies and the IAM
access key in the request context are replaced; everything else stays, so the log still shows the request.
"""

from __future__ import annotations

import copy

# Request parts that carry credentials (SigV4 signature, session token, cookies): never logged.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-amz-security-token", "cookie", "x-api-key"})
REDACTED = "***"


def redact_event(event: dict) -> dict:
    """A copy of an invocation event that is safe to log: HTTP API events carry the caller's SigV4
    ``authorization`` header and, for temporary credentials, ``x-amz-security-token``."""
    safe = copy.deepcopy(event)
    for field in ("headers", "multiValueHeaders"):
        headers = safe.get(field)
        if isinstance(headers, dict):
            for name in headers:
                if name.lower() in SECRET_HEADERS:
                    headers[name] = REDACTED
    if safe.get("cookies"):
        safe["cookies"] = [REDACTED]
    iam = ((safe.get("requestContext") or {}).get("authorizer") or {}).get("iam")
    if isinstance(iam, dict) and iam.get("accessKey"):
        iam["accessKey"] = REDACTED
    return safe
