"""Read the CloudWatch embedded metric format documents a function printed (Powertools Metrics)."""

from __future__ import annotations

import json


def emf_documents(stdout: str) -> list[dict]:
    """Every EMF document among the printed lines (Powertools logs are JSON lines too, without ``_aws``)."""
    documents = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metrics(stdout: str) -> dict[str, dict]:
    """Metric name → {"value", "unit", "namespace", "dimensions": {name: value}} for each metric printed
    (a name printed twice is a failure: every metric here goes out once per invocation)."""
    found: dict[str, dict] = {}
    for document in emf_documents(stdout):
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        (dimension_names,) = directive["Dimensions"]
        for definition in directive["Metrics"]:
            name, values = definition["Name"], document[definition["Name"]]
            assert name not in found, f"{name} printed twice"
            (value,) = values if isinstance(values, list) else [values]  # Powertools writes a list of one
            found[name] = {
                "value": value,
                "unit": definition["Unit"],
                "namespace": directive["Namespace"],
                "dimensions": {dimension: document[dimension] for dimension in dimension_names},
            }
    return found
