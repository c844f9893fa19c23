"""Reading one Step Functions history event, the same way in the archive function, the audit and the CLI."""

from __future__ import annotations


def event_details(event: dict) -> dict:
    """The event's ``<type>EventDetails`` object (``{}`` for events that carry none): its key is named after the
    event's type, so it is found by its suffix."""
    return next((v for k, v in event.items() if k.endswith("EventDetails")), {})
