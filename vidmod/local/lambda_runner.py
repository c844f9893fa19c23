"""Run one Lambda handler in this process: ``python -m vidmod.local.lambda_runner CODE_DIR HANDLER``.

Reads the event (JSON) on stdin and writes one JSON line on stdout: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"errorType", "errorMessage", "stackTrace"}}`` — Lambda's error shape, whose
errorType Step Functions sees as the error name (so Retry/Catch behave as in AWS). Anything the handler
prints (Powertools logs) goes to stderr, like CloudWatch Logs.
"""

from __future__ import annotations

import importlib
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


def main(code_dir: str, handler: str) -> int:
    out = sys.stdout
    sys.stdout = sys.stderr
    sys.path.insert(0, code_dir)
    event = json.loads(sys.stdin.read() or "null")
    module_name, _, function_name = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        result = function(event, LambdaContext(float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))))
        line = json.dumps({"ok": True, "result": result}, default=str)
    except Exception as error:  # every handler error becomes a Lambda error, as in AWS
        line = json.dumps(
            {
                "ok": False,
                "error": {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exception(error)[-5:],
                },
            }
        )
    out.write(line + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
