"""The ``vidmod`` command: run the embedded stack, submit videos, follow executions."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from vidmod.audit.history import all_events, waiting_in
from vidmod.cli.progress import DetectorProgress
from vidmod.emulator.clients import DEFAULT_ENDPOINT, http_api_event, local_client
from vidmod_contracts.executions import execution_arn
from vidmod_contracts.history_events import event_details
from vidmod_contracts.moderation_slots import SlotTable, Usage

console = Console(stderr=False)
DEFAULT_PORTAL_PORT = 8080


def _parameters(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--parameter expects Key=Value, got {pair!r}")
        values[key] = value
    return values


def _resources(args):
    from vidmod.emulator.stack import local_resources

    return local_resources(overrides=_parameters(getattr(args, "parameter", [])))


def _client(args, service: str):
    return local_client(service, args.endpoint_url)


# ---------------------------------------------------------------------------- local up / demo
def start_stack(args, port: int, portal_port: int, state_dir: Path, progress: DetectorProgress):
    from vidmod.emulator.persistence import StateError
    from vidmod.emulator.stack import LocalStack, StackOptions

    options = StackOptions(
        state_dir=state_dir, port=port, parameters=_parameters(args.parameter), on_detector_progress=progress
    )
    try:
        stack = LocalStack(options)
    except ValueError as error:  # e.g. a -p parameter the template does not have
        raise SystemExit(f"vidmod: {error}") from None
    try:
        stack.start()
        portal_url = stack.start_portal(portal_port)
    except (StateError, ValueError, OSError) as error:  # state of another format, a bad setting, a port in use
        stack.stop()
        raise SystemExit(f"vidmod: {error}") from None
    return stack, portal_url


def cmd_local_up(args) -> int:
    progress = DetectorProgress(console, bars=True)
    stack, portal_url = start_stack(args, args.port, args.portal_port, Path(args.state_dir), progress)
    console.print(
        f"[bold green]vidmod local stack is up[/]\n  AWS endpoint : {stack.endpoint_url}"
        f"\n  reviewer URL : {portal_url}\n  state dir    : {stack.options.state_dir}"
    )
    restored = stack.restored
    if restored.saved_at is None:
        console.print(
            "  Started empty. Objects, items, executions, events, detector jobs and human loops are written here "
            "before they are acknowledged: a crash loses nothing."
        )
    else:
        console.print(
            f"  Restored the state last written {restored.saved_at:%Y-%m-%d %H:%M:%S} UTC: {restored.objects} "
            f"object(s), {restored.finished} finished execution(s); {len(restored.rerun)} interrupted execution(s) "
            "started again under their own names"
            + (f" ({', '.join(restored.rerun)})" if restored.rerun else "")
            + (f"; {restored.redelivered} event delivery(ies) resumed" if restored.redelivered else "")
        )
    console.print(f"  Try: vidmod submit VIDEO.mp4 --endpoint-url {stack.endpoint_url}   (Ctrl-C to stop)")
    stopping = threading.Event()
    # SIGTERM (kill, systemd, a container stop) stops as cleanly as Ctrl-C. Nothing is left to save: what the
    # stack acknowledged is on disk already, so even SIGKILL loses nothing.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopping.wait()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean stop short
    progress.stop()
    running = len(stack.running_executions())
    stack.stop()
    console.print(
        f"vidmod local stack stopped; {running} running execution(s) suspended, resumed by the next "
        f"`vidmod local up --state-dir {stack.options.state_dir}`"
    )
    return 0


def follow(
    sfn,
    execution_arn: str,
    until_state: str | None = "HumanReview",
    timeout: float = 900,
    detail: Callable[[], str] = str,
    seen: set[int] | None = None,
) -> dict:
    """Print each state as the execution enters it; stop when it ends or waits in ``until_state``.

    ``detail`` adds what is happening inside a state (e.g. the detector's progress) to the status line;
    ``seen`` holds the ids of events already printed, so a second follow goes on where the first stopped.
    """
    seen = set() if seen is None else seen
    deadline, state = time.monotonic() + timeout, "…"
    with console.status("running…") as status:
        while time.monotonic() < deadline:
            events = all_events(sfn, execution_arn)
            for event in events:
                if event["id"] in seen:
                    continue
                seen.add(event["id"])
                details = event.get("stateEnteredEventDetails")
                if details:
                    state = details["name"]
                    console.print(f"  {event['timestamp']:%H:%M:%S}  → {state}")
            status.update(escape(" — ".join(filter(None, [f"in {state}", detail()]))))
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if until_state and waiting_in(events) == until_state:
                return described
            time.sleep(1)
    raise TimeoutError(f"{execution_arn} still running after {timeout:.0f} s")


def cmd_demo(args) -> int:
    from vidmod.detector.samples import sample_video_path

    started = time.monotonic()
    # A demo starts from nothing each time (``--state-dir`` keeps it); ``vidmod local up`` is the long-lived stack.
    scratch = None if args.state_dir else tempfile.TemporaryDirectory(prefix="vidmod-demo-")
    progress = DetectorProgress(console, bars=False)
    stack, portal_url = start_stack(args, 0, args.portal_port, Path(args.state_dir or scratch.name), progress)
    try:
        video = sample_video_path("bigbuckbunny.mp4")
        console.print(f"[bold]vidmod demo[/] — local stack at {stack.endpoint_url}, reviewer portal at {portal_url}")
        console.print(
            f"Uploading {video.name} (Big Buck Bunny, CC-BY 3.0 Blender Foundation) to "
            f"s3://{stack.media_bucket}/demo/{video.name}"
        )
        stack.client("s3").upload_file(str(video), stack.media_bucket, f"demo/{video.name}")
        sfn = stack.client("stepfunctions")
        arn = wait_for_execution(sfn, stack.state_machine_arn)
        console.print(f"Execution {arn.rsplit(':', 1)[-1]}")
        printed: set[int] = set()
        described = follow(sfn, arn, detail=progress.summary, seen=printed)
        elapsed = time.monotonic() - started
        explain(sfn, arn)
        if described["status"] == "RUNNING":
            console.print(f"\n[bold yellow]Waiting for a human reviewer[/] after {elapsed:.0f} s.")
            if args.no_wait or not sys.stdin.isatty() or os.environ.get("CI"):
                console.print(
                    "Not waiting (no terminal, CI or --no-wait): the demo stack stops now. Run `make demo` in a "
                    "terminal to review in the browser, or `vidmod local up` for a stack that stays up."
                )
                return 0
            console.print(
                f"Open [bold]{portal_url}[/], log in with any name, review the flagged segments and decide. "
                "Ctrl-C to stop."
            )
            described = follow(sfn, arn, until_state=None, timeout=7 * 24 * 3600, seen=printed)
        console.print(finished_summary(described, time.monotonic() - started))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()
        if scratch is not None:
            scratch.cleanup()


def finished_summary(described: dict, elapsed: float) -> Text:
    """One line a person reads at the end: the decision, who made it, and why it ended if it failed."""
    final = json.loads(described.get("output") or "{}")
    line = Text(f"Finished in {elapsed:.0f} s: ", style="bold")
    if final.get("decision"):
        line.append(final["decision"], style="bold green" if final["decision"] == "APPROVE" else "bold red")
        who = f"reviewer {final['reviewer']}" if final.get("reviewer") else f"the {final.get('source', '?')}"
        line.append(f" by {who}, recorded at {final.get('decidedAt', '?')} (execution {described['status']})")
    else:
        line.append(f"{described['status']} {described.get('error', '')}: {described.get('cause', '')}")
    return line


def explain(sfn, arn: str) -> None:
    """What the detector saw and why the rules decided as they did, from the execution's own history."""
    outputs = {
        e["stateExitedEventDetails"]["name"]: json.loads(e["stateExitedEventDetails"].get("output") or "{}")
        for e in all_events(sfn, arn)
        if "stateExitedEventDetails" in e
    }
    labels = outputs.get("StoreLabelsPage", {}).get("labels", {})
    decision = outputs.get("EvaluateRules", {}).get("decision", {})
    if labels:
        console.print(
            f"Detector {labels.get('modelVersion')}: {labels.get('detections')} detections. "
            f"{labels.get('statusMessage', '')}"
        )
    if decision:
        reasons = ", ".join(f"{r['label']} ({r['band']})" for r in decision.get("reasons", [])) or "nothing flagged"
        console.print(f"Rules {decision.get('ruleSetVersion')}: [bold]{decision.get('outcome')}[/] — {reasons}")


def wait_for_execution(sfn, state_machine_arn: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executions = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
        if executions:
            return max(executions, key=lambda e: e["startDate"])["executionArn"]
        time.sleep(0.5)
    raise TimeoutError("the upload did not start an execution")


# ---------------------------------------------------------------------------- client commands
def cmd_submit(args) -> int:
    resources = _resources(args)
    media = resources.bucket_name("MediaBucket")
    if args.video.startswith("s3://"):
        event = http_api_event(
            "POST",
            "/moderations",
            {"video": args.video},
            f"cli-{time.time_ns()}",
            f"local:{os.environ.get('USER', 'cli')}",
        )
        function = resources.functions["SubmitFunction"].name
        response = _client(args, "lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
        result = json.loads(response["Payload"].read())
        if response.get("FunctionError"):
            console.print(f"[red]submit failed:[/] {result.get('errorMessage')}")
            return 1
        body = json.loads(result.get("body") or "{}")
        if result.get("statusCode", 500) >= 400:
            console.print(f"[red]{result['statusCode']}[/]: {body.get('message')}")
            return 1
        console.print(f"{'duplicate of' if body.get('duplicate') else 'started'} {body['executionName']}")
        return 0
    path = Path(args.video)
    if not path.is_file():
        console.print(f"[red]no such file:[/] {path}")
        return 1
    extensions = resources.functions["ValidateInputFunction"].environment.get("VIDEO_EXTENSIONS", "").split(",")
    if path.suffix.lower() not in extensions:
        console.print(
            f"[red]{path.name}: not a video type this deployment moderates[/] ({', '.join(extensions)}); "
            "an upload would start nothing"
        )
        return 1
    key = f"uploads/{path.name}"
    _client(args, "s3").upload_file(str(path), media, key)
    console.print(f"uploaded to s3://{media}/{key}; the S3 event starts the workflow (see `vidmod status`)")
    return 0


def _status_machines(resources) -> list[str]:
    """The machines `vidmod status` shows: moderation, then its audits (docs/quality.md)."""
    audits = resources.state_machines.get("AuditStateMachine", {}).get("arn", "")
    return [resources.state_machine["arn"], *([audits] if audits else [])]


def _execution_arn(args, resources, name: str) -> str:
    """A name completed with its machine's ARN: an audit's name is the moderation's plus ``-audit``."""
    if name.startswith("arn:"):
        return name
    moderation, *audits = _status_machines(resources)
    return execution_arn(audits[0] if audits and name.endswith("-audit") else moderation, name)


def cmd_status(args) -> int:
    resources = _resources(args)
    sfn = _client(args, "stepfunctions")
    if args.execution:
        described = sfn.describe_execution(executionArn=_execution_arn(args, resources, args.execution))
        console.print_json(
            json.dumps(
                {k: described.get(k) for k in ("name", "status", "error", "cause")}
                | {"output": json.loads(described.get("output") or "null")},
                default=str,
            )
        )
        return 0
    table = Table("execution", "status", "started", "stopped")
    paginator = sfn.get_paginator("list_executions")
    for execution in (
        execution
        for machine in _status_machines(resources)
        for page in paginator.paginate(stateMachineArn=machine)
        for execution in page["executions"]
    ):
        table.add_row(
            execution["name"],
            execution["status"],
            f"{execution['startDate']:%Y-%m-%d %H:%M:%S}",
            f"{execution['stopDate']:%H:%M:%S}" if execution.get("stopDate") else "",
        )
    console.print(table)
    admission = resources.functions["AdmissionFunction"].name
    usage = slot_usage(_client(args, "lambda"), _client(args, "dynamodb"), admission)
    console.print(
        f"moderation slots: {usage.in_use} of {usage.limit} in use; {usage.queued} execution(s) waiting for one"
    )
    return 0


def slot_usage(lam, dynamodb, admission_function: str) -> Usage:
    """Read from what is deployed: the admission function's own limit and table."""
    variables = lam.get_function_configuration(FunctionName=admission_function)["Environment"]["Variables"]
    table = SlotTable(dynamodb, variables["SLOTS_TABLE"])
    return table.usage(int(variables["MAX_CONCURRENT_MODERATION_JOBS"]))


def cmd_history(args) -> int:
    resources = _resources(args)
    sfn = _client(args, "stepfunctions")
    events = all_events(sfn, _execution_arn(args, resources, args.execution))
    table = Table("id", "time", "type", "state / detail")
    for event in events:
        details = event_details(event)
        text = details.get("name") or details.get("error") or details.get("resource") or ""
        table.add_row(str(event["id"]), f"{event['timestamp']:%H:%M:%S.%f}"[:-3], event["type"], str(text))
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidmod", description="Video content moderation with a human in the loop.")
    commands = parser.add_subparsers(dest="command", required=True)

    def stack_options(p, state_dir: str | None = ".vidmod", default_text: str = "%(default)s"):
        p.add_argument(
            "--state-dir",
            default=state_dir,
            help=f"where the stack keeps its state across restarts (default: {default_text})",
        )
        p.add_argument(
            "--parameter",
            "-p",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="template parameter override, as with sam deploy --parameter-overrides",
        )

    local = commands.add_parser("local", help="the embedded stack")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="start the local endpoint and reviewer portal, deploy the template")
    up.add_argument("--port", type=int, default=4566)
    up.add_argument("--portal-port", type=int, default=DEFAULT_PORTAL_PORT)
    stack_options(up)
    up.set_defaults(func=cmd_local_up)

    demo = commands.add_parser("demo", help="moderate a real sample video on the embedded stack")
    demo.add_argument("--portal-port", type=int, default=0)
    demo.add_argument("--no-wait", action="store_true", help="exit once the video waits for review")
    stack_options(demo, state_dir=None, default_text="a fresh temporary directory")
    demo.set_defaults(func=cmd_demo)

    def client_options(p):
        p.add_argument("--endpoint-url", default=os.environ.get("VIDMOD_ENDPOINT", DEFAULT_ENDPOINT))
        p.add_argument("--parameter", "-p", action="append", default=[], help=argparse.SUPPRESS)

    submit = commands.add_parser("submit", help="upload a video file (S3 event path) or submit an s3:// URI (API path)")
    submit.add_argument("video", help="a local video file or s3://bucket/key")
    client_options(submit)
    submit.set_defaults(func=cmd_submit)
    status = commands.add_parser("status", help="list executions, or show one with its decision")
    status.add_argument("execution", nargs="?")
    client_options(status)
    status.set_defaults(func=cmd_status)
    history = commands.add_parser("history", help="an execution's event history")
    history.add_argument("execution")
    client_options(history)
    history.set_defaults(func=cmd_history)

    from vidmod import cloud

    cloud.add_commands(commands)
    try:
        from vidmod.cli.audit import add_commands as add_audit
    except ImportError:
        add_audit = None
    if add_audit is not None:
        add_audit(commands)
    from vidmod.cli.backfill import add_commands as add_backfill

    add_backfill(commands)
    from vidmod.cli.metrics import add_commands as add_metrics

    add_metrics(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ClientError as error:  # e.g. an execution name that does not exist
        console.print(f"vidmod: {escape(str(error))}", style="red", highlight=False)
    except BotoCoreError as error:  # e.g. nothing listening at the endpoint
        hint = " (is `vidmod local up` running? see --endpoint-url)" if getattr(args, "endpoint_url", None) else ""
        console.print(f"vidmod: {escape(str(error))}{hint}", style="red", highlight=False)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
