"""What a human loop ended with, read from its A2I status-change event or, for a replay, from A2I itself.

start_human_review replays a loop that ended before its retried task stored the new token; the replay event
carries only the loop's name, so its status and output are asked of A2I, never taken from the event, and
only for loops of this deployment's flow definition.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from vidmod_contracts.human_loops import FINAL_STATUSES
from vidmod_contracts.times import iso_millis


@dataclass(frozen=True)
class LoopOutcome:
    name: str
    status: str | None
    failure_code: str | None = None
    failure_reason: str | None = None
    output_uri: str = ""  # A2I's output.json, for a Completed loop
    creation_time: str = ""  # when the loop was started: the review was requested then

    @classmethod
    def from_detail(cls, detail: dict) -> LoopOutcome:
        """The ``detail`` of a "SageMaker A2I HumanLoop Status Change" event."""
        return cls(
            name=detail["humanLoopName"],
            status=detail.get("humanLoopStatus"),
            failure_code=detail.get("failureCode"),
            failure_reason=detail.get("failureReason"),
            output_uri=(detail.get("humanLoopOutput") or {}).get("outputS3Uri", ""),
            creation_time=str(detail.get("creationTime") or ""),
        )

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def replayed_outcome(a2i, loop_name: str, flow_definition_arn: str | None) -> LoopOutcome | None:
    """The loop as A2I describes it; None when it no longer exists or is not one of ours."""
    try:
        loop = a2i.describe_human_loop(HumanLoopName=loop_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    if loop.get("FlowDefinitionArn") != flow_definition_arn:
        return None
    return LoopOutcome(
        name=loop_name,
        status=loop["HumanLoopStatus"],
        failure_code=loop.get("FailureCode"),
        failure_reason=loop.get("FailureReason"),
        output_uri=(loop.get("HumanLoopOutput") or {}).get("OutputS3Uri", ""),
        creation_time=iso_millis(loop["CreationTime"]) if loop.get("CreationTime") else "",
    )
