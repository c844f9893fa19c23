"""Resume the waiting execution with what the loop produced: the reviewers' verdict, or why there is none.

A completed loop's output.json is parsed by ``vidmod_contracts.review_answers`` (the audit re-reads the same
file, and re-hashes the same bytes): every reviewer's answer (``humanAnswers``, one per TaskCount) is kept and
consolidated by the loop's consensus rule, with the agreement and when the review was requested. An answer
without exactly one overall decision (or a repeated reviewer, or an unknown rule) fails the task as
InvalidReviewOutput rather than leaving the execution waiting until its review timeout.
"""

from __future__ import annotations

import hashlib
import json

from loop_outcome import LoopOutcome

from vidmod_contracts.review_answers import InvalidReviewOutput, parse_output

FAILURE_ERRORS = {"Failed": "HumanLoopFailed", "Stopped": "HumanLoopStopped"}
# A2I's "Expired" is a review timeout (TaskAvailabilityLifetime): the workflow escalates, as on its own timeout.
EXPIRED_ERROR = "HumanLoopExpired"
CAUSE_CHARS = 32768  # Step Functions' limit for a task failure's cause


def read_output(s3, uri: str) -> tuple[dict, str]:
    """The A2I output and the SHA-256 of its bytes exactly as stored (the audit re-hashes the same object)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body), hashlib.sha256(body).hexdigest()


def resume(sfn, s3, token: str, outcome: LoopOutcome) -> str:
    """Send the verdict (or the failure) for one loop; returns what was sent."""
    if outcome.status == "Completed":
        output, sha256 = read_output(s3, outcome.output_uri)
        try:
            result = parse_output(output, outcome.output_uri, sha256, requested_at=outcome.creation_time)
        except InvalidReviewOutput as error:
            sfn.send_task_failure(taskToken=token, error="InvalidReviewOutput", cause=str(error)[:CAUSE_CHARS])
            return "InvalidReviewOutput"
        sfn.send_task_success(taskToken=token, output=json.dumps(result.to_dict()))
        return result.decision
    code = outcome.failure_code or outcome.status
    error = EXPIRED_ERROR if code == "Expired" else FAILURE_ERRORS.get(outcome.status, "HumanLoopFailed")
    cause = f"{code}: {outcome.failure_reason or 'no reason given'}"
    sfn.send_task_failure(taskToken=token, error=error, cause=cause[:CAUSE_CHARS])
    return error
