"""What the embedded stack keeps across a restart: ``<state dir>/stack.pickle``.

AWS keeps objects, items and execution histories; a laptop stack that forgot them on Ctrl-C would lose
pending reviews and every audit trail. When the stack stops it saves:

- S3 and DynamoDB: moto's backends as they are (moto supports pickling them), so objects keep their
  version ids and tags and execution names, decision records and audits still line up after a restart.
- Step Functions: every finished execution with its full history, restored read-only (ListExecutions,
  DescribeExecution and GetExecutionHistory answer as before; StartExecution with a finished name is
  refused as in AWS), and the name and input of every execution still running. Those are started again
  under the same name on the next start: the workflow is built for re-runs (the Rekognition
  ClientRequestToken returns the same job, the A2I loop name is deterministic so a waiting review keeps
  its place in the queue, the decision record is keyed by execution name). The re-run's history starts
  at the restart, and a review's time limit counts from there.

Detector jobs, human loops and the event log are written to the state directory as they change. The
snapshot holds moto objects, so it is tied to the pinned moto version; it is the user's own file (pickle
runs code when loaded: do not load one from someone else). Like ``moto_patches``, this module depends on moto
internals; ``tests/emulator/test_moto_patches.py`` fails loudly if an upgrade moves them.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

from moto.dynamodb.models import dynamodb_backends
from moto.s3.models import s3_backends
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

SNAPSHOT_FILE = "stack.pickle"


class SnapshotError(RuntimeError):
    """The saved state cannot be loaded by this version of vidmod."""


@dataclass
class Snapshot:
    moto_version: str
    saved_at: datetime
    backends: dict[str, object]  # "s3" / "dynamodb" → moto backend object
    finished: list[dict] = field(default_factory=list)  # executions that ended, with their history
    interrupted: list[dict] = field(default_factory=list)  # {"stateMachineArn", "name", "input"}


def _backends(account: str, region: str) -> dict[str, object]:
    return {"s3": s3_backends[account]["aws"], "dynamodb": dynamodb_backends[account][region]}


def _executions(account: str, region: str):
    for machine in stepfunctions_parser_backends[account][region].state_machines:
        for execution in machine.executions:
            yield machine, execution


def capture(account: str, region: str) -> Snapshot:
    """Everything to save, read from moto's backends (call once nothing else writes to them)."""
    snapshot = Snapshot(version("moto"), datetime.now(UTC), _backends(account, region))
    for machine, execution in _executions(account, region):
        if execution.status == ExecutionStatus.RUNNING:
            snapshot.interrupted.append(
                {"stateMachineArn": machine.arn, "name": execution.name, "input": execution.execution_input}
            )
            continue
        snapshot.finished.append(
            {
                "stateMachineArn": machine.arn,
                "name": execution.name,
                "arn": execution.exec_arn,
                "input": execution.execution_input,
                "startDate": execution.start_date,
                "stopDate": execution.stop_date,
                "status": execution.exec_status,
                "output": execution.output,
                "error": execution.error,
                "cause": execution.cause,
                "events": execution.to_history_output()["events"],
            }
        )
    return snapshot


def save(state_dir: Path, snapshot: Snapshot) -> Path:
    """Write the snapshot atomically: a crash while saving leaves the previous one in place."""
    path = Path(state_dir) / SNAPSHOT_FILE
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        pickle.dump(snapshot, out, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
    return path


def load(state_dir: Path) -> Snapshot | None:
    path = Path(state_dir) / SNAPSHOT_FILE
    if not path.exists():
        return None
    try:
        with path.open("rb") as saved:
            snapshot = pickle.load(saved)  # noqa: S301 - the stack's own file in the user's state directory
    except Exception as error:
        raise SnapshotError(
            f"cannot read the saved stack state {path}: {error}. Move it aside to start empty."
        ) from error
    if snapshot.moto_version != version("moto"):
        raise SnapshotError(
            f"{path} was saved with moto {snapshot.moto_version}; this vidmod runs moto {version('moto')}. "
            "Move it aside to start empty."
        )
    return snapshot


def restore_storage(snapshot: Snapshot, account: str, region: str) -> None:
    """Put the saved S3 objects and DynamoDB items back (in place: moto's lookups keep their backend)."""
    for name, live in _backends(account, region).items():
        live.__dict__ = snapshot.backends[name].__dict__


class _FinishedWorker:
    """Stands in for the worker of an execution that ended before the restart: its history, no callbacks."""

    def __init__(self, events: list[dict]):
        self.env = SimpleNamespace(
            event_manager=SimpleNamespace(get_event_history=lambda: events),
            callback_pool_manager=SimpleNamespace(notify=lambda **_: False, heartbeat=lambda **_: False),
        )


def restore_executions(snapshot: Snapshot, account: str, region: str) -> int:
    """Attach finished executions to their (newly deployed) state machines; returns how many."""
    backend = stepfunctions_parser_backends[account][region]
    machines = {machine.arn: machine for machine in backend.state_machines}
    restored = 0
    for record in snapshot.finished:
        machine = machines.get(record["stateMachineArn"])
        if machine is None:
            continue
        execution = Execution(
            name=record["name"],
            sm_type=machine.sm_type,
            role_arn=machine.roleArn,
            exec_arn=record["arn"],
            account_id=account,
            region_name=region,
            state_machine=machine,
            start_date=record["startDate"],
            cloud_watch_logging_session=None,
            input_data=record["input"],
            trace_header=None,
            activity_store={},
        )
        execution.exec_status = record["status"]
        execution.stop_date = record["stopDate"]
        execution.output, execution.error, execution.cause = record["output"], record["error"], record["cause"]
        execution.exec_worker = _FinishedWorker(record["events"])
        machine.executions.append(execution)
        restored += 1
    return restored
