"""The metrics vidmod publishes: one name, unit and dimension set each (docs/metrics.md).

The template's dashboard and alarms are written against exactly these names, so they are spelled here once.
They go out as CloudWatch embedded metric format on stdout (Powertools Metrics): no PutMetricData call, no
extra permission, and the local stack's function logs show the same lines. Only the functions import this
module (each ships Powertools); the rest of the layer stays standard library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

# The template sets both for every function ("vidmod/<stack>", "vidmod"); the fallbacks keep a function
# that runs without them (a unit test, a stack without Globals) publishing under the same dimension set.
DEFAULT_NAMESPACE = "vidmod"
DEFAULT_SERVICE = "vidmod"

# archive_execution, once per finished execution (from the history it archives)
DECISIONS = "Decisions"  # Count; dimensions outcome (APPROVE, REJECT, ESCALATED, FAILED), source
REVIEW_LATENCY = "ReviewLatencySeconds"  # Seconds: HumanReview entered → the reviewer's verdict
MODERATION_JOB = "ModerationJobSeconds"  # Seconds: StartContentModeration → the job's final status
EXECUTION_FAILURES = "ExecutionFailures"  # Count; dimension error (the execution's error name)
ARCHIVE_FAILURES = "ArchiveFailures"  # Count: an archive attempt raised (Lambda retries, then the DLQ)
# review_heartbeat, every tick
OPEN_REVIEWS = "OpenReviews"  # Count of PENDING review tasks
OLDEST_OPEN_REVIEW_AGE = "OldestOpenReviewAgeSeconds"  # Seconds; 0 when none is open
# admission, whenever it changes or reads the moderation slots
MODERATION_QUEUE_LENGTH = "ModerationQueueLength"  # Count of executions waiting for a slot
MODERATION_SLOTS_IN_USE = "ModerationSlotsInUse"  # Count of slots held

# Decisions' source: who decided. Rules decide automatically; a failure's record (source "system",
# outcome FAILED or ESCALATED) is not a human's either.
AUTOMATIC, HUMAN = "automatic", "human"

COUNT, SECONDS = MetricUnit.Count, MetricUnit.Seconds


def decision_source(record_source: str) -> str:
    """The decision record's ``source`` (rules, human, system) → the metric's (automatic, human)."""
    return HUMAN if record_source == "human" else AUTOMATIC


def publish(figures: Mapping[str, tuple[MetricUnit, float]], **dimensions: str) -> None:
    """One EMF document: these metrics, all with the same dimensions (service plus ``dimensions``).

    Metrics whose dimensions differ are published by separate calls. ``EphemeralMetrics`` keeps no state
    between calls (``Metrics`` shares it across instances), so nothing leaks from one document into the next."""
    if not figures:
        return
    metrics = EphemeralMetrics(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
        service=os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE,
    )
    for name, value in dimensions.items():
        metrics.add_dimension(name=name, value=value)
    for name, (unit, value) in figures.items():
        metrics.add_metric(name=name, unit=unit, value=value)
    metrics.flush_metrics()
