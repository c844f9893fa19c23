"""Local ``sagemaker-a2i-runtime``: human loops with A2I's validation, output layout and status events.

Loops persist as JSON files under ``<state dir>/a2i/`` (they survive a restart). Completing a loop writes
``output.json`` exactly where and how A2I writes it, then emits the "SageMaker A2I HumanLoop Status Change"
event through the local endpoint so the workflow resumes. A status change is saved before its event is
sent; an event that could not be sent stays pending (``EventEmitted: false`` in the loop's file) and is
re-sent by a background retry and by DescribeHumanLoop / StartHumanLoop on that loop (after a restart the
heartbeat's DescribeHumanLoop or the re-run task's StartHumanLoop sends it). A2I delivers these events at least
once, so a duplicate is harmless.

Besides A2I's own fields a loop's file keeps ``Acceptances`` ({reviewer: time the reviewer first opened
the task}), which the portal uses for ``acceptanceTime`` and to show who is reviewing a task.

Several reviewers per object: a flow definition's ``TaskCount`` (the template's ``ReviewersPerVideo``; kept in
each loop's file as the loop starts, as A2I keeps a loop on the flow definition it started with) is how many
distinct workers must answer. The loop stays InProgress until they have: each answer is saved with the loop
(``Answers``, in submission order, on disk before the reviewer is told it was saved), a worker who answered
cannot answer again, and the last answer writes one output.json with every answer in ``humanAnswers``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote

from vidmod.emulator.clients import local_client
from vidmod.emulator.journal import atomic_write
from vidmod_contracts.times import iso_millis

NAME = re.compile(r"[a-z0-9](-*[a-z0-9])*")  # always used with fullmatch ("abc\n" is not a name)
MAX_INPUT = 3_145_728
MAX_RESULTS = 100
RETRY_DELAYS = (0.5, 1, 2, 4, 8, 15, 30)  # seconds between attempts to send a pending status event
TASK_COUNTS = range(1, 4)  # CreateFlowDefinition's TaskCount: 1-3 workers per object
log = logging.getLogger(__name__)


class A2IError(Exception):
    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _parse_time(text: str, field: str) -> datetime:
    """An ISO 8601 timestamp (botocore's querystring format) or epoch seconds."""
    try:
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except ValueError:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError) as error:
        raise A2IError("ValidationException", f"{field} is not a timestamp: {text!r}", 400) from error


def valid_name(name: object) -> bool:
    return isinstance(name, str) and 1 <= len(name) <= 63 and NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Submission:
    """What became of one answer: the loop's output.json once every answer it needs is in, else "" (waiting)."""

    output_uri: str
    answers: int  # answers the loop has now, this one included
    needed: int  # the loop's TaskCount

    @property
    def waiting_for(self) -> int:
        """How many more reviewers must answer before the loop completes."""
        return max(self.needed - self.answers, 0)


def answered_by(loop: dict) -> list[str]:
    """The workers who answered a loop still waiting for more answers, in submission order."""
    return [answer["workerId"] for answer in loop.get("Answers", [])]


