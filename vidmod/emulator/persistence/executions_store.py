"""Step Functions on disk: a journal of each execution's start, its history events as they happen, its end.

Records (one journal, ``stepfunctions.journal``), each naming the execution's ARN and start time — an
*attempt*, since an execution a crash interrupted is started again under its own name:

- ``start``: state machine, name, input, start time — journaled before StartExecution answers;
- ``event``: one history event, journaled as the engine adds it;
- ``stop``: StopExecution accepted — journaled before it answers;
- ``callback``: SendTaskSuccess/Failure/Heartbeat accepted (who resumed what, and when, for the record);
- ``end``: status, stop time, output or error (compacted, with the whole history).

On load, an attempt with an end (or a stop) is a finished execution, restored read-only with its history; the
newest attempt of a name without one was running, and is started again under the same name and input (the
workflow is built for re-runs: same Rekognition job, same human loop, the decision keyed by execution name).
The unfinished attempt's events are kept in ``stepfunctions/interrupted/`` as JSON, so what happened before
the crash is still on disk. The journal is compacted on every load.
"""

from __future__ import annotations

import datetime
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from vidmod.emulator import journal


@dataclass
class Attempt:
    arn: str
    started: str  # ISO start time: tells a re-run from the attempt a crash interrupted
    state_machine_arn: str = ""
    name: str = ""
    input: str = "{}"
    start_date: datetime.datetime | None = None
    events: list[dict] = field(default_factory=list)
    end: dict | None = None
    stop: dict | None = None


def _attempt_key(arn: str, start_date) -> tuple[str, str]:
    return arn, start_date.isoformat() if hasattr(start_date, "isoformat") else str(start_date)


class _FinishedWorker:
    """Stands in for the worker of an execution that ended before the restart: its history, no callbacks."""

    def __init__(self, events: list[dict]):
        self.env = SimpleNamespace(
            event_manager=SimpleNamespace(get_event_history=lambda: events),
            callback_pool_manager=SimpleNamespace(notify=lambda **_: False, heartbeat=lambda **_: False),
        )


