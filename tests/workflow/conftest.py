"""Workflow tests run the real template, ASL and handlers on the embedded stack (see harness.py)."""

from __future__ import annotations

import pytest
from harness import Workflow, start_stack


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory)
    yield Workflow(stack, scripted)
    stack.stop()