class HumanLoopRuntime:
    def __init__(
        self,
        endpoint_url: str,
        state_dir: Path,
        flow_definitions: dict[str, str],
        region: str = "us-east-1",
        account: str = "123456789012",
        task_counts: dict[str, int] | None = None,
    ):
        """``flow_definitions``: ARN → S3 output path; ``task_counts``: ARN → workers per object (default 1)."""
        self.endpoint_url, self.region, self.account = endpoint_url, region, account
        self.flow_definitions = flow_definitions
        self.task_counts = dict(task_counts or {})
        for arn, count in self.task_counts.items():
            if count not in TASK_COUNTS:
                raise ValueError(f"TaskCount of {arn} must be 1-3 workers, not {count!r}")
        self.directory = Path(state_dir) / "a2i"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._retrier: threading.Thread | None = None
        self._media_cache: dict[str, tuple[tuple[int, int], tuple[str, str, str] | None]] = {}

    def resume(self) -> None:
        """Send the status events a stop or a crash left owed (once the event rules are in place)."""
        if self._pending():
            self._schedule_retry()

    # ------------------------------------------------------------------ storage
    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def _load(self, name: str) -> dict:
        if not valid_name(name) or not self._path(name).exists():
            raise A2IError("ResourceNotFoundException", f"Human loop {name} not found", 404)
        return json.loads(self._path(name).read_text(encoding="utf-8"))

    def _save(self, loop: dict) -> None:
        atomic_write(self._path(loop["HumanLoopName"]), json.dumps(loop).encode())  # on disk before we answer

    def _client(self, service: str):
        return local_client(service, self.endpoint_url, self.region)

    # ------------------------------------------------------------------ API
    def start_human_loop(self, name: str, flow_definition_arn: str, input_content: str) -> str:
        if not valid_name(name):
            raise A2IError(
                "ValidationException",
                "HumanLoopName must be 1-63 lowercase letters, digits and hyphens (^[a-z0-9](-*[a-z0-9])*$)",
                400,
            )
        if flow_definition_arn not in self.flow_definitions:
            raise A2IError("ValidationException", f"Flow definition {flow_definition_arn} does not exist", 400)
        if not isinstance(input_content, str) or len(input_content) > MAX_INPUT:
            raise A2IError(
                "ValidationException", f"InputContent must be a string of at most {MAX_INPUT} characters", 400
            )
        try:
            json.loads(input_content)
        except json.JSONDecodeError as error:
            raise A2IError("ValidationException", f"InputContent is not valid JSON: {error}", 400) from error
        with self._lock:
            if self._path(name).exists():
                existing = self._load(name)
                if existing["InputContent"] != input_content or existing["FlowDefinitionArn"] != flow_definition_arn:
                    raise A2IError("ConflictException", f"Human loop {name} already exists with different input", 409)
            else:
                loop = {
                    "HumanLoopName": name,
                    "FlowDefinitionArn": flow_definition_arn,
                    "InputContent": input_content,
                    "HumanLoopArn": f"arn:aws:sagemaker:{self.region}:{self.account}:human-loop/{name}",
                    "HumanLoopStatus": "InProgress",
                    "CreationTime": iso_millis(datetime.now(UTC)),
                    "TaskCount": self.task_counts.get(flow_definition_arn, 1),
                }
                self._save(loop)
                return loop["HumanLoopArn"]
        # Same name and input: A2I returns the existing loop whatever its status (Completed, Stopped...); the
        # caller sees that status with DescribeHumanLoop, and a status event still owed is sent now.
        self._flush(existing)
        return existing["HumanLoopArn"]

    def describe(self, name: str) -> dict:
        loop = self._load(name)
        self._flush(loop)
        return self._describe(loop)

    @staticmethod
    def _describe(loop: dict) -> dict:
        described = {
            k: loop[k]
            for k in ("CreationTime", "HumanLoopStatus", "HumanLoopName", "HumanLoopArn", "FlowDefinitionArn")
        }
        for key in ("FailureReason", "FailureCode"):
            if loop.get(key):
                described[key] = loop[key]
        if loop.get("OutputS3Uri"):
            described["HumanLoopOutput"] = {"OutputS3Uri": loop["OutputS3Uri"]}
        return described

    def input_content(self, name: str) -> dict:
        return json.loads(self._load(name)["InputContent"])

    def loops(self) -> list[dict]:
        loops = []
        for path in self.directory.glob("*.json"):
            try:
                loops.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):  # removed or half-written meanwhile
                continue
        return sorted(loops, key=lambda loop: loop["CreationTime"])

    def list_open(self) -> list[dict]:
        """Loops waiting for a reviewer, oldest first, with who opened them (``Acceptances``), who answered
        already (``Answered``, workerIds in submission order) and how many answers they need (``TaskCount``)."""
        return [
            self._describe(loop)
            | {
                "Acceptances": loop.get("Acceptances", {}),
                "Answered": answered_by(loop),
                "TaskCount": loop.get("TaskCount", 1),
            }
            for loop in self.loops()
            if loop["HumanLoopStatus"] == "InProgress"
        ]

    def answers(self, name: str) -> tuple[list[str], int]:
        """(the workers who answered so far, the answers the loop needs) of a loop."""
        loop = self._load(name)
        return answered_by(loop), loop.get("TaskCount", 1)

    def list_loops(
        self,
        flow_definition_arn: str,
        sort_order: str = "Descending",
        max_results: int | None = None,
        next_token: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> tuple[list[dict], str | None]:
        """ListHumanLoops: summaries of one flow definition's loops and the token of the next page."""
        if flow_definition_arn not in self.flow_definitions:
            raise A2IError("ResourceNotFoundException", f"Flow definition {flow_definition_arn} not found", 404)
        if sort_order not in ("Ascending", "Descending"):
            raise A2IError("ValidationException", "SortOrder must be Ascending or Descending", 400)
        limit = MAX_RESULTS if max_results is None else max_results
        if not 1 <= limit <= MAX_RESULTS:
            raise A2IError("ValidationException", f"MaxResults must be between 1 and {MAX_RESULTS}", 400)
        offset = 0
        if next_token:
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(next_token.encode()))["offset"])
            except (ValueError, KeyError, TypeError) as error:
                raise A2IError("ValidationException", "NextToken is not valid", 400) from error
        selected = []
        for loop in self.loops():
            created = _parse_time(loop["CreationTime"], "CreationTime")
            if loop["FlowDefinitionArn"] != flow_definition_arn:
                continue
            if (created_after and created < created_after) or (created_before and created > created_before):
                continue
            selected.append(loop)
        if sort_order == "Descending":
            selected.reverse()
        page = selected[offset : offset + limit]
        following = None
        if offset + limit < len(selected):
            following = base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
        summaries = [
            {
                "HumanLoopName": loop["HumanLoopName"],
                "HumanLoopStatus": loop["HumanLoopStatus"],
                "CreationTime": loop["CreationTime"],
                "FlowDefinitionArn": loop["FlowDefinitionArn"],
                **({"FailureReason": loop["FailureReason"]} if loop.get("FailureReason") else {}),
            }
            for loop in page
        ]
        return summaries, following

    def accept(self, name: str, reviewer: str) -> dict[str, str]:
        """A reviewer opened the task: remember when (the first opening counts; reloads do not reset it; a
        reviewer who answered already is not accepting it again).

        Returns every reviewer's first opening of this task, {reviewer: ISO time}, of those who have not answered.
        """
        with self._lock:
            loop = self._load(name)
            acceptances = loop.setdefault("Acceptances", {})
            opening = reviewer not in acceptances and reviewer not in answered_by(loop)
            if opening and loop["HumanLoopStatus"] == "InProgress":
                acceptances[reviewer] = iso_millis(datetime.now(UTC))
                self._save(loop)
            return dict(acceptances)

    def acceptances(self, name: str) -> dict[str, str]:
        """{reviewer: ISO time they first opened the task} of the reviewers of an open loop who have not answered."""
        return dict(self._load(name).get("Acceptances", {}))

    def media_references(self) -> dict[tuple[str, str], set[str]]:
        """{(bucket, key): {versionId or ""}} of the videos that open loops' InputContent refers to: a video is
        served while someone may review it, like A2I's short-lived links, not after its review ended."""
        references: dict[tuple[str, str], set[str]] = {}
        for path in self.directory.glob("*.json"):
            try:
                stat = path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
                cached = self._media_cache.get(path.name)
                if cached is None or cached[0] != stamp:
                    loop = json.loads(path.read_text(encoding="utf-8"))
                    video = json.loads(loop["InputContent"]).get("video")
                    uri = video.get("uri") if isinstance(video, dict) else None
                    reference = None
                    if loop.get("HumanLoopStatus") == "InProgress" and isinstance(uri, str) and uri.startswith("s3://"):
                        bucket, _, key = uri[5:].partition("/")
                        # versionId is sourceUri's version when uri is start_human_review's (unversioned) copy
                        pinned = "" if video.get("sourceUri") else str(video.get("versionId") or "")
                        reference = (bucket, key, pinned)
                    cached = self._media_cache[path.name] = (stamp, reference)
            except (OSError, ValueError, KeyError, AttributeError):
                continue
            if cached[1] is not None:
                bucket, key, version = cached[1]
                references.setdefault((bucket, key), set()).add(version)
        return references

    def submit(self, name: str, answer_content: dict, worker_id: str, acceptance_time: datetime | None = None) -> str:
        """A reviewer's answer (see ``answer``); returns the loop's output.json, or "" while it needs more answers."""
        return self.answer(name, answer_content, worker_id, acceptance_time).output_uri

    def answer(
        self, name: str, answer_content: dict, worker_id: str, acceptance_time: datetime | None = None
    ) -> Submission:
        """A reviewer's answer, saved once per worker; the last of the TaskCount answers writes output.json (A2I's
        format and path, every answer in submission order) and completes the loop, then the status event.

        ``acceptance_time`` defaults to when ``worker_id`` first opened the task (``accept``). Raises A2IError when
        the answer was not saved (ConflictException: the loop is not open, or this worker answered it already);
        once it is saved the call succeeds even if the status event cannot be sent yet (it is retried).
        """
        with self._lock:
            loop = self._load(name)
            if loop["HumanLoopStatus"] != "InProgress":
                raise A2IError(
                    "ConflictException",
                    f"Human loop {name} is {loop['HumanLoopStatus']}: it cannot be submitted again",
                    409,
                )
            if worker_id in answered_by(loop):
                raise A2IError(
                    "ConflictException",
                    f"{worker_id} has already answered human loop {name}: a reviewer answers a task once",
                    409,
                )
            now = datetime.now(UTC)
            acceptances = dict(loop.get("Acceptances", {}))
            if acceptance_time is None:
                accepted = acceptances.get(worker_id)
                acceptance_time = _parse_time(accepted, "acceptanceTime") if accepted else now
            acceptance_time = min(acceptance_time, now)
            answers = [
                *loop.get("Answers", []),
                {
                    "acceptanceTime": iso_millis(acceptance_time),
                    "submissionTime": iso_millis(now),
                    "timeSpentInSeconds": round((now - acceptance_time).total_seconds(), 3),
                    "workerId": worker_id,
                    "workerMetadata": {
                        "identityData": {"identityProviderType": "Oidc", "issuer": "vidmod-local", "sub": worker_id}
                    },
                    "answerContent": answer_content,
                },
            ]
            acceptances.pop(worker_id, None)
            needed = loop.get("TaskCount", 1)
            if len(answers) < needed:  # kept with the loop (on disk before the reviewer hears it was saved)
                try:
                    self._save(loop | {"Answers": answers, "Acceptances": acceptances})
                except Exception as error:
                    raise A2IError(
                        "InternalServerException", f"Your answer was not saved ({error}); please submit again", 500
                    ) from error
                return Submission("", len(answers), needed)
            prefix = self.flow_definitions[loop["FlowDefinitionArn"]].rstrip("/")
            flow_name = loop["FlowDefinitionArn"].rsplit("/", 1)[-1]
            uri = f"{prefix}/{flow_name}/{now:%Y/%m/%d/%H/%M/%S}/{name}/output.json"
            output = {
                "flowDefinitionArn": loop["FlowDefinitionArn"],
                "humanLoopName": name,
                "inputContent": json.loads(loop["InputContent"]),
                "humanAnswers": answers,
            }
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            try:
                self._client("s3").put_object(
                    Bucket=bucket, Key=key, Body=json.dumps(output).encode(), ContentType="application/json"
                )
                loop.pop("Acceptances", None)
                loop.pop("Answers", None)  # output.json holds them now
                loop.update(HumanLoopStatus="Completed", OutputS3Uri=uri, EventEmitted=False)
                self._save(loop)
            except Exception as error:  # any storage failure: the answer was not saved
                raise A2IError(
                    "InternalServerException", f"Your answer was not saved ({error}); please submit again", 500
                ) from error
        self._flush(loop)
        return Submission(uri, len(answers), needed)

    def stop(self, name: str) -> None:
        with self._lock:
            loop = self._load(name)
            if loop["HumanLoopStatus"] != "InProgress":
                return
            loop.update(HumanLoopStatus="Stopped", EventEmitted=False)
            self._save(loop)
        self._flush(loop)

    def fail(self, name: str, code: str, reason: str) -> None:
        with self._lock:
            loop = self._load(name)
            loop.update(HumanLoopStatus="Failed", FailureCode=code, FailureReason=reason, EventEmitted=False)
            self._save(loop)
        self._flush(loop)

    def delete(self, name: str) -> None:
        with self._lock:
            self._load(name)
            self._path(name).unlink()

    # ------------------------------------------------------------------ status events
    def _pending(self) -> list[dict]:
        return [loop for loop in self.loops() if loop.get("EventEmitted") is False]

    def _flush(self, loop: dict) -> bool:
        """Send the loop's status event if it is still owed; True when nothing is owed any more."""
        if loop.get("EventEmitted") is not False:
            return True
        try:
            self._emit(loop)
        except Exception:  # endpoint down, rule target failing...: retried later
            log.warning("status event for human loop %s not sent; retrying", loop["HumanLoopName"], exc_info=True)
            self._schedule_retry()
            return False
        with self._lock:
            try:
                current = self._load(loop["HumanLoopName"])
            except A2IError:  # deleted meanwhile
                return True
            if current["HumanLoopStatus"] == loop["HumanLoopStatus"] and current.get("EventEmitted") is False:
                current["EventEmitted"] = True
                self._save(current)
        loop["EventEmitted"] = True
        return True

    def _schedule_retry(self) -> None:
        with self._lock:
            if self._closed.is_set() or self._retrier is not None:
                return
            self._retrier = threading.Thread(target=self._retry_pending, name="a2i-event-retry", daemon=True)
            self._retrier.start()

    def _retry_pending(self) -> None:
        """Re-send owed events with growing pauses until none is owed (or the runtime closes)."""
        attempt = 0
        while not self._closed.wait(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]):
            for loop in self._pending():
                self._flush(loop)
            with self._lock:  # a failure recorded after this check schedules a new thread
                if not self._pending():
                    self._retrier = None
                    return
            attempt += 1
        with self._lock:
            self._retrier = None

    def _emit(self, loop: dict) -> None:
        detail = {
            "creationTime": loop["CreationTime"],
            "failureCode": loop.get("FailureCode"),
            "failureReason": loop.get("FailureReason"),
            "flowDefinitionArn": loop["FlowDefinitionArn"],
            "humanLoopArn": loop["HumanLoopArn"],
            "humanLoopName": loop["HumanLoopName"],
            "humanLoopOutput": {"outputS3Uri": loop.get("OutputS3Uri", "")},
            "humanLoopStatus": loop["HumanLoopStatus"],
        }
        response = self._client("events").put_events(
            Entries=[
                {
                    "Source": "aws.sagemaker",
                    "DetailType": "SageMaker A2I HumanLoop Status Change",
                    "Detail": json.dumps(detail),
                    "Resources": [loop["HumanLoopArn"]],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents rejected the status event: {response.get('Entries')}")

    # ------------------------------------------------------------------ rest-json wire format
    def wsgi_app(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            try:
                request = json.loads(body or b"{}")
            except ValueError as error:
                raise A2IError("ValidationException", f"request body is not JSON: {error}", 400) from error
            status, payload = self._route(method, path, request, parse_qs(environ.get("QUERY_STRING", "")))
            headers = [("Content-Type", "application/json")]
        except A2IError as error:
            status, payload = error.status, {"message": error.message}
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error.code)]
        data = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}.get(status, "Error")
        start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(data)))])
        return [data]

    def _route(self, method: str, path: str, body: dict, query: dict) -> tuple[int, dict]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "POST" and parts == ["human-loops"]:
            arn = self.start_human_loop(
                body.get("HumanLoopName", ""),
                body.get("FlowDefinitionArn", ""),
                (body.get("HumanLoopInput") or {}).get("InputContent", ""),
            )
            return 200, {"HumanLoopArn": arn}
        if method == "POST" and parts == ["human-loops", "stop"]:
            self.stop(body.get("HumanLoopName", ""))
            return 200, {}
        if method == "GET" and parts == ["human-loops"]:
            return 200, self._list_request(query)
        if len(parts) == 2 and parts[0] == "human-loops":
            if method == "GET":
                return 200, self.describe(parts[1])
            if method == "DELETE":
                self.delete(parts[1])
                return 200, {}
        raise A2IError("ValidationException", f"{method} {path} is not an A2I runtime operation", 400)

    def _list_request(self, query: dict) -> dict:
        def one(key: str) -> str | None:
            return (query.get(key) or [None])[0]

        max_results = one("MaxResults")
        try:
            limit = int(max_results) if max_results is not None else None
        except ValueError as error:
            raise A2IError("ValidationException", "MaxResults must be an integer", 400) from error
        after, before = one("CreationTimeAfter"), one("CreationTimeBefore")
        summaries, following = self.list_loops(
            one("FlowDefinitionArn") or "",
            sort_order=one("SortOrder") or "Descending",
            max_results=limit,
            next_token=one("NextToken"),
            created_after=_parse_time(after, "CreationTimeAfter") if after else None,
            created_before=_parse_time(before, "CreationTimeBefore") if before else None,
        )
        return {"HumanLoopSummaries": summaries, **({"NextToken": following} if following else {})}

    def close(self) -> None:
        self._closed.set()
