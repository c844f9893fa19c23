"""Local EventBridge: the template's rules, matched with moto's real event-pattern matcher.

Events come from the A2I runtime and the workflow (PutEvents through the gateway), from S3 (moto's
"Object Created" notification, hooked here) and from Step Functions (an execution's end, via ``engine``).
Matching targets (Lambda functions) run asynchronously, like EventBridge deliveries.

Delivery is at least once, as EventBridge's: every event is appended to ``events.jsonl`` (fsync'd) before
``publish`` returns — so before PutEvents answers — and each finished delivery adds a ``delivered`` line. On
start, ``redeliver`` sends every event a rule has not finished (the stack was killed or stopped first) again;
the consumers are idempotent. A torn last line (a kill mid-write) is reported and cut off. S3 events raised
inside a request are held (``deferring``) until the request's object is on disk, so an event never names an
object a crash could lose.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from moto.events.models import EventPattern

from vidmod.emulator.journal import fsync_directory

log = logging.getLogger(__name__)
Deliver = Callable[[str, dict], bool]  # (function, event) → True once finished (delivered, or retries spent)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRouter:
    def __init__(
        self, deliver: Deliver, log_path: Path | None = None, region: str = "us-east-1", account: str = "123456789012"
    ):
        self._deliver = deliver
        self._rules: list[tuple[str, EventPattern, str]] = []
        self._disabled: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="eventbridge")
        self._log_path = log_path
        self._log_file = None
        self._lock = threading.Lock()  # the event log file
        self._closing = threading.Lock()
        self._closed = False
        self._held = threading.local()
        self.region, self.account = region, account
        self.delivered: deque[tuple[str, dict]] = deque(maxlen=1000)  # the latest deliveries, for inspection

    def add_rule(self, name: str, pattern: dict, function_name: str) -> None:
        self._rules.append((name, EventPattern.load(json.dumps(pattern)), function_name))

    def matching(self, event: dict) -> list[tuple[str, str]]:
        return [
            (name, function)
            for name, pattern, function in self._rules
            if name not in self._disabled and pattern.matches_event(event)
        ]

    @contextlib.contextmanager
    def rule_disabled(self, name: str) -> Iterator[None]:
        """As ``aws events disable-rule``: events published meanwhile are not delivered to the rule's target
        (e.g. to fill a bucket with a library that predates the stack)."""
        self._disabled.add(name)
        try:
            yield
        finally:
            self._disabled.discard(name)

    def publish(self, event: dict) -> str:
        """Route one full EventBridge event (with id/time/account) to every matching rule's target; the event
        is on disk when this returns (or, inside ``deferring``, when that block ends)."""
        event.setdefault("version", "0")
        event.setdefault("id", str(uuid.uuid4()))
        event.setdefault("time", now_iso())
        event.setdefault("account", self.account)
        event.setdefault("region", self.region)
        event.setdefault("resources", [])
        held = getattr(self._held, "events", None)
        if held is not None:
            held.append(event)
            return event["id"]
        self._publish([event])
        return event["id"]

    @contextlib.contextmanager
    def deferring(self) -> Iterator[None]:
        """Hold the events published in this thread until the block ends (the request's writes are on disk)."""
        self._held.events = []
        try:
            yield
        finally:
            held, self._held.events = self._held.events, None
            if held:
                self._publish(held)

    def _publish(self, events: list[dict]) -> None:
        routed = [(event, self.matching(event)) for event in events]
        with self._closing:  # close() cannot shut the pool between this check and the submits
            self._write(*({"event": event, "matchedRules": [name for name, _ in targets]} for event, targets in routed))
            if self._closed:  # the stack is stopping: delivered on the next start (``redeliver``)
                return
            for event, targets in routed:
                for rule, function in targets:
                    self.delivered.append((function, event))
                    self._pool.submit(self._delivery, rule, function, event)

    def _delivery(self, rule: str, function: str, event: dict) -> None:
        try:
            finished = self._deliver(function, event)
        except Exception:
            log.exception("delivery of event %s to %s failed", event.get("id"), function)
            finished = False
        if finished:
            self._write({"delivered": event["id"], "rule": rule})

    def redeliver(self) -> int:
        """Send again every logged event a matching rule has not finished delivering; returns how many."""
        pending, finished = [], set()
        for entry in self._read():
            if "delivered" in entry:
                finished.add((entry["delivered"], entry["rule"]))
            elif "event" in entry and entry.get("delivered") is not False:
                pending.append(entry)
        count = 0
        with self._closing:
            for entry in pending:
                event = entry["event"]
                for rule, function in self.matching(event):
                    if rule in entry.get("matchedRules", []) and (event["id"], rule) not in finished:
                        self._pool.submit(self._delivery, rule, function, event)
                        count += 1
        return count

    def put_events(self, entries: list[dict]) -> dict:
        """The PutEvents API: entries in, EventIds out."""
        results = []
        for entry in entries:
            try:
                detail = json.loads(entry.get("Detail") or "{}")
            except json.JSONDecodeError:
                results.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is not valid JSON"})
                continue
            event = {
                "detail-type": entry.get("DetailType", ""),
                "source": entry.get("Source", ""),
                "resources": entry.get("Resources", []),
                "detail": detail,
            }
            if entry.get("Time"):
                event["time"] = str(entry["Time"])
            results.append({"EventId": self.publish(event)})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}

    def _read(self) -> list[dict]:
        """The log's entries; a torn last line (the stack was killed while writing it) is reported and cut off."""
        if self._log_path is None or not self._log_path.exists():
            return []
        data = self._log_path.read_bytes()
        entries, offset = [], 0
        for line in data.splitlines(keepends=True):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no end of line")
                entries.append(json.loads(line))
            except ValueError:
                log.warning("%s: the line at byte %d is torn (the stack was killed while writing it): skipped",
                            self._log_path, offset)  # fmt: skip
                with self._log_path.open("r+b") as out:
                    out.truncate(offset)
                break
            offset += len(line)
        return entries

    def _write(self, *entries: dict) -> None:
        if self._log_path is None:
            return
        data = "".join(json.dumps(entry, default=str) + "\n" for entry in entries).encode()
        with self._lock:
            if self._log_file is None:
                self._log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log_file = self._log_path.open("ab")
                fsync_directory(self._log_path.parent)
            self._log_file.write(data)
            self._log_file.flush()
            os.fsync(self._log_file.fileno())

    def close(self) -> None:
        """Stop delivering: deliveries under way finish, queued ones (and later events) wait for the next start."""
        with self._closing:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None


