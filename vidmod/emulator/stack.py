"""Start the embedded stack: one local endpoint, the template's resources deployed on it, event wiring.

``LocalStack`` is what ``vidmod local up``, ``vidmod demo`` and the workflow tests use. Resources come from
template.yaml (see ``vidmod.emulator.template``); the engine patches from ``vidmod.emulator.moto_patches``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import secrets
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

from vidmod.emulator import lambda_service, moto_patches, persistence
from vidmod.emulator.clients import local_client
from vidmod.emulator.event_router import EventRouter, execution_status_change_event, hook_s3_notifications
from vidmod.emulator.gateway import Gateway
from vidmod.emulator.template import ACCOUNT, REGION, LocalResources, read_resources
from vidmod_contracts.moderation_slots import SlotTable, Usage

log = logging.getLogger(__name__)
# The engine logs a failing state with a dump of its whole state object: when the stack stops, the suspended
# executions fail against the closing endpoint, which is expected and not recorded, so it is silenced then.
ENGINE_LOG = logging.getLogger("moto.stepfunctions")
# The parser warns, on every start, that ToleratedFailurePercentage (the backfill's Distributed Map) has no
# effect locally: the backfill's processor catches every error, so nothing depends on it here.
logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor").setLevel(logging.ERROR)

ROOT = Path(__file__).resolve().parents[2]
FLOW_DEFINITION_NAME = "vidmod-local-review"
FLOW_DEFINITION_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/{FLOW_DEFINITION_NAME}"
# Local defaults that keep a laptop run snappy; every one is a template parameter, overridable.
# A local status check costs next to nothing, so the poll waits stay short (a job's end is seen within 3 s), and
# 400 checks of at most 3 s still allow a 20-minute analysis (a 4-hour video at the detector's ~15x).
LOCAL_PARAMETERS = {
    "FlowDefinitionArn": FLOW_DEFINITION_ARN,
    "PollMinSeconds": "2",
    "PollMaxSeconds": "3",
    "PollMaxAttempts": "400",
}
ASYNC_RETRY_SECONDS = 1.0  # Lambda waits 1 then 2 minutes between retries of an asynchronous event; seconds here


def local_resources(stack_name: str = "vidmod", overrides: dict[str, str] | None = None) -> LocalResources:
    """What the template deploys locally (names, ARNs, settings), as a command talking to a running stack sees it."""
    return read_resources(ROOT, stack_name, LOCAL_PARAMETERS | (overrides or {}))


@dataclass
class StackOptions:
    root: Path = ROOT
    state_dir: Path = Path(".vidmod")
    stack_name: str = "vidmod"
    host: str = "127.0.0.1"
    port: int = 0
    parameters: dict[str, str] = field(default_factory=dict)
    parameter_ranges: bool = True  # check MinValue/MaxValue (tests turn it off to shrink time limits)
    schedule_scale: float = 1.0  # Schedule events fire every (rate × scale) seconds locally
    persist: bool = True  # keep S3, DynamoDB, executions and events on disk as they change (``persistence``)
    rekognition: Callable | None = None  # WSGI app; default: the local detector
    a2i_runtime: object | None = None  # default: vidmod.emulator.a2i.HumanLoopRuntime
    on_detector_progress: Callable[[dict], None] | None = None  # the local detector's per-job progress (CLI)


@dataclass
class RestoreReport:
    """What a start brought back from the state directory."""

    saved_at: object = None  # when the state directory was last written, None when the stack started empty
    finished: int = 0
    rerun: list[str] = field(default_factory=list)
    objects: int = 0
    redelivered: int = 0


class LocalStack:
    def __init__(self, options: StackOptions | None = None):
        self.options = options or StackOptions()
        self.options.state_dir = Path(self.options.state_dir).resolve()
        self.resources: LocalResources = read_resources(
            self.options.root,
            self.options.stack_name,
            LOCAL_PARAMETERS | self.options.parameters,
            ranges=self.options.parameter_ranges,
        )
        self.router = EventRouter(self._deliver, self.options.state_dir / "events.jsonl")
        self.gateway = Gateway(self.router)
        self.endpoint_url = ""
        self.detector = None
        self.a2i = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.restored = RestoreReport()
        self.store = persistence.StateStore(self.options.state_dir, ACCOUNT, REGION) if self.options.persist else None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalStack:
        ENGINE_LOG.setLevel(logging.NOTSET)
        self.options.state_dir.mkdir(parents=True, exist_ok=True)
        if self.store is not None:
            self.store.open()  # refuses another format before anything is written
        self.endpoint_url = self.gateway.start(self.options.host, self.options.port)
        moto_patches.install(self.endpoint_url, self._engine_listeners())
        lambda_service.configure(self.endpoint_url, REGION, self.options.state_dir / "logs")
        hook_s3_notifications(self.router, {b["name"] for b in self.resources.buckets.values() if b["eventbridge"]})
        self.gateway.rekognition = self.options.rekognition or self._local_detector()
        self.a2i = self.options.a2i_runtime or self._local_a2i()
        self.gateway.a2i = self.a2i.wsgi_app
        self.deploy()
        for service in (self.detector, self.a2i):  # interrupted jobs and owed events, now that S3 and rules exist
            if hasattr(service, "resume"):
                service.resume()
        if self.store is not None:
            self.gateway.on_write = self._durable_request
            self._rerun()
            self.restored.redelivered = self.router.redeliver()
        for schedule in self.resources.schedules:
            self._every(schedule["seconds"] * self.options.schedule_scale, schedule["function"])
        return self

    def stop(self) -> None:
        """Stop cleanly: nothing is left to save (everything acknowledged is on disk already); executions still
        running are suspended — what they do against the closing endpoint is not recorded — and start again on
        the next start; deliveries not finished are redelivered then."""
        if self.store is not None:
            self.store.suspend()
        ENGINE_LOG.setLevel(logging.CRITICAL + 1)
        self._stop.set()
        if getattr(self, "_portal", None) is not None:
            self._portal.should_exit = True
        for closable in (self.detector, self.a2i):
            if closable is not None and hasattr(closable, "close"):
                closable.close()
        self.router.close()
        self.gateway.stop()  # waits for the requests under way
        lambda_service.shutdown()
        if self.store is not None:
            self.store.close()

    def _engine_listeners(self) -> moto_patches.Listeners:
        listeners = moto_patches.Listeners(on_execution_end=self._execution_ended)
        if self.store is not None:
            executions = self.store.executions
            listeners.on_execution_start = executions.started
            listeners.on_execution_stop = executions.stopped
            listeners.on_history_event = executions.history_event
            listeners.on_callback = executions.callback
        return listeners

    @contextlib.contextmanager
    def _durable_request(self, environ: dict) -> Iterator[None]:
        """Around a write that moto serves: its changes reach the disk before the answer leaves the gateway,
        and the S3 events it raised are published (durably) after that."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        tables, items = _items_named(environ) if target.startswith("DynamoDB_") else (None, None)
        with self.router.deferring():
            try:
                yield
            finally:  # a request moto refused half-way may still have changed something
                if target.startswith("DynamoDB_"):
                    self.store.commit(s3=False, tables=tables, items=items)
                elif not target and not _multipart_in_progress(environ):  # S3 (or a REST API naming no bucket)
                    buckets, key = _s3_object_named(environ)
                    self.store.commit(buckets, key=key, tables=False)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ services
    def _local_detector(self):
        from vidmod.emulator.rekognition import ContentModerationService

        self.detector = ContentModerationService(
            self.endpoint_url,
            self.options.state_dir,
            max_video_bytes=int(self.resources.parameters["MaxVideoBytes"]),
            on_progress=self.options.on_detector_progress,
            paused=True,
        )
        return self.detector.wsgi_app

    def _local_a2i(self):
        from vidmod.emulator.a2i import HumanLoopRuntime

        output = f"s3://{self.resources.bucket_name('ResultsBucket')}/a2i-output"
        # The flow definition's TaskCount: how many distinct reviewers answer each video (loops keep their own).
        reviewers = int(self.resources.parameters.get("ReviewersPerVideo", "1"))
        return HumanLoopRuntime(
            self.endpoint_url,
            self.options.state_dir,
            {FLOW_DEFINITION_ARN: output},
            task_counts={FLOW_DEFINITION_ARN: reviewers},
        )

    def start_portal(self, port: int = 0) -> str:
        """Serve the reviewer portal (renders ui/) on 127.0.0.1; returns its URL."""
        import time

        import uvicorn

        from vidmod.emulator.portal.app import create_app

        routes = []
        try:
            from vidmod.emulator.portal.audit_pages import audit_routes
        except ImportError:
            audit_routes = None
        if audit_routes is not None:
            routes = audit_routes(
                self.endpoint_url,
                self.state_machine_arn,
                self.decisions_table,
                self.resources.bucket_name("AuditBucket"),
                self.resources.state_machines.get("AuditStateMachine", {}).get("arn", ""),
            )
        from vidmod.emulator.portal.metrics_pages import metrics_routes

        routes = [*routes, *metrics_routes(self.endpoint_url, self.decisions_table)]
        app = create_app(
            self.a2i,
            self.endpoint_url,
            self.options.root / "ui" / "moderation-review.liquid.html",
            extra_routes=routes,
            secret_key=self._portal_secret(),
            slot_usage=self.slot_usage,
        )
        server = uvicorn.Server(uvicorn.Config(app, host=self.options.host, port=port, log_level="warning"))

        def serve() -> None:
            with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind; reported below
                server.run()

        thread = threading.Thread(target=serve, name="vidmod-portal", daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():  # uvicorn logged the bind error and gave up
                where = f"{self.options.host}:{port}"
                raise OSError(f"the reviewer portal cannot listen on {where} (in use? --portal-port)")
            time.sleep(0.05)
        self._portal = server
        bound = server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.options.host}:{bound}/"

    def _portal_secret(self) -> str:
        """The key that signs reviewers' session cookies, kept in the state directory (owner-only), so a restart
        does not log out a reviewer halfway through a task."""
        path = self.options.state_dir / "portal-secret"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32), encoding="utf-8")
        return path.read_text(encoding="utf-8").strip()

    # ------------------------------------------------------------------ clients
    def client(self, service: str):
        return local_client(service, self.endpoint_url, REGION)

    @property
    def state_machine_arn(self) -> str:
        return self.resources.state_machine["arn"]

    @property
    def media_bucket(self) -> str:
        return self.resources.bucket_name("MediaBucket")

    @property
    def decisions_table(self) -> str:
        return self.resources.tables["DecisionsTable"]["TableName"]

    def slot_usage(self) -> Usage:
        """Moderation slots in use of MaxConcurrentModerationJobs, and executions queued for one."""
        table = self.resources.tables["ModerationSlotsTable"]["TableName"]
        limit = int(self.resources.parameters["MaxConcurrentModerationJobs"])
        return SlotTable(self.client("dynamodb"), table).usage(limit)

    def running_executions(self) -> list[str]:
        """Names of the executions running now (those a stop suspends)."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[ACCOUNT][REGION]
        return [e.name for m in backend.state_machines for e in m.executions if e.status == "RUNNING"]

    # ------------------------------------------------------------------ deploy
    def deploy(self) -> None:
        """Create the template's resources on a fresh account, keeping what the state directory holds."""
        import urllib.request

        # A fresh account: moto's state is process-wide, so a previous stack in this process is wiped first.
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"))  # noqa: S310
        if self.store is not None:
            self.store.restore_storage()
            self.restored.objects = self.store.objects
        s3, ddb, lam, sfn, iam = (self.client(s) for s in ("s3", "dynamodb", "lambda", "stepfunctions", "iam"))
        role = iam.create_role(
            RoleName=f"{self.options.stack_name}-local",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        existing_buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        for bucket in self.resources.buckets.values():
            if bucket["name"] not in existing_buckets:
                s3.create_bucket(Bucket=bucket["name"], ObjectLockEnabledForBucket=bool(bucket["objectLock"]))
                if bucket["objectLock"]:
                    s3.put_object_lock_configuration(
                        Bucket=bucket["name"], ObjectLockConfiguration=bucket["objectLock"]
                    )
            if bucket["versioned"]:
                s3.put_bucket_versioning(Bucket=bucket["name"], VersioningConfiguration={"Status": "Enabled"})
            if bucket["eventbridge"]:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket["name"], NotificationConfiguration={"EventBridgeConfiguration": {}}
                )
        for table in self.resources.tables.values():
            ddb.create_table(**table)
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("README.txt", "code runs from functions/ via vidmod.emulator.lambda_runner")
        for spec in self.resources.functions.values():
            lam.create_function(
                FunctionName=spec.name,
                Runtime="python3.13",
                Role=role["Role"]["Arn"],
                Handler=spec.handler,
                Code={"ZipFile": package.getvalue()},
                Timeout=spec.timeout,
                MemorySize=spec.memory,
                Environment={"Variables": spec.environment},
            )
            lambda_service.register(spec)
        for machine in self.resources.state_machines.values():
            sfn.create_state_machine(
                name=machine["name"], definition=machine["definition"], roleArn=role["Role"]["Arn"], type="STANDARD"
            )
        if self.store is not None:
            self.restored.finished = self.store.restore_after_deploy()
        for rule in self.resources.rules:
            self.router.add_rule(rule["name"], rule["pattern"], rule["function"])

    def _rerun(self) -> None:
        """Start the executions a stop or a crash interrupted again, under their own names and inputs."""
        sfn = self.client("stepfunctions")
        for attempt in self.store.executions.interrupted:
            sfn.start_execution(stateMachineArn=attempt.state_machine_arn, name=attempt.name, input=attempt.input)
            self.restored.rerun.append(attempt.name)
        if not self.store.new:
            marker = self.options.state_dir / persistence.FORMAT_FILE
            written = max((p.stat().st_mtime for p in self.options.state_dir.glob("*.j*")), default=0)
            self.restored.saved_at = datetime.fromtimestamp(written or marker.stat().st_mtime, UTC)

    # ------------------------------------------------------------------ invocation
    def invoke(self, function_name: str, event: dict) -> tuple[object, bool]:
        result, errored, _ = lambda_service.invoke(lambda_service.REGISTRY[function_name], event)
        return result, errored

    def _deliver(self, function_name: str, event: dict) -> bool:
        """EventBridge → Lambda (asynchronous): a failed invocation is retried twice, after a pause, as Lambda
        does (one and two minutes in AWS, seconds here), so a retry meets a world that has moved on. False when
        the stack stopped first (the event is delivered again on the next start)."""
        for attempt in range(3):
            if self._stop.is_set() or (attempt and self._stop.wait(ASYNC_RETRY_SECONDS * attempt)):
                return False
            _, errored = self.invoke(function_name, event)
            if not errored:
                return True
        return not self._stop.is_set()

    def _execution_ended(self, execution) -> None:
        """Step Functions tells EventBridge when an execution ends; the template's rules act on it."""
        if self.store is not None:
            if self._stop.is_set():
                return  # suspended by the stop: it runs again on the next start
            self.store.executions.ended(execution)
        self.router.publish(execution_status_change_event(execution, ACCOUNT, REGION))

    def _every(self, seconds: float, function_name: str) -> None:
        def tick() -> None:
            while not self._stop.wait(seconds):
                try:
                    self.invoke(function_name, {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
                except Exception:  # one bad round must not end the schedule (heartbeats keep reviews alive)
                    log.exception("scheduled invocation of %s failed", function_name)

        thread = threading.Thread(target=tick, name=f"schedule-{function_name}", daemon=True)
        thread.start()
        self._threads.append(thread)


def _s3_object_named(environ: dict) -> tuple[set[str] | None, str | None]:
    """The bucket and key a path-style S3 request names (``/bucket/key``): ({bucket}, key or None); (None, None),
    every bucket, for virtual-hosted requests. A request on several keys (DeleteObjects) names none."""
    from vidmod.emulator.hosts import host_name

    if host_name(environ.get("HTTP_HOST", "")).endswith(".localhost"):
        return None, None  # virtual-hosted style (bucket.localhost): commit every bucket
    # WSGI gives the decoded path as latin-1 text of its UTF-8 bytes.
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace").lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket:
        return None, None
    return {bucket}, key or None


def _multipart_in_progress(environ: dict) -> bool:
    """CreateMultipartUpload and UploadPart: parts are not kept across a crash (the upload was not acknowledged
    as an object yet; the client uploads again), so nothing to commit."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return "partNumber" in query or ("uploads" in query and environ.get("REQUEST_METHOD") == "POST")


def _items_named(environ: dict) -> tuple[set[str] | None, dict[str, list[dict]] | None]:
    """The tables a DynamoDB request writes to and the items it names (table → key or item attributes), read
    from its JSON body, which is put back for moto; (None, None) when the body does not say: every table is
    compared then."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None, None
    items: dict[str, list[dict]] = {}

    def name(table: object, attributes: object) -> None:
        if isinstance(table, str) and isinstance(attributes, dict):
            items.setdefault(table, []).append(attributes)

    name(request.get("TableName"), request.get("Item") or request.get("Key"))
    for table, writes in (request.get("RequestItems") or {}).items():
        for write in writes if isinstance(writes, list) else []:
            for operation in write.values() if isinstance(write, dict) else []:
                name(table, operation.get("Item") or operation.get("Key") if isinstance(operation, dict) else None)
    for transaction in request.get("TransactItems") or []:
        for operation in transaction.values() if isinstance(transaction, dict) else []:
            if isinstance(operation, dict):
                name(operation.get("TableName"), operation.get("Item") or operation.get("Key"))
    tables = set(items)
    if isinstance(request.get("TableName"), str):
        tables.add(request["TableName"])
    return tables or None, items or None