class ExecutionsStore:
    def __init__(self, directory: Path, account: str, region: str):
        self.directory = Path(directory)
        self.path = self.directory / "stepfunctions.journal"
        self.interrupted_dir = self.directory / "stepfunctions" / "interrupted"
        self.account, self.region = account, region
        self._journal: journal.Journal | None = None
        self._suspended = threading.Event()
        self.finished: list[Attempt] = []
        self.interrupted: list[Attempt] = []

    # ------------------------------------------------------------------ load
    def load(self) -> None:
        attempts: dict[tuple[str, str], Attempt] = {}
        for record in journal.read(self.path):
            key = (record["arn"], record["started"])
            attempt = attempts.setdefault(key, Attempt(record["arn"], record["started"]))
            kind = record["kind"]
            if kind == "start":
                attempt.state_machine_arn, attempt.name = record["stateMachineArn"], record["name"]
                attempt.input, attempt.start_date = record["input"], record["startDate"]
            elif kind == "event":
                attempt.events.append(record["event"])
            elif kind == "end":
                attempt.end = record
                attempt.events = record.get("events", attempt.events)  # compacted ends carry the history
            elif kind == "stop":
                attempt.stop = record
        newest: dict[str, Attempt] = {}
        for attempt in attempts.values():
            if not attempt.name:  # events of an attempt whose start record a kill cut off: it never answered
                continue
            if attempt.end is not None or attempt.stop is not None:
                self.finished.append(attempt)
                continue
            self._keep_interrupted(attempt)
            if attempt.arn not in newest or attempt.started > newest[attempt.arn].started:
                newest[attempt.arn] = attempt
        finished_arns = {attempt.arn for attempt in self.finished}
        self.interrupted = [attempt for arn, attempt in newest.items() if arn not in finished_arns]
        journal.rewrite(self.path, self._compacted())
        self._journal = journal.Journal(self.path)

    def _keep_interrupted(self, attempt: Attempt) -> None:
        if not attempt.events:
            return
        self.interrupted_dir.mkdir(parents=True, exist_ok=True)
        stamp = attempt.started.replace(":", "").replace("+", "_")
        journal.atomic_write(
            self.interrupted_dir / f"{attempt.name}.{stamp}.json",
            json.dumps({"executionArn": attempt.arn, "input": attempt.input, "events": attempt.events}, default=str,
                       indent=1).encode(),
        )  # fmt: skip

    def _compacted(self):
        for attempt in self.finished:
            yield self._start_record(attempt.arn, attempt.started, attempt.state_machine_arn, attempt.name,
                                     attempt.input, attempt.start_date)  # fmt: skip
            yield (attempt.end or self._end_from_stop(attempt)) | {"events": attempt.events}
        for attempt in self.interrupted:  # started again right after the load, which journals a new attempt
            yield self._start_record(attempt.arn, attempt.started, attempt.state_machine_arn, attempt.name,
                                     attempt.input, attempt.start_date)  # fmt: skip

    @staticmethod
    def _start_record(arn, started, machine, name, execution_input, start_date) -> dict:
        return {"kind": "start", "arn": arn, "started": started, "stateMachineArn": machine, "name": name,
                "input": execution_input, "startDate": start_date}  # fmt: skip

    @staticmethod
    def _end_from_stop(attempt: Attempt) -> dict:
        """An execution stopped (StopExecution answered) before the kill let it record its own end."""
        return {"kind": "end", "arn": attempt.arn, "started": attempt.started, "status": ExecutionStatus.ABORTED,
                "stopDate": attempt.stop["stopDate"], "output": None, "error": None, "cause": None,
                "events": attempt.events}  # fmt: skip

    # ------------------------------------------------------------------ restore
    def restore_finished(self) -> int:
        """Attach finished executions to their (newly deployed) state machines; returns how many."""
        backend = stepfunctions_parser_backends[self.account][self.region]
        machines = {machine.arn: machine for machine in backend.state_machines}
        restored = 0
        for attempt in self.finished:
            machine = machines.get(attempt.state_machine_arn)
            if machine is None:
                continue
            end = attempt.end or self._end_from_stop(attempt)
            execution = Execution(
                name=attempt.name, sm_type=machine.sm_type, role_arn=machine.roleArn, exec_arn=attempt.arn,
                account_id=self.account, region_name=self.region, state_machine=machine,
                start_date=attempt.start_date, cloud_watch_logging_session=None, input_data=attempt.input,
                trace_header=None, activity_store={},
            )  # fmt: skip
            execution.exec_status = end["status"]
            execution.stop_date = end["stopDate"]
            execution.output, execution.error, execution.cause = end["output"], end["error"], end["cause"]
            execution.exec_worker = _FinishedWorker(attempt.events)
            machine.executions.append(execution)
            restored += 1
        return restored

    # ------------------------------------------------------------------ live records
    def suspend(self) -> None:
        """The stack is stopping: what executions do from now on (failing against a closed endpoint) is not
        recorded, so the ones still running are started again on the next start."""
        self._suspended.set()

    def _append(self, record: dict, sync: bool = True) -> None:
        if self._journal is not None and not self._suspended.is_set():
            self._journal.append(record, sync=sync)

    def started(self, execution) -> None:
        self._append(self._start_record(execution.exec_arn, _attempt_key(execution.exec_arn, execution.start_date)[1],
                                        execution.state_machine_arn, execution.name, execution.execution_input,
                                        execution.start_date))  # fmt: skip

    def history_event(self, arn: str, start_date, event: dict) -> None:
        # Written at once, fsync'd lazily: no client waits on it (the answers that do — start, stop, end — sync).
        record = {"kind": "event", "arn": arn, "started": _attempt_key(arn, start_date)[1], "event": event}
        self._append(record, sync=False)

    def stopped(self, execution) -> None:
        self._append({"kind": "stop", "arn": execution.exec_arn,
                      "started": _attempt_key(execution.exec_arn, execution.start_date)[1],
                      "stopDate": execution.stop_date or datetime.datetime.now(datetime.UTC)})  # fmt: skip

    def callback(self, operation: str, token: str) -> None:
        self._append({"kind": "callback", "arn": "", "started": "", "operation": operation, "token": token[-12:],
                      "at": datetime.datetime.now(datetime.UTC)})  # fmt: skip

    def ended(self, execution) -> None:
        self._append({
            "kind": "end", "arn": execution.exec_arn,
            "started": _attempt_key(execution.exec_arn, execution.start_date)[1],
            "status": execution.exec_status, "stopDate": execution.stop_date, "output": execution.output,
            "error": execution.error, "cause": execution.cause,
        })  # fmt: skip  (its history is the event records before it: this fsync makes them durable too)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()

