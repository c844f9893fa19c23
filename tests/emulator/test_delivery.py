"""Event deliveries to Lambda, as in AWS: a failed invocation is retried twice, after a pause each time."""

from __future__ import annotations

import time

from vidmod.emulator import stack as stack_module
from vidmod.emulator.stack import LocalStack, StackOptions


def test_a_failing_target_is_retried_twice_after_pauses_then_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(stack_module, "ASYNC_RETRY_SECONDS", 0.2)
    stack = LocalStack(StackOptions(state_dir=tmp_path))  # not started: only its delivery path is used
    calls: list[float] = []
    monkeypatch.setattr(stack, "invoke", lambda name, event: (calls.append(time.monotonic()), ({}, True))[1])
    stack._deliver("CompleteHumanReviewFunction", {"detail": {}})
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.2 and calls[2] - calls[1] >= 0.4  # one, then two pauses


def test_a_delivery_that_succeeds_is_not_repeated_and_a_stopping_stack_stops_retrying(tmp_path, monkeypatch):
    stack = LocalStack(StackOptions(state_dir=tmp_path))
    outcomes = iter([({}, True), ({"ok": True}, False)])
    calls: list[str] = []
    monkeypatch.setattr(stack, "invoke", lambda name, event: (calls.append(name), next(outcomes))[1])
    monkeypatch.setattr(stack_module, "ASYNC_RETRY_SECONDS", 0.05)
    assert stack._deliver("f", {}) is True
    assert calls == ["f", "f"]
    stack._stop.set()
    monkeypatch.setattr(stack, "invoke", lambda name, event: (calls.append(name), ({}, True))[1])
    assert stack._deliver("g", {}) is False  # not delivered: the next start delivers it (events.jsonl)
    assert calls == ["f", "f"]  # a stopping stack starts no delivery and no retry
