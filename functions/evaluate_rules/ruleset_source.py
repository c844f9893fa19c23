"""Which rule set is in force: one shipped with the function (``RULESET_NAME``: ``ruleset``, the default policy,
or ``workshop``), or the override ``RULESET_S3_URI`` names.

An override lets a deployment change its policy without a redeploy. Warm containers live for hours, so an
override is re-checked at most every ``RULESET_TTL_SECONDS`` with a conditional GET on its ETag: a new
rule-set version applies within a minute and costs one 304 otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from rules import SHIPPED_RULESETS, RuleSet, load_ruleset

from vidmod_contracts.taxonomy import load_taxonomy

logger = Logger(service="vidmod-evaluate-rules")
RULESET_TTL_SECONDS = 60.0  # how long a warm container trusts its copy of an overridden rule set


@cache
def shipped_ruleset(name: str = "ruleset") -> RuleSet:
    shipped = sorted(path.stem for path in SHIPPED_RULESETS.glob("*.json"))
    if name not in shipped:
        raise ValueError(f"RULESET_NAME={name!r}: the function ships the rule sets {shipped}")
    return load_ruleset((SHIPPED_RULESETS / f"{name}.json").read_text(encoding="utf-8"), load_taxonomy())


@dataclass
class _Override:
    ruleset: RuleSet
    etag: str
    checked_at: float


_overrides: dict[str, _Override] = {}  # per container: survives warm invocations


def active_ruleset(s3, uri: str, clock=time.monotonic, name: str = "ruleset") -> RuleSet:
    """The shipped rule set ``name`` when ``uri`` is empty, else the override at ``s3://…`` (cached for the TTL)."""
    if not uri:
        return shipped_ruleset(name)
    cached = _overrides.get(uri)
    if cached is not None and clock() - cached.checked_at < RULESET_TTL_SECONDS:
        return cached.ruleset
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    request = {"Bucket": bucket, "Key": key} | ({"IfNoneMatch": cached.etag} if cached and cached.etag else {})
    try:
        obj = s3.get_object(**request)
    except ClientError as error:
        if cached is None or error.response.get("Error", {}).get("Code") not in {"304", "NotModified"}:
            raise
        cached.checked_at = clock()
        return cached.ruleset
    ruleset = load_ruleset(obj["Body"].read().decode(), load_taxonomy())
    _overrides[uri] = _Override(ruleset, obj.get("ETag", ""), clock())
    if cached is not None and cached.ruleset.version != ruleset.version:
        logger.info("rule set changed", extra={"from": cached.ruleset.version, "to": ruleset.version})
    return ruleset
