"""Lambda for the local stack: the template's functions in warm execution environments, as Lambda runs them.

Each function gets a pool of worker processes (``vidmod.emulator.lambda_runner``), each one an execution
environment: its own environment variables, code folder and layers on ``sys.path``, the handler imported once
(module-level clients and caches live on between invocations, as in a warm Lambda). An invocation takes an
idle worker, or starts one (a cold start) while the function has fewer than its concurrency limit —
``ReservedConcurrentExecutions`` when the template sets it, else ``DEFAULT_CONCURRENCY`` — and otherwise waits
for one. The function's ``Timeout`` is enforced: a worker that overruns is killed and replaced
(``Sandbox.Timedout``), as is one that crashes (``Runtime.ExitError``). ``MemorySize`` is not enforced: the
REPORT line shows the peak memory next to it, and a warning says when AWS would have stopped the function.

Every function writes a log like its CloudWatch log group, ``<log dir>/<function name>.log``: the handler's
output framed by ``INIT_START`` (cold starts), ``START``, ``END`` and ``REPORT`` lines with durations.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from vidmod.emulator.template import FunctionSpec
from vidmod_contracts.times import now_iso

DEFAULT_CONCURRENCY = 4  # workers per function when the template reserves none (2 cores: more only queue)
IDLE_SECONDS = 300.0  # an environment unused this long is shut down, as Lambda reclaims idle ones
STDERR_TAIL = 4000  # characters of a crashed worker's stderr kept for its error message
SETTINGS: dict = {"endpoint_url": "", "region": "us-east-1", "log_dir": None}
REGISTRY: dict[str, FunctionSpec] = {}
_POOLS: dict[str, FunctionPool] = {}
_POOLS_LOCK = threading.Lock()


def _environment(function: FunctionSpec) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    env.update(function.environment)
    env.update(
        {
            "AWS_ENDPOINT_URL": SETTINGS["endpoint_url"],
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": SETTINGS["region"],
            "AWS_DEFAULT_REGION": SETTINGS["region"],
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
            "VIDMOD_FUNCTION_ARN": function.arn,
            "POWERTOOLS_DEV": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def runner_command(function: FunctionSpec) -> list[str]:
    command = [sys.executable, "-m", "vidmod.emulator.lambda_runner", str(function.code_dir), function.handler]
    for layer in function.layers:
        command += ["--layer", str(layer)]
    for package in function.layer_packages:
        command += ["--layer-package", package]
    return command


class FunctionLog:
    """One function's log file (its CloudWatch log group); nothing is written when the stack keeps no logs."""

    def __init__(self, function: FunctionSpec, log_dir: Path | None):
        self.path = None if log_dir is None else Path(log_dir) / f"{function.name}.log"
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> None:
        if self.path is None or not text:
            return
        with self._lock, self.path.open("a", encoding="utf-8") as log:
            log.write(text if text.endswith("\n") else text + "\n")


@dataclass
class Outcome:
    result: object
    errored: bool
    logs: str


class WorkerGone(Exception):
    """The worker process ended (crashed, killed, or could not start)."""


