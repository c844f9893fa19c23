"""Lambda for the local stack: the template's functions, invoked as Lambda would run them.

Each invocation is a fresh subprocess (``vidmod.emulator.lambda_runner``) with the function's code folder and
its layers on ``sys.path`` (as ``/var/task`` and ``/opt/python``), the template's environment, the local
endpoint as ``AWS_ENDPOINT_URL``, the function's timeout (``Sandbox.Timedout``) and Lambda's error shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from vidmod.emulator.template import FunctionSpec

REGISTRY: dict[str, FunctionSpec] = {}
SETTINGS: dict = {"endpoint_url": "", "region": "us-east-1"}


def register(function: FunctionSpec) -> None:
    REGISTRY[function.name] = function


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


def invoke(function: FunctionSpec, event: object) -> tuple[object, bool, str]:
    """Run the handler in a fresh subprocess; returns (result or Lambda error dict, errored, logs)."""
    try:
        done = subprocess.run(
            runner_command(function),
            input=json.dumps(event),
            capture_output=True,
            text=True,
            env=_environment(function),
            timeout=function.timeout,
        )
    except subprocess.TimeoutExpired as expired:
        logs = (expired.stderr or b"").decode() if isinstance(expired.stderr, bytes) else (expired.stderr or "")
        return (
            {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {function.timeout:.2f} seconds"},
            True,
            logs,
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return (
            {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"handler process exited with {done.returncode}: {done.stderr[-2000:]}",
            },
            True,
            done.stderr,
        )
    outcome = json.loads(lines[-1])
    if outcome["ok"]:
        return outcome["result"], False, done.stderr
    return outcome["error"], True, done.stderr


def invoke_by_name(name: str, event: object) -> tuple[object, bool, str]:
    function = REGISTRY.get(name)
    if function is None:
        return {"errorType": "ResourceNotFoundException", "errorMessage": f"{name} is not local code"}, True, ""
    return invoke(function, event)
