"""Unit-test helpers: load one Lambda's code in isolation, inside moto."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
# The ContractsLayer's content: in AWS at /opt/python, on sys.path after the function's own folder.
LAYER = ROOT / "layers" / "contracts"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def aws(monkeypatch):
    """moto for S3/DynamoDB/Step Functions (unit tests of AWS calls only; workflows run on the local engine)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def _is_contracts(module: str) -> bool:
    return module == "vidmod_contracts" or module.startswith("vidmod_contracts.")


@pytest.fixture
def load_function(monkeypatch):
    """Import ``functions/<name>/app.py`` as Lambda would: the function's folder is the (flat) package root,
    the layer's folder (``/opt/python``) comes after it, and the region is always set. Each load gets fresh
    copies of the function's modules and of ``vidmod_contracts``; the copies imported before are put back
    afterwards."""
    loaded: list[str] = []
    contracts_before = {name: module for name, module in sys.modules.items() if _is_contracts(name)}
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if not os.environ.get(variable):
            monkeypatch.setenv(variable, "us-east-1")

    def forget_contracts() -> None:
        for module in [name for name in sys.modules if _is_contracts(name)]:
            del sys.modules[module]

    def load(name: str):
        root = FUNCTIONS / name
        for module in [p.stem for p in root.glob("*.py")]:
            sys.modules.pop(module, None)
        forget_contracts()
        monkeypatch.syspath_prepend(str(LAYER))
        monkeypatch.syspath_prepend(str(root))
        app = importlib.import_module("app")
        loaded.extend(p.stem for p in root.glob("*.py"))
        return app

    yield load
    for module in loaded:
        sys.modules.pop(module, None)
    forget_contracts()
    sys.modules.update(contracts_before)


@pytest.fixture
def er(load_function):
    """The rule Lambda's decision modules, loaded as Lambda loads them: (rules, segments, taxonomy)."""
    load_function("evaluate_rules")
    return sys.modules["rules"], sys.modules["segments"], sys.modules["vidmod_contracts.taxonomy"]


class LambdaContext:
    function_name = "test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


@pytest.fixture
def lambda_context():
    return LambdaContext()
