"""Unit-test helpers: load one Lambda's code in isolation, inside moto."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
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


@pytest.fixture
def load_function(monkeypatch):
    """Import ``functions/<name>/app.py`` with its sibling modules, as Lambda would (flat package root)."""
    loaded: list[str] = []

    def load(name: str):
        root = FUNCTIONS / name
        for module in [p.stem for p in root.glob("*.py")]:
            sys.modules.pop(module, None)
        monkeypatch.syspath_prepend(str(root))
        app = importlib.import_module("app")
        loaded.extend(p.stem for p in root.glob("*.py"))
        return app

    yield load
    for module in loaded:
        sys.modules.pop(module, None)


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
