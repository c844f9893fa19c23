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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidmod.emulator import lambda_service, moto_patches, persistence
from vidmod.emulator.clients import local_client
from vidmod.emulator.event_router import EventRouter, execution_status_change_event, hook_s3_notifications
from vidmod.emulator.gateway import Gateway
from vidmod.emulator.template import ACCOUNT, REGION, LocalResources, read_resources

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
FLOW_DEFINITION_NAME = "vidmod-local-review"
FLOW_DEFINITION_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/{FLOW_DEFINITION_NAME}"
# Local defaults that keep a laptop run snappy; every one is a template parameter, overridable.
LOCAL_PARAMETERS = {"FlowDefinitionArn": FLOW_DEFINITION_ARN, "PollMinSeconds": "2", "PollMaxSeconds": "10"}
ASYNC_RETRY_SECONDS = 1.0  # Lambda waits 1 then 2 minutes between retries of an asynchronous event; seconds here


@dataclass
class StackOptions:
    root: Path = ROOT
    state_dir: Path = Path(".vidmod")
    stack_name: str = "vidmod"
    host: str = "127.0.0.1"
    port: int = 0
    parameters: dict[str, str] = field(default_factory=dict)
    schedule_scale: float = 1.0  # Schedule events fire every (rate × scale) seconds locally
    persist: bool = True  # save S3, DynamoDB and executions on stop, restore them on start (``persistence``)
    rekognition: Callable | None = None  # WSGI app; default: the local detector
    a2i_runtime: object | None = None  # default: vidmod.emulator.a2i.HumanLoopRuntime
    on_detector_progress: Callable[[dict], None] | None = None  # the local detector's per-job progress (CLI)


@dataclass
class RestoreReport:
    """What a start brought back from the state directory."""

    saved_at: object = None  # datetime of the snapshot, None when the stack started empty
    finished: int = 0
    rerun: list[str] = field(default_factory=list)


class LocalStack:
    def __init__(self, options: StackOptions | None = None):
        self.options = options or StackOptions()
        self.options.state_dir = Path(self.options.state_dir).resolve()
        self.resources: LocalResources = read_resources(
            self.options.root, self.options.stack_name, LOCAL_PARAMETERS | self.options.parameters
        )
        self.router = EventRouter(self._deliver, self.options.state_dir / "events.jsonl")
        self.gateway = Gateway(self.router)
        self.endpoint_url = ""
        self.detector = None
        self.a2i = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.restored = RestoreReport()
        self._loaded = False  # state restored and deployed: only then may stop() overwrite the snapshot

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalStack:
        self.options.state_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint_url = self.gateway.start(self.options.host, self.options.port)
        moto_patches.install(self.endpoint_url, on_execution_end=self._execution_ended)
        lambda_service.configure(self.endpoint_url, REGION, self.options.state_dir / "logs")
        hook_s3_notifications(self.router, {b["name"] for b in self.resources.buckets.values() if b["eventbridge"]})
        self.gateway.rekognition = self.options.rekognition or self._local_detector()
        self.a2i = self.options.a2i_runtime or self._local_a2i()
        self.gateway.a2i = self.a2i.wsgi_app
        snapshot = persistence.load(self.options.state_dir) if self.options.persist else None
        self.deploy(snapshot)
        if snapshot is not None:
            self._rerun(snapshot)
        for schedule in self.resources.schedules:
            self._every(schedule["seconds"] * self.options.schedule_scale, schedule["function"])
        self._loaded = True
        return self

    def stop(self) -> None:
        self._stop.set()
        if getattr(self, "_portal", None) is not None:
            self._portal.should_exit = True
        for closable in (self.detector, self.a2i):
            if closable is not None and hasattr(closable, "close"):
                closable.close()
        self.router.close()  # pending deliveries (e.g. a reviewer's verdict) reach their execution first
        lambda_service.shutdown()
        # A start that failed (unreadable snapshot, schema mismatch) must not replace the saved state.
        snapshot = persistence.capture(ACCOUNT, REGION) if self.options.persist and self._loaded else None
        self.gateway.stop()
        if snapshot is not None:
            persistence.save(self.options.state_dir, snapshot)

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
        )
        return self.detector.wsgi_app

    def _local_a2i(self):
        from vidmod.emulator.a2i import HumanLoopRuntime

        output = f"s3://{self.resources.bucket_name('ResultsBucket')}/a2i-output"
        return HumanLoopRuntime(self.endpoint_url, self.options.state_dir, {FLOW_DEFINITION_ARN: output})

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
            )
        app = create_app(
            self.a2i,
            self.endpoint_url,
            self.options.root / "ui" / "moderation-review.liquid.html",
            extra_routes=routes,
            secret_key=self._portal_secret(),
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

    # ------------------------------------------------------------------ deploy
    def deploy(self, snapshot: persistence.Snapshot | None = None) -> None:
        """Create the template's resources on a fresh account, keeping what a saved snapshot holds."""
        import urllib.request

        # A fresh account: moto's state is process-wide, so a previous stack in this process is wiped first.
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"))  # noqa: S310
        if snapshot is not None:
            persistence.restore_storage(snapshot, ACCOUNT, REGION)
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
        existing_tables = set(ddb.list_tables()["TableNames"])
        for table in self.resources.tables.values():
            if table["TableName"] not in existing_tables:
                ddb.create_table(**table)
                continue
            saved = ddb.describe_table(TableName=table["TableName"])["Table"]["KeySchema"]
            if saved != table["KeySchema"]:
                raise persistence.SnapshotError(
                    f"table {table['TableName']} has key {saved} in the saved state but {table['KeySchema']} in "
                    f"template.yaml; move {self.options.state_dir / persistence.SNAPSHOT_FILE} aside to start empty"
                )
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
        machine = self.resources.state_machine
        sfn.create_state_machine(
            name=machine["name"], definition=machine["definition"], roleArn=role["Role"]["Arn"], type="STANDARD"
        )
        if snapshot is not None:
            self.restored.finished = persistence.restore_executions(snapshot, ACCOUNT, REGION)
        for rule in self.resources.rules:
            self.router.add_rule(rule["name"], rule["pattern"], rule["function"])

    def _rerun(self, snapshot: persistence.Snapshot) -> None:
        """Start the executions the last stop interrupted again, under their own names and inputs."""
        sfn = self.client("stepfunctions")
        for execution in snapshot.interrupted:
            sfn.start_execution(
                stateMachineArn=execution["stateMachineArn"], name=execution["name"], input=execution["input"]
            )
            self.restored.rerun.append(execution["name"])
        self.restored.saved_at = snapshot.saved_at

    # ------------------------------------------------------------------ invocation
    def invoke(self, function_name: str, event: dict) -> tuple[object, bool]:
        result, errored, _ = lambda_service.invoke(lambda_service.REGISTRY[function_name], event)
        return result, errored

    def _deliver(self, function_name: str, event: dict) -> None:
        """EventBridge → Lambda (asynchronous): a failed invocation is retried twice, after a pause, as Lambda
        does (one and two minutes in AWS, seconds here), so a retry meets a world that has moved on."""
        for attempt in range(3):
            if attempt and self._stop.wait(ASYNC_RETRY_SECONDS * attempt):
                return  # the stack is stopping
            _, errored = self.invoke(function_name, event)
            if not errored:
                return

    def _execution_ended(self, execution) -> None:
        """Step Functions tells EventBridge when an execution ends; the template's rules act on it."""
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