def s3_object_created_event(
    bucket: str, region: str, key: str, size: int, etag: str, version_id: str | None, reason: str = "PutObject"
) -> dict:
    """The shape S3 sends to EventBridge for "Object Created"."""
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": {"key": key, "size": size, "etag": etag, "sequencer": uuid.uuid4().hex[:18].upper()},
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": "123456789012",
        "source-ip-address": "127.0.0.1",
        "reason": reason,
    }
    if version_id and version_id != "null":
        detail["object"]["version-id"] = version_id
    return {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }


def _epoch_millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def execution_status_change_event(execution, account: str, region: str) -> dict:
    """The "Step Functions Execution Status Change" event AWS sends when ``execution`` (moto's) ends."""
    status = str(getattr(execution.exec_status, "value", execution.exec_status))
    output = execution.output if status == "SUCCEEDED" else None
    if output is not None and not isinstance(output, str):
        output = json.dumps(output, separators=(",", ":"))
    return {
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account,
        "region": region,
        "resources": [execution.exec_arn],
        "detail": {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _epoch_millis(execution.start_date),
            "stopDate": _epoch_millis(execution.stop_date),
            "input": execution.execution_input,
            "output": output,
            "inputDetails": {"included": True},
            "outputDetails": {"included": True} if output is not None else None,
            "error": execution.error,
            "cause": execution.cause,
        },
    }


def hook_s3_notifications(router: EventRouter, eventbridge_buckets: set[str]) -> None:
    """Send S3 "Object Created" events for the template's EventBridge-enabled buckets through the router.

    moto drops an empty ``EventBridgeConfiguration`` when parsing the bucket notification XML, so the
    buckets are named here (from the template) rather than read back from moto.
    """
    from moto.s3 import notifications

    original = getattr(notifications.send_event, "__wrapped__", notifications.send_event)

    def send_event(account_id, event_name, bucket, key) -> None:
        original(account_id, event_name, bucket, key)
        name = str(getattr(event_name, "value", event_name))  # e.g. "s3:ObjectCreated:Put"
        if bucket.name not in eventbridge_buckets or "ObjectCreated" not in name:
            return
        reason = {
            "Put": "PutObject",
            "Post": "PostObject",
            "Copy": "CopyObject",
            "CompleteMultipartUpload": "CompleteMultipartUpload",
        }.get(name.split(":")[-1], "PutObject")
        router.publish(
            s3_object_created_event(
                bucket.name, bucket.region_name, key.name, key.size, key.etag.replace('"', ""), key.version_id, reason
            )
        )

    send_event.__wrapped__ = original
    notifications.send_event = send_event
