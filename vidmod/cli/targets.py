"""Where a reading command (``vidmod audit``, ``vidmod metrics``) reads: the local endpoint, or AWS with ``--aws``."""

from __future__ import annotations

import argparse
import os

from botocore.exceptions import BotoCoreError, ClientError

from vidmod.emulator.clients import DEFAULT_ENDPOINT


def add_target_options(parser: argparse.ArgumentParser, region_help: str) -> None:
    """The local endpoint by default ($VIDMOD_ENDPOINT), AWS with --aws; the decisions table from the stack's
    outputs (or the local template) unless --decisions-table names it."""
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("VIDMOD_ENDPOINT", DEFAULT_ENDPOINT),
        help="local endpoint (default: $VIDMOD_ENDPOINT or %(default)s); '' means AWS",
    )
    parser.add_argument("--aws", dest="endpoint_url", action="store_const", const="", help="read AWS")
    parser.add_argument("--region", default=None, help=region_help)
    parser.add_argument("--stack-name", default="vidmod", help="CloudFormation stack to read names from")
    parser.add_argument("--decisions-table", default=os.environ.get("VIDMOD_DECISIONS_TABLE"))


def read_failure(error: ClientError | BotoCoreError, endpoint_url: str) -> str:
    """One line for a read that AWS refused (its code and message) or that reached nothing (with a hint when the
    target was the local endpoint)."""
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{detail.get('Code')}: {detail.get('Message')}"
    hint = f" (is `vidmod local up` running at {endpoint_url}? --aws targets AWS)" if endpoint_url else ""
    return f"{error}{hint}"
