"""A2I human-loop statuses as the review Lambdas read them, and vidmod's own replay event.

start_human_review replays a loop that ended before its retried task stored the new token (the loop's own
status-change event went to the old token); complete_human_review takes that replay like an A2I event, and
template.yaml's rule routes it (``source: [vidmod]``, ``detail-type: [vidmod.humanLoopReplay]``).
"""

from __future__ import annotations

FINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})  # A2I sends a status-change event for these
ALIVE_STATUSES = frozenset({"InProgress", "Stopping"})  # a reviewer may still answer: keep the task alive
REPLAY_SOURCE = "vidmod"
REPLAY_DETAIL_TYPE = "vidmod.humanLoopReplay"
