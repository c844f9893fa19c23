"""Fetch a whole execution history (AWS pages at most 1,000 events; a history can hold 25,000)."""

from __future__ import annotations

import json
from datetime import datetime

from vidmod_contracts.times import iso_millis as iso


def all_events(sfn, execution_arn: str) -> list[dict]:
    """Every event of a history: AWS pages them (up to 25,000 events in 1,000-event pages)."""
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn, maxResults=1000)
    return [event for page in pages for event in page["events"]]


def normalized(events: list[dict]) -> list[dict]:
    """Events as plain JSON with ISO times, so a live history and an archived one compare equal."""

    def default(value: object) -> str:
        if isinstance(value, datetime):
            return iso(value)
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    plain = json.loads(json.dumps(events, default=default))
    for event in plain:
        if "timestamp" in event:
            event["timestamp"] = iso(event["timestamp"])
    return plain


def waiting_in(events: list[dict]) -> str | None:
    """The state whose callback task the execution sleeps in (its task was submitted, no later state
    entered), e.g. ``HumanReview`` or ``WaitForModerationSlot``; None when it is not waiting on a token."""
    state, submitted = None, False
    for event in events:
        if "stateEnteredEventDetails" in event:
            state, submitted = event["stateEnteredEventDetails"]["name"], False
        elif event["type"] == "TaskSubmitted":
            submitted = True
        elif event["type"] in {"TaskSucceeded", "TaskFailed", "TaskTimedOut"}:
            submitted = False
    return state if submitted else None