@dataclass
class Worker:
    """One execution environment: a process that initialised the handler and answers invocations in turn."""

    function: FunctionSpec
    process: subprocess.Popen = field(init=False)
    replies: queue.Queue = field(default_factory=queue.Queue)
    stderr_tail: deque = field(default_factory=lambda: deque(maxlen=200))
    init_ms: float = 0.0
    last_used: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.process = subprocess.Popen(
            runner_command(self.function),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(self.function),
            start_new_session=True,  # a timed-out handler's own children are killed with it
        )
        threading.Thread(target=self._read_replies, daemon=True, name=f"lambda-{self.function.name}").start()
        threading.Thread(target=self._read_stderr, daemon=True, name=f"lambda-log-{self.function.name}").start()

    def _read_replies(self) -> None:
        for line in self.process.stdout:
            self.replies.put(json.loads(line))
        self.replies.put(None)  # the process ended

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_tail.append(line)  # the log file gets each invocation's output with its result

    def wait_reply(self, timeout: float) -> dict:
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if reply is None:
            raise WorkerGone("".join(self.stderr_tail)[-STDERR_TAIL:])
        return reply

    def initialise(self, timeout: float) -> dict:
        """The INIT phase: the handler's module imported (Lambda allows 10 s; the function's timeout here)."""
        started = time.perf_counter()
        init = self.wait_reply(timeout)["init"]
        self.init_ms = (time.perf_counter() - started) * 1000
        return init

    def invoke(self, request_id: str, event: object, timeout: float) -> dict:
        self.process.stdin.write(
            json.dumps({"requestId": request_id, "event": event, "timeoutSeconds": timeout}) + "\n"
        )
        self.process.stdin.flush()
        return self.wait_reply(timeout)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def close(self) -> None:
        """Shut down gracefully: stdin closed, the runner's loop ends."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


class FunctionPool:
    """The execution environments of one function: idle ones are reused, more start while invocations overlap."""

    def __init__(self, function: FunctionSpec, log_dir: Path | None):
        self.function = function
        reserved = function.reserved_concurrency
        self.limit = DEFAULT_CONCURRENCY if reserved is None else reserved
        self.log = FunctionLog(function, log_dir)
        self._idle: list[Worker] = []
        self._count = 0
        self._closed = False
        self._available = threading.Condition()

    def _acquire(self) -> Worker | None:
        """An idle worker, or None when the caller may start a new one (the count is reserved for it)."""
        with self._available:
            while True:
                if self._closed:
                    raise WorkerGone(f"{self.function.name}: the local Lambda service is shutting down")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._count -= 1
                if self._count < self.limit:
                    self._count += 1
                    return None
                self._available.wait()

    def _release(self, worker: Worker | None) -> None:
        """Give a healthy worker back (None: the worker is gone, its place is free)."""
        with self._available:
            if worker is None or self._closed:
                self._count -= 1
                if worker is not None:
                    worker.close()
            else:
                worker.last_used = time.monotonic()
                self._idle.append(worker)
                self._reap_idle()
            self._available.notify()

    def _reap_idle(self) -> None:
        now = time.monotonic()
        stale = [w for w in self._idle[:-1] if now - w.last_used > IDLE_SECONDS]  # keep the newest warm
        for worker in stale:
            self._idle.remove(worker)
            self._count -= 1
            worker.close()

    def invoke(self, event: object) -> Outcome:
        if self.limit == 0:  # ReservedConcurrentExecutions: 0 stops the function, as in AWS
            error = {"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."}
            return Outcome(error, True, "")
        request_id = str(uuid.uuid4())
        worker = self._acquire()
        cold = worker is None
        started = time.perf_counter()
        try:
            if cold:
                worker, failed = self._cold_start(request_id)
                if failed is not None:
                    return failed
            self.log.write(f"{now_iso()} START RequestId: {request_id} Version: $LATEST")
            reply = worker.invoke(request_id, event, self.function.timeout)
        except TimeoutError:
            worker.kill()
            self._release(None)
            self._report(request_id, (time.perf_counter() - started) * 1000, worker, cold, "timeout")
            timed_out = f"Task timed out after {self.function.timeout:.2f} seconds"
            error = {"errorType": "Sandbox.Timedout", "errorMessage": timed_out}
            return Outcome(error, True, "".join(worker.stderr_tail))
        except (WorkerGone, OSError) as gone:
            if worker is not None:
                worker.kill()
            self._release(None)
            code = worker.process.returncode if worker is not None else None
            error = {"errorType": "Runtime.ExitError", "errorMessage": f"handler process exited with {code}: {gone}"}
            return Outcome(error, True, str(gone))
        logs = reply.get("logs", "")
        self.log.write(logs)
        self._report(request_id, reply.get("durationMs", 0.0), worker, cold, None, reply.get("maxMemoryMB", 0))
        self._release(worker)
        return Outcome(reply["result"], False, logs) if reply["ok"] else Outcome(reply["error"], True, logs)

    def _cold_start(self, request_id: str) -> tuple[Worker, Outcome | None]:
        """A new environment and its INIT phase; an init error fails this invocation and frees the place."""
        worker = Worker(self.function)
        self.log.write(f"{now_iso()} INIT_START Runtime Version: python:3.13 (local)\tFunction: {self.function.name}")
        try:
            init = worker.initialise(self.function.timeout)
        except TimeoutError:
            timed_out = f"Init timed out after {self.function.timeout:.2f} seconds"
            init = {"ok": False, "error": {"errorType": "Sandbox.Timedout", "errorMessage": timed_out}}
        except WorkerGone as gone:
            exited = f"handler process exited during init: {gone}"
            init = {"ok": False, "error": {"errorType": "Runtime.ExitError", "errorMessage": exited}}
        self.log.write(init.get("logs", ""))
        if init["ok"]:
            return worker, None
        worker.kill()
        self._release(None)
        self._report(request_id, 0.0, worker, True, "error")
        return worker, Outcome(init["error"], True, init.get("logs", ""))

    def _report(
        self, request_id: str, duration_ms: float, worker: Worker, cold: bool, status: str | None, memory: int = 0
    ) -> None:
        """Lambda's END and REPORT lines; ``Init Duration`` only on a cold start."""
        line = (
            f"{now_iso()} REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {self.function.memory} MB\t"
            f"Max Memory Used: {memory or 0} MB"
        )
        if cold:
            line += f"\tInit Duration: {worker.init_ms:.2f} ms"
        if status:
            line += f"\tStatus: {status}"
        self.log.write(f"{now_iso()} END RequestId: {request_id}\n{line}")
        if memory and memory > self.function.memory:
            self.log.write(
                f"{now_iso()} WARNING RequestId: {request_id} used {memory} MB, above MemorySize {self.function.memory}"
                " MB: AWS would have stopped this invocation (Runtime.OutOfMemory); raise MemorySize"
            )

    def close(self) -> None:
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._available.notify_all()
        for worker in idle:
            worker.close()


def configure(endpoint_url: str, region: str, log_dir: Path | None = None) -> None:
    """Point every function at a (new) local endpoint: environments made for the previous one are shut down."""
    shutdown()
    SETTINGS.update(endpoint_url=endpoint_url, region=region, log_dir=log_dir)


def register(function: FunctionSpec) -> None:
    with _POOLS_LOCK:
        REGISTRY[function.name] = function
        previous = _POOLS.pop(function.name, None)
    if previous is not None:
        previous.close()


def _pool(function: FunctionSpec) -> FunctionPool:
    with _POOLS_LOCK:
        pool = _POOLS.get(function.name)
        if pool is None or pool.function != function:
            if pool is not None:
                pool.close()
            pool = _POOLS[function.name] = FunctionPool(function, SETTINGS["log_dir"])
        return pool


def invoke(function: FunctionSpec, event: object) -> tuple[object, bool, str]:
    """Run the handler in a warm environment; returns (result or Lambda error dict, errored, logs)."""
    outcome = _pool(function).invoke(event)
    return outcome.result, outcome.errored, outcome.logs


def invoke_by_name(name: str, event: object) -> tuple[object, bool, str]:
    function = REGISTRY.get(name)
    if function is None:
        return {"errorType": "ResourceNotFoundException", "errorMessage": f"{name} is not local code"}, True, ""
    return invoke(function, event)


def shutdown() -> None:
    """Stop every execution environment (the stack stops, or moves to another endpoint)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
