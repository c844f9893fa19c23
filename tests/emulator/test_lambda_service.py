"""The local Lambda loads a function's layers as Lambda does, and nothing the function did not ship."""

from __future__ import annotations

from pathlib import Path

from vidmod.emulator import lambda_service
from vidmod.emulator.template import FunctionSpec, read_resources

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "layers" / "contracts"
FIXTURES = Path(__file__).parent / "fixtures"


def spec(layers: tuple[Path, ...]) -> FunctionSpec:
    return FunctionSpec(
        "UsesContracts",
        "uses-contracts",
        "arn:aws:lambda:us-east-1:123456789012:function:uses-contracts",
        FIXTURES / "uses_contracts",
        "app.lambda_handler",
        10,
        128,
        {},
        layers=layers,
        layer_packages=("vidmod_contracts",),
    )


def test_a_function_imports_the_contracts_from_its_layer():
    result, errored, logs = lambda_service.invoke(spec((CONTRACTS,)), {"at": "2026-12-01T10:00:00+00:00"})
    assert not errored, (result, logs)
    assert result["at"] == "2026-12-01T10:00:00.000Z"
    assert Path(result["from"]).is_relative_to(CONTRACTS)


def test_a_function_without_the_layer_fails_as_it_would_in_aws():
    result, errored, _ = lambda_service.invoke(spec(()), {"at": "2026-12-01T10:00:00Z"})
    assert errored
    assert result["errorType"] == "ModuleNotFoundError" and "vidmod_contracts" in result["errorMessage"]


def test_every_function_of_the_template_lists_the_contracts_layer():
    resources = read_resources(
        ROOT, "t", {"FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/x"}
    )
    assert resources.functions
    for function in resources.functions.values():
        assert function.layers == (CONTRACTS,), function.logical_id
        assert "vidmod_contracts" in function.layer_packages


def test_reserved_concurrency_is_read_from_the_template(tmp_path):
    (tmp_path / "sm.asl.json").write_text('{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}')
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Limited:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: f/, Handler: app.lambda_handler, ReservedConcurrentExecutions: 2}\n"
        "  Unlimited:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: f/, Handler: app.lambda_handler}\n"
        "  Machine:\n"
        "    Type: AWS::Serverless::StateMachine\n"
        "    Properties: {DefinitionUri: sm.asl.json}\n"
    )
    functions = read_resources(tmp_path, "t", {}).functions
    assert functions["Limited"].reserved_concurrency == 2
    assert functions["Unlimited"].reserved_concurrency is None
