"""One Lambda execution environment: a Python process that initialises a handler once and serves invocations.

``python -m vidmod.emulator.lambda_runner CODE_DIR HANDLER [--layer DIR]... [--layer-package NAME]...``

As in Lambda's Python runtime, ``sys.path`` is the function's code folder first (``/var/task``), then its
layers (``/opt/python``), then the runtime's libraries. The packages the template's layers ship
(``--layer-package``, e.g. ``vidmod_contracts``) and ``vidmod`` itself are importable only from those
folders, never from the development environment: a function that does not list a layer fails here as it
would in AWS.

The handler's module is imported once (the INIT phase); module-level clients and caches then live as long as
the process, like a warm Lambda environment. The protocol with ``lambda_service`` is one JSON line per
message on the process's original stdout: first ``{"init": {...}}``, then one ``{"ok": ...}`` per request
read from stdin (``{"requestId", "event", "timeoutSeconds"}``). Errors have Lambda's shape
(``errorType``, ``errorMessage``, ``stackTrace``), whose errorType Step Functions sees as the error name.
Whatever the handler prints (Powertools logs) goes to stderr — the function's log — and, for each
invocation, back with its result. The process ends when stdin closes.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import io
import json
import os
import resource
import sys
import time
import traceback


class LambdaContext:
    """The attributes handlers and Powertools read from Lambda's context object."""

    def __init__(self, request_id: str, timeout_seconds: float):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("VIDMOD_FUNCTION_ARN", "")
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class OnlyFromFunctionPath:
    """A meta-path finder: the listed top-level packages load only from the function's own folders."""

    def __init__(self, packages: set[str], folders: list[str]):
        self.packages, self.folders = packages, folders

    def find_spec(self, name, path=None, target=None):
        if name not in self.packages:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, self.folders)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the function's code or layers)", name=name)
        return spec


def lambda_sys_path(code_dir: str, layers: list[str], packages: set[str]) -> None:
    """The function's folders first; the listed packages from nowhere else."""
    for name in [n for n in sys.modules if n.split(".")[0] in packages - {"vidmod"}]:
        del sys.modules[name]
    folders = [code_dir, *layers]
    sys.path[:] = folders + [p for p in sys.path if p and p != os.getcwd()]
    sys.meta_path.insert(0, OnlyFromFunctionPath(packages, folders))


class InvocationLog(io.TextIOBase):
    """The handler's stdout/stderr: written through to the function's log, and kept for the invocation's result."""

    def __init__(self, log: io.TextIOBase):
        self.log, self.captured = log, io.StringIO()

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()
        return self.captured.write(text)

    def flush(self) -> None:
        self.log.flush()

    def take(self) -> str:
        text = self.captured.getvalue()
        self.captured.seek(0)
        self.captured.truncate()
        return text


def lambda_error(error: BaseException) -> dict:
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error)[-5:],
    }


def max_memory_mb() -> int:
    """Peak resident memory of this environment so far (Lambda's "Max Memory Used")."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def serve(handler: str, requests: io.TextIOBase, replies: io.TextIOBase, log: InvocationLog) -> None:
    def reply(message: dict) -> None:
        replies.write(json.dumps(message, default=str) + "\n")
        replies.flush()

    started = time.perf_counter()
    module_name, _, function_name = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # an init error fails this invocation; the next one starts a new environment
        reply({"init": {"ok": False, "error": lambda_error(error), "logs": log.take()}})
        return
    reply({"init": {"ok": True, "durationMs": (time.perf_counter() - started) * 1000, "logs": log.take()}})
    for line in requests:
        request = json.loads(line)
        context = LambdaContext(request["requestId"], float(request["timeoutSeconds"]))
        started = time.perf_counter()
        try:
            message = {"ok": True, "result": function(request["event"], context)}
        except Exception as error:  # every handler error becomes a Lambda error, as in AWS
            message = {"ok": False, "error": lambda_error(error)}
        message |= {"durationMs": (time.perf_counter() - started) * 1000, "maxMemoryMB": max_memory_mb()}
        reply(message | {"logs": log.take()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidmod.emulator.lambda_runner")
    parser.add_argument("code_dir")
    parser.add_argument("handler")
    parser.add_argument("--layer", action="append", default=[])
    parser.add_argument("--layer-package", action="append", default=[])
    args = parser.parse_args(argv)
    # The protocol keeps the original stdout; anything else written to fd 1 (a C library, a child process)
    # lands in the log like the handler's prints.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    log = InvocationLog(sys.stderr)
    sys.stdout = sys.stderr = log
    lambda_sys_path(args.code_dir, args.layer, {*args.layer_package, "vidmod"})
    serve(args.handler, sys.stdin, replies, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
