"""Driving the embedded stack from tests: the real template, ASL and handlers on moto's engine.

Rekognition answers come from scripts for keys a test registers (to force a path: throttling, FAILED,
pages, huge label lists) and from the real local detector for everything else.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from scripted_rekognition import ScriptedRekognition, detection

from vidmod.audit.history import waiting_in
from vidmod.emulator.stack import LocalStack, StackOptions

FAST = {"PollMinSeconds": "1", "PollMaxSeconds": "2"}
WEAPON = detection("Weapons", "Violence", 2, 82.5, 2000)


def executions_of(sfn, state_machine_arn: str, key: str) -> list[str]:
    """ARNs of the executions whose input names the video ``key`` (in-process stack or `vidmod local up`)."""
    arns = []
    for execution in sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if json.loads(described["input"])["video"]["key"] == key:
            arns.append(execution["executionArn"])
    return arns


def first_execution_of(sfn, state_machine_arn: str, key: str, timeout: float, interval: float = 0.5) -> str:
    """The first execution whose input names ``key``, waiting up to ``timeout`` seconds for the S3 event to start it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if arns := executions_of(sfn, state_machine_arn, key):
            return arns[0]
        time.sleep(interval)
    raise AssertionError(f"no execution started for {key}")


def start_stack(
    tmp_path_factory, state_dir=None, parameter_ranges: bool = True, **parameters
) -> tuple[LocalStack, ScriptedRekognition]:
    stack = LocalStack(
        StackOptions(
            state_dir=state_dir or tmp_path_factory.mktemp("vidmod"),
            parameters=FAST | parameters,
            parameter_ranges=parameter_ranges,
            schedule_scale=0.005,
        )
    )
    stack.start()
    scripted = ScriptedRekognition(fallback=stack.gateway.rekognition)
    stack.gateway.rekognition = scripted
    return stack, scripted


class Workflow:
    """What a test needs to drive and inspect executions."""

    def __init__(self, stack: LocalStack, scripted: ScriptedRekognition):
        self.stack, self.scripted = stack, scripted
        self.s3, self.sfn, self.ddb = stack.client("s3"), stack.client("stepfunctions"), stack.client("dynamodb")

    def upload(self, key: str, body: bytes = b"\x00" * 64) -> str:
        return self.s3.put_object(Bucket=self.stack.media_bucket, Key=key, Body=body).get("VersionId", "")

    def execution_for(self, key: str, timeout: float = 30) -> str:
        return first_execution_of(self.sfn, self.stack.state_machine_arn, key, timeout)

    def executions_for(self, key: str) -> list[str]:
        return executions_of(self.sfn, self.stack.state_machine_arn, key)

    def wait(self, arn: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = self.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.5)
        raise AssertionError(f"{arn} still running after {timeout} s: {self.states(arn)}")

    def wait_for_review(self, arn: str, timeout: float = 120) -> str:
        """Wait until the execution sleeps in HumanReview with its A2I loop started; returns the loop name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.history(arn)
            if waiting_in(events) == "HumanReview":
                loop = self._loop_of(arn)
                if self.stack.a2i.describe(loop)["HumanLoopStatus"] == "InProgress":
                    return loop
            if self.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                raise AssertionError(f"{arn} ended before review: {self.states(arn)}")
            time.sleep(0.5)
        raise AssertionError(f"no human loop for {arn}: {self.states(arn)}")

    def _loop_of(self, arn: str) -> str | None:
        for event in self.history(arn):
            if event.get("stateExitedEventDetails", {}).get("name") == "ValidateInput":
                return json.loads(event["stateExitedEventDetails"]["output"])["job"]["humanLoopName"]
        return None

    def history(self, arn: str) -> list[dict]:
        return self.sfn.get_execution_history(executionArn=arn)["events"]

    def states(self, arn: str) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history(arn) if "stateEnteredEventDetails" in e]

    def decision(self, arn: str) -> dict:
        name = arn.rsplit(":", 1)[-1]
        items = self.ddb.scan(TableName=self.stack.decisions_table)["Items"]
        matches = [{k: next(iter(v.values())) for k, v in i.items()} for i in items if i["executionName"]["S"] == name]
        assert len(matches) == 1, f"expected one decision record for {name}, got {len(matches)}"
        return matches[0]

    def review(self, loop: str, decision: str, reviewer: str = "alice", **verdicts) -> str:
        answer = {
            "decision-approve": {"value": decision == "APPROVE"},
            "decision-reject": {"value": decision == "REJECT"},
        }
        answer.update({k.replace("_", "-"): v for k, v in verdicts.items()})
        return self.stack.a2i.submit(loop, answer, reviewer, datetime.now(UTC))
