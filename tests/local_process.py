"""``vidmod local up`` as a real process, for tests that kill it (SIGKILL) and start it again on its state.

``LocalProcess`` starts the stack as a user does, waits until it says it is up, and gives the clients and the
few lookups the crash tests need: the execution of an uploaded key, its states, its human loop, decision
records, a reviewer's answer submitted through the portal over HTTP as the task page sends it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from harness import executions_of, first_execution_of

from vidmod.audit.history import waiting_in
from vidmod.emulator.clients import local_client

MEDIA = "vidmod-mediabucket"
DECISIONS = "vidmod-DecisionsTable"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:vidmod-ModerationStateMachine"
FAST = ("PollMinSeconds=1", "PollMaxSeconds=2")


class LocalProcess:
    def __init__(self, state_dir: Path, *parameters: str):
        self.state_dir = Path(state_dir)
        self.parameters = parameters or FAST
        self.process: subprocess.Popen | None = None
        self.starts = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 120) -> LocalProcess:
        self.starts += 1
        self.log = self.state_dir.parent / f"{self.state_dir.name}-run{self.starts}.log"
        # port 0: it binds free ports (held from the start) and prints which
        command = [sys.executable, "-m", "vidmod.cli.main", "local", "up", "--state-dir", str(self.state_dir),
                   "--port", "0", "--portal-port", "0"]  # fmt: skip
        for parameter in self.parameters:
            command += ["-p", parameter]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"NO_COLOR": "1", "COLUMNS": "200"}
            )
        deadline = time.monotonic() + timeout
        while "vidmod local stack is up" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"vidmod local up did not start:\n{self.output()}")
            time.sleep(0.1)
        self.endpoint = re.search(r"AWS endpoint : (http://\S+)", self.output()).group(1)
        self.portal = re.search(r"reviewer URL : (http://\S+)", self.output()).group(1).rstrip("/")
        self.s3, self.sfn = local_client("s3", self.endpoint), local_client("stepfunctions", self.endpoint)
        self.ddb = local_client("dynamodb", self.endpoint)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a power cut: nothing runs after it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> str:
        """SIGTERM, as `kill`, systemd or a container stop; returns what the stop printed."""
        before = len(self.output())
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        return self.output()[before:]

    # ------------------------------------------------------------------ lookups
    def executions_for(self, key: str) -> list[str]:
        return executions_of(self.sfn, MACHINE, key)

    def execution_for(self, key: str, timeout: float = 60) -> str:
        return first_execution_of(self.sfn, MACHINE, key, timeout, interval=0.3)

    def history(self, arn: str) -> list[dict]:
        return self.sfn.get_execution_history(executionArn=arn)["events"]

    def states(self, arn: str) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history(arn) if "stateEnteredEventDetails" in e]

    def wait_for(self, arn: str, predicate, what: str, timeout: float = 120, interval: float = 0.2) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.history(arn)
            if predicate(events):
                return events
            time.sleep(interval)
        raise AssertionError(f"{arn}: no {what} after {timeout} s; states {self.states(arn)}")

    def wait_for_review(self, arn: str, timeout: float = 120) -> str:
        """The human loop's name once the execution waits for a reviewer."""
        self.wait_for(arn, lambda events: waiting_in(events) == "HumanReview", "review", timeout)
        for event in self.history(arn):
            if event.get("stateExitedEventDetails", {}).get("name") == "ValidateInput":
                loop = json.loads(event["stateExitedEventDetails"]["output"])["job"]["humanLoopName"]
                a2i = local_client("sagemaker-a2i-runtime", self.endpoint)
                if a2i.describe_human_loop(HumanLoopName=loop)["HumanLoopStatus"] == "InProgress":
                    return loop
        raise AssertionError(f"{arn} waits in review without an open human loop")

    def wait_until_ended(self, arn: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = self.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.3)
        raise AssertionError(f"{arn} still running: {self.states(arn)}")

    def decisions(self, key: str) -> list[dict]:
        items = self.ddb.scan(TableName=DECISIONS, ConsistentRead=True)["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items if item["key"]["S"] == key]

    def answer(self, loop: str, decision: str, reviewer: str = "rita") -> dict:
        """A reviewer logs in to the portal and submits ``decision`` from the task page (over HTTP)."""
        with httpx.Client(base_url=self.portal, timeout=60) as client:
            token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text)[1]
            client.post("/login", data={"reviewer": reviewer, "csrf": token})
            answer = {f"decision-{choice.lower()}": {"value": decision == choice} for choice in ("APPROVE", "REJECT")}
            response = client.post(
                f"/tasks/{loop}/submit",
                content=json.dumps(answer),
                headers={"Content-Type": "application/json", "Origin": self.portal},
            )
        assert response.status_code == 200, response.text
        return response.json()

    def audit(self, arn: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "vidmod.cli.main", "audit", arn, "--endpoint-url", self.endpoint],
            capture_output=True, text=True, timeout=120, env=os.environ | {"NO_COLOR": "1"},
        )  # fmt: skip
