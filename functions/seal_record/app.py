"""SealRecord: the decision record's hash (``vidmod_contracts.record_hash``), computed here because the ASL's
``States.Hash`` takes at most 10,000 characters and fails uncatchably beyond; a record's detail can be longer."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from vidmod_contracts.record_hash import seal

logger = Logger(service="vidmod-seal-record")


@logger.inject_lambda_context(log_event=False)  # the record holds reviewers' comments: never logged
def lambda_handler(event: dict, context) -> dict:
    sealed = seal(event)
    logger.info("sealed record", extra={"executionName": event.get("executionName"), **sealed})
    return sealed
