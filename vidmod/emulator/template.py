"""Read template.yaml and resolve what the local stack needs from it.

Nothing about resources is written twice: buckets, tables, functions (code, handler, environment, timeout,
events), the state machine and its DefinitionSubstitutions all come from the SAM template, with the
CloudFormation intrinsics the template uses resolved to local names and ARNs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

from vidmod_contracts.schedules import rate_seconds

REGION = "us-east-1"
ACCOUNT = "123456789012"
NO_VALUE = object()
MODERATION_STATE_MACHINE = "ModerationStateMachine"


class TemplateError(ValueError):
    """The template uses something the local stack cannot reproduce."""


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` as the local Lambda runs it."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    events: dict[str, dict] = field(default_factory=dict)
    layers: tuple[Path, ...] = ()  # each listed layer's ContentUri: what Lambda unpacks to /opt/python
    layer_packages: tuple[str, ...] = ()  # what any of the template's layers ships: never from anywhere else
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions: the most environments at once


@dataclass
class LocalResources:
    stack_name: str
    parameters: dict[str, str]
    buckets: dict[str, dict]  # logical id → {"name", "versioned", "eventbridge", "objectLock"}
    tables: dict[str, dict]  # logical id → CreateTable kwargs
    functions: dict[str, FunctionSpec]
    state_machines: dict[str, dict]  # logical id → {"logical_id", "name", "arn", "definition"}
    rules: list[dict]  # [{"name", "pattern", "function"}] from EventBridgeRule events
    schedules: list[dict]  # [{"name", "seconds", "function"}] from Schedule events

    @property
    def state_machine(self) -> dict:
        """The moderation workflow (the template's other state machine is the backfill); a template with one
        state machine has only that one."""
        return self.state_machines.get(MODERATION_STATE_MACHINE) or next(iter(self.state_machines.values()))

    def function_by_name(self, name: str) -> FunctionSpec:
        return next(f for f in self.functions.values() if f.name == name)

    def bucket_name(self, logical_id: str) -> str:
        return self.buckets[logical_id]["name"]


def load_template(path: Path) -> dict:
    data, matches = decode_str(path.read_text(encoding="utf-8"))
    if matches:
        raise TemplateError(f"{path}: {matches[0]}")
    return data


def _rate_seconds(expression: str) -> int:
    seconds = rate_seconds(expression)
    if seconds is None:
        raise TemplateError(f"unsupported schedule {expression!r} (only rate(...) is run locally)")
    return seconds


class Resolver:
    """Resolves the CloudFormation intrinsics this project's template uses."""

    def __init__(self, template: dict, stack_name: str, parameters: dict[str, str]):
        self.template = template
        self.stack_name = stack_name
        self.parameters = parameters
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.conditions = {name: self.resolve(cond) for name, cond in template.get("Conditions", {}).items()}

    def physical_name(self, logical_id: str) -> str:
        resource = self.template["Resources"][logical_id]
        kind, props = resource["Type"], resource.get("Properties", {})
        explicit = props.get("FunctionName") if kind == "AWS::Serverless::Function" else None
        if kind == "AWS::Serverless::StateMachine":
            explicit = props.get("Name")
        if explicit is not None:  # named in the template (to be reached by a built ARN)
            return self.resolve(explicit)
        if kind == "AWS::S3::Bucket":
            return f"{self.stack_name}-{logical_id}".lower()
        return f"{self.stack_name}-{logical_id}"

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        resource = self.template["Resources"].get(name)
        if resource is None:
            raise TemplateError(f"!Ref {name}: no such parameter or resource")
        if resource["Type"] in {"AWS::Serverless::StateMachine", "AWS::Serverless::LayerVersion"}:
            return self.attribute(name, "Arn")
        return self.physical_name(name)

    def attribute(self, logical_id: str, attribute: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        name = self.physical_name(logical_id)
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::Serverless::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::Serverless::LayerVersion": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:1",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        if attribute == "Name":
            return name
        raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not resolved locally")

    def _sub(self, text: str, variables: dict) -> str:
        def replace(match: re.Match) -> str:
            token = match[1]
            if token in variables:
                return str(variables[token])
            if "." in token and not token.startswith("AWS::"):
                return self.attribute(*token.split(".", 1))
            return str(self.ref(token))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(logical_id, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return self._sub(text, variables)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.conditions[name] else no)
            if key == "Fn::Equals":
                left, right = self.resolve(arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::FindInMap":
                mapping, top, second = self.resolve(arg)
                return self.template["Mappings"][mapping][top][second]
            if key == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = self.resolve(arg)
                return text.split(separator)
            if key == "Fn::Join":
                separator, items = self.resolve(arg)
                return separator.join(str(i) for i in items)
            if key.startswith("Fn::"):
                raise TemplateError(f"intrinsic {key} is not resolved locally")
        return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not NO_VALUE}


def parameter_values(template: dict, overrides: dict[str, str], ranges: bool = True) -> dict[str, str]:
    """The template's parameters with ``overrides`` applied and checked as CloudFormation checks them
    (``ranges=False`` skips MinValue/MaxValue: tests shrink time limits below what a deployment may use)."""
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default: pass it as an override")
    unknown = set(overrides) - set(values)
    if unknown:
        raise TemplateError(f"unknown parameter overrides: {sorted(unknown)}")
    for name in overrides:
        _check_parameter(name, values[name], template["Parameters"][name], ranges)
    return values


def _check_parameter(name: str, value: str, spec: dict, ranges: bool) -> None:
    """CloudFormation's own checks of a parameter value, so a bad override fails here as `sam deploy` would."""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        raise TemplateError(f"parameter {name}={value!r} must be one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} must be a number") from None
        if not ranges:
            return
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below its MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above its MaxValue {spec['MaxValue']}")


def _object_lock(configuration: dict) -> dict:
    """CloudFormation's ObjectLockConfiguration is PutObjectLockConfiguration's, with numbers as strings."""
    retention = configuration.get("Rule", {}).get("DefaultRetention", {})
    for unit in ("Days", "Years"):
        if unit in retention:
            retention[unit] = int(retention[unit])
    return configuration


def _layers(template: dict, resolver: Resolver, root: Path) -> dict[str, Path]:
    """The template's own layers by ARN → their content folder (``/opt/python`` in Lambda)."""
    return {
        resolver.attribute(logical_id, "Arn"): (root / resource["Properties"]["ContentUri"]).resolve()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    }


def _packages(folders: list[Path]) -> tuple[str, ...]:
    return tuple(sorted({p.parent.name for folder in folders for p in folder.glob("*/__init__.py")}))


def _function_layers(props: dict, globals_fn: dict, resolver: Resolver, layers: dict[str, Path]) -> tuple[Path, ...]:
    """Globals' layers then the function's (SAM appends them), each one of the template's own."""
    arns = resolver.resolve(globals_fn.get("Layers", [])) + resolver.resolve(props.get("Layers", []))
    unknown = [arn for arn in arns if arn not in layers]
    if unknown:
        raise TemplateError(f"layers {unknown} are not defined in the template: they cannot be run locally")
    return tuple(layers[arn] for arn in arns)


def _reserved_concurrency(props: dict, resolver: Resolver) -> int | None:
    value = resolver.resolve(props.get("ReservedConcurrentExecutions"))
    return None if value in (None, NO_VALUE) else int(value)


def read_resources(root: Path, stack_name: str, overrides: dict[str, str], ranges: bool = True) -> LocalResources:
    template = load_template(root / "template.yaml")
    params = parameter_values(template, overrides, ranges)
    resolver = Resolver(template, stack_name, params)
    globals_fn = template.get("Globals", {}).get("Function", {})
    layers = _layers(template, resolver, root)
    layer_packages = _packages(list(layers.values()))
    buckets, tables, functions, rules, schedules = {}, {}, {}, [], []
    state_machines = {}
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            buckets[logical_id] = {
                "name": resolver.physical_name(logical_id),
                "versioned": props.get("VersioningConfiguration", {}).get("Status") == "Enabled",
                "eventbridge": bool(
                    props.get("NotificationConfiguration", {})
                    .get("EventBridgeConfiguration", {})
                    .get("EventBridgeEnabled")
                ),
                "objectLock": _object_lock(resolver.resolve(props["ObjectLockConfiguration"]))
                if props.get("ObjectLockEnabled")
                else None,
            }
        elif kind == "AWS::DynamoDB::Table":
            tables[logical_id] = {
                "TableName": resolver.physical_name(logical_id),
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": "PAY_PER_REQUEST",
            }
        elif kind == "AWS::Serverless::Function":
            merged_env = {
                **globals_fn.get("Environment", {}).get("Variables", {}),
                **props.get("Environment", {}).get("Variables", {}),
            }
            spec = FunctionSpec(
                logical_id=logical_id,
                name=resolver.physical_name(logical_id),
                arn=resolver.attribute(logical_id, "Arn"),
                code_dir=(root / props["CodeUri"]).resolve(),
                handler=props.get("Handler", globals_fn.get("Handler", "app.lambda_handler")),
                timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
                environment={k: str(v) for k, v in resolver.resolve(merged_env).items()},
                events=props.get("Events", {}),
                layers=_function_layers(props, globals_fn, resolver, layers),
                layer_packages=layer_packages,
                reserved_concurrency=_reserved_concurrency(props, resolver),
            )
            functions[logical_id] = spec
            for event_name, event in spec.events.items():
                if event["Type"] == "EventBridgeRule":
                    rules.append(
                        {
                            "name": f"{logical_id}.{event_name}",
                            "pattern": resolver.resolve(event["Properties"]["Pattern"]),
                            "function": spec.name,
                        }
                    )
                elif event["Type"] == "Schedule":
                    expression = resolver.resolve(event["Properties"]["Schedule"])
                    schedules.append(
                        {
                            "name": f"{logical_id}.{event_name}",
                            "seconds": _rate_seconds(expression),
                            "function": spec.name,
                        }
                    )
        elif kind == "AWS::Serverless::StateMachine":
            definition = (root / props["DefinitionUri"]).read_text(encoding="utf-8")
            substitutions = resolver.resolve(props.get("DefinitionSubstitutions", {}))
            for key, value in substitutions.items():
                definition = definition.replace("${" + key + "}", str(value))
            leftover = re.findall(r"\$\{(\w+)\}", definition)
            if leftover:
                raise TemplateError(f"definition placeholders without substitution: {leftover}")
            json.loads(definition)
            state_machines[logical_id] = {
                "logical_id": logical_id,
                "name": resolver.physical_name(logical_id),
                "arn": resolver.attribute(logical_id, "Arn"),
                "definition": definition,
            }
    if not state_machines:
        raise TemplateError("template has no AWS::Serverless::StateMachine")
    return LocalResources(stack_name, params, buckets, tables, functions, state_machines, rules, schedules)
