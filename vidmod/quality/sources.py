"""Where the quality figures read from: the decisions table (a paged Scan) and the A2I output.json files the
review records name (GetObject). The same calls answer against AWS and against the local endpoint; only the
clients differ."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from vidmod.quality.figures import Figures, compute, in_window, output_uri
from vidmod.quality.window import Window

MISSING = {"NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403", "NoSuchVersion"}
_DESERIALIZE = TypeDeserializer()


def plain(item: Mapping[str, Any]) -> dict:
    """A typed DynamoDB item as {name: value} (RecordDecision writes strings; anything else is kept as read)."""
    values = {}
    for name, typed in item.items():
        try:
            values[name] = _DESERIALIZE.deserialize(typed)
        except (TypeError, ValueError, AttributeError):
            values[name] = None
    return values


def split_s3_uri(uri: str) -> tuple[str, str] | None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return (bucket, key) if uri.startswith("s3://") and bucket and key else None


@dataclass
class QualitySources:
    ddb: Any
    s3: Any
    decisions_table: str

    def records(self) -> list[dict]:
        """Every decision record, every page of the scan."""
        items, kwargs = [], {"TableName": self.decisions_table}
        while True:
            page = self.ddb.scan(**kwargs)
            items += [plain(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def output(self, uri: str) -> dict | None:
        """A parsed output.json; None when it is gone, not readable or not a JSON object."""
        where = split_s3_uri(uri)
        if where is None:
            return None
        try:
            body = self.s3.get_object(Bucket=where[0], Key=where[1])["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise
        try:
            output = json.loads(body)
        except ValueError:
            return None
        return output if isinstance(output, dict) else None

    def outputs(self, records: Iterable[Mapping[str, Any]], window: Window) -> dict[str, dict | None]:
        """The output.json of every review record decided in the window, by URI (None: not readable)."""
        uris = sorted({output_uri(r) for r in records if in_window(r, window)} - {""})
        return {uri: self.output(uri) for uri in uris}


def read_figures(sources: QualitySources, window: Window) -> Figures:
    records = sources.records()
    outputs = sources.outputs(records, window)
    unreadable = sum(value is None for value in outputs.values())
    notes = (
        [f"{unreadable} review output(s) not readable: those reviews counted from their record"] if unreadable else []
    )
    return compute(records, outputs, window, notes)
