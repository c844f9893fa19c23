"""Warm execution environments: reused between invocations, more while invocations overlap, replaced when they
time out or crash, and visible in the function's log as Lambda shows them (INIT_START, START, END, REPORT)."""

from __future__ import annotations

import dataclasses
import re
import threading
from pathlib import Path

import pytest

from vidmod.emulator import lambda_service
from vidmod.emulator.template import FunctionSpec

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def logs(tmp_path):
    lambda_service.configure("http://127.0.0.1:1", "us-east-1", tmp_path / "logs")
    yield tmp_path / "logs"
    lambda_service.shutdown()


def warm(name: str = "warm", **changes) -> FunctionSpec:
    function = FunctionSpec(
        "Warm", name, f"arn:aws:lambda:us-east-1:123456789012:function:{name}", FIXTURES / "warm",
        "app.lambda_handler", 10, 128, {"GREETING": "hello"},
    )  # fmt: skip
    return dataclasses.replace(function, **changes)


def invoke(function: FunctionSpec, event: dict | None = None) -> dict:
    result, errored, logs = lambda_service.invoke(function, event or {})
    assert not errored, (result, logs)
    return result


def together(function: FunctionSpec, events: list[dict]) -> list[tuple]:
    """Invoke at the same moment from several threads, as overlapping executions do."""
    start, results = threading.Barrier(len(events)), [None] * len(events)

    def run(index: int) -> None:
        start.wait()
        results[index] = lambda_service.invoke(function, events[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_an_environment_is_reused_and_keeps_its_module_state(logs):
    function = warm()
    first, second = invoke(function), invoke(function)
    assert first["pid"] == second["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)
    log = (logs / "warm.log").read_text()
    assert log.count("INIT_START") == 1 and log.count("START RequestId") == 2 and log.count("END RequestId") == 2
    reports = re.findall(r"REPORT RequestId: \S+\tDuration: [\d.]+ ms.*", log)
    assert len(reports) == 2
    assert "Init Duration:" in reports[0] and "Init Duration:" not in reports[1]
    assert "Max Memory Used:" in reports[1] and "Memory Size: 128 MB" in reports[1]
    assert "invocation 2 in" in log  # the handler's own output lands in the function's log


def test_overlapping_invocations_get_their_own_environments(logs):
    function = warm()
    results = together(function, [{"sleep": 1.5}, {"sleep": 1.5}])
    assert all(not errored for _, errored, _ in results)
    assert len({result["pid"] for result, _, _ in results}) == 2
    assert (logs / "warm.log").read_text().count("INIT_START") == 2


def test_reserved_concurrency_limits_the_environments(logs):
    function = warm(reserved_concurrency=1)
    results = together(function, [{"sleep": 0.5}, {"sleep": 0.5}, {"sleep": 0.5}])
    assert len({result["pid"] for result, _, _ in results}) == 1
    assert sorted(result["invocations"] for result, _, _ in results) == [1, 2, 3]


def test_a_timed_out_environment_is_killed_and_replaced(logs):
    function = warm(timeout=1)
    before = invoke(function)
    result, errored, _ = lambda_service.invoke(function, {"sleep": 5})
    assert errored and result["errorType"] == "Sandbox.Timedout"
    after = invoke(function)
    assert after["pid"] != before["pid"] and after["invocations"] == 1
    assert "Status: timeout" in (logs / "warm.log").read_text()


def test_a_crashed_environment_is_replaced(logs):
    function = warm()
    before = invoke(function)
    result, errored, _ = lambda_service.invoke(function, {"exit": 3})
    assert errored and result["errorType"] == "Runtime.ExitError" and "exited with 3" in result["errorMessage"]
    after = invoke(function)
    assert after["pid"] != before["pid"] and after["invocations"] == 1


def test_functions_are_isolated_from_each_other(logs):
    hello, bonjour = warm("hello"), warm("bonjour", environment={"GREETING": "bonjour"})
    a, b = invoke(hello), invoke(bonjour)
    assert a["pid"] != b["pid"]
    assert (a["greeting"], b["greeting"]) == ("hello", "bonjour")
    assert (a["invocations"], b["invocations"]) == (1, 1)


def test_an_init_error_fails_the_invocation_and_the_next_one_tries_again(logs):
    function = warm(environment={"INIT_FAILS": "1"})
    for _ in range(2):
        result, errored, _ = lambda_service.invoke(function, {})
        assert errored and result["errorType"] == "RuntimeError" and "configuration missing" in result["errorMessage"]
    log = (logs / "warm.log").read_text()
    assert log.count("INIT_START") == 2 and log.count("Status: error") == 2


def test_a_new_endpoint_starts_new_environments(logs, tmp_path):
    function = warm()
    before = invoke(function)
    lambda_service.configure("http://127.0.0.1:2", "us-east-1", logs)
    assert invoke(function)["pid"] != before["pid"]


def test_reserved_concurrency_zero_stops_the_function(logs):
    result, errored, _ = lambda_service.invoke(warm(reserved_concurrency=0), {})
    assert errored and result["errorType"] == "TooManyRequestsException"
