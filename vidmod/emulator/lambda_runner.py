"""Run one Lambda handler in this process, as Lambda's Python runtime would.

``python -m vidmod.emulator.lambda_runner CODE_DIR HANDLER [--layer DIR]... [--layer-package NAME]...``

``sys.path`` is built as in Lambda: the function's code folder first (``/var/task``), then its layers
(``/opt/python``), then the runtime's libraries. The packages the template's layers ship
(``--layer-package``, e.g. ``vidmod_contracts``) and ``vidmod`` itself are importable only from those
folders, never from the development environment: a function that does not list a layer fails here as it
would in AWS.

Reads the event (JSON) on stdin and writes one JSON line on stdout: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"errorType", "errorMessage", "stackTrace"}}`` — Lambda's error shape, whose
errorType Step Functions sees as the error name (so Retry/Catch behave as in AWS). Anything the handler
prints (Powertools logs) goes to stderr, like CloudWatch Logs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import json
import os
import sys
import time
import traceback
import uuid


class LambdaContext:
    """The attributes handlers and Powertools read from Lambda's context object."""

    def __init__(self, timeout_seconds: float):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("VIDMOD_FUNCTION_ARN", "")
        self.aws_request_id = str(uuid.uuid4())
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


def run(handler: str, event: object) -> str:
    module_name, _, function_name = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        result = function(event, LambdaContext(float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))))
        return json.dumps({"ok": True, "result": result}, default=str)
    except Exception as error:  # every handler error becomes a Lambda error, as in AWS
        return json.dumps(
            {
                "ok": False,
                "error": {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exception(error)[-5:],
                },
            }
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidmod.emulator.lambda_runner")
    parser.add_argument("code_dir")
    parser.add_argument("handler")
    parser.add_argument("--layer", action="append", default=[])
    parser.add_argument("--layer-package", action="append", default=[])
    args = parser.parse_args(argv)
    out = sys.stdout
    sys.stdout = sys.stderr
    lambda_sys_path(args.code_dir, args.layer, {*args.layer_package, "vidmod"})
    event = json.loads(sys.stdin.read() or "null")
    out.write(run(args.handler, event) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
