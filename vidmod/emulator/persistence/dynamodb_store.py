"""DynamoDB on disk: a journal of item changes, one record per item written, compacted on every start.

``commit`` compares each table it is asked about with what the journal already holds and appends the items
that changed (or ``None`` for a deleted one) in one fsync'd append. Tables themselves come from
template.yaml at every start; their key schema is journaled too, so a template that changed a table's key
is refused rather than loaded into the wrong shape.
"""

from __future__ import annotations

import json
from pathlib import Path

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType

from vidmod.emulator import journal


class KeySchemaChanged(RuntimeError):
    """The journal's items were written under another key schema than the template's."""


def _item_key(table, attributes: dict) -> str:
    return json.dumps([attributes.get(table.hash_key_attr), attributes.get(table.range_key_attr or "")], sort_keys=True)


class DynamoDBStore:
    def __init__(self, path: Path, account: str, region: str):
        self.path = Path(path)
        self.account, self.region = account, region
        self._items: dict[str, dict[str, str]] = {}  # table → item key → item JSON, as journaled
        self._schemas: dict[str, list] = {}
        self._journal: journal.Journal | None = None

    @property
    def backend(self):
        return dynamodb_backends[self.account][self.region]

    def load(self) -> dict[str, dict[str, str]]:
        """Read the journal (a torn last record is skipped) and compact it; the items are put back by ``restore``."""
        for record in journal.read(self.path):
            if "schema" in record:
                self._schemas[record["table"]] = record["schema"]
            elif record["item"] is None:
                self._items.get(record["table"], {}).pop(record["key"], None)
            else:
                self._items.setdefault(record["table"], {})[record["key"]] = record["item"]
        journal.rewrite(self.path, self._compacted())
        self._journal = journal.Journal(self.path)
        return self._items

    def _compacted(self):
        for table, schema in self._schemas.items():
            yield {"table": table, "schema": schema}
        for table, items in self._items.items():
            for key, item in items.items():
                yield {"table": table, "key": key, "item": item}

    def restore(self) -> int:
        """Put the journaled items into the (just created) tables; returns how many."""
        restored = 0
        for name, table in self.backend.tables.items():
            saved = self._schemas.get(name)
            if saved is not None and saved != table.schema:
                raise KeySchemaChanged(
                    f"table {name} has key {saved} in the saved state but {table.schema} in template.yaml"
                )
            for item in self._items.get(name, {}).values():
                table.put_item(json.loads(item))
                restored += 1
        return restored

    def commit(
        self, table_names: set[str] | None = None, keys: dict[str, list[dict]] | None = None, sync: bool = True
    ) -> int:
        """Journal the items that changed in ``table_names`` (all tables when None); returns how many.
        ``sync=False``: written, not yet on disk — the caller calls ``sync`` before it answers.

        ``keys`` (table → the key or item attributes a request named) limits the comparison to those items, so a
        write costs the same in a table of ten items or of a million; a table without them is compared whole.
        """
        records = []
        tables = self.backend.tables
        for name in sorted(set(tables) if table_names is None else table_names & set(tables)):
            table = tables[name]
            if self._schemas.get(name) != table.schema:
                self._schemas[name] = table.schema
                records.append({"table": name, "schema": table.schema})
            named = (keys or {}).get(name)
            changed = self._compare_items(name, table, named) if named else None
            records.extend(changed if changed is not None else self._compare_table(name, table))
        if records and self._journal is not None:
            self._journal.append(*records, sync=sync)
        return len(records)

    def sync(self) -> None:
        if self._journal is not None:
            self._journal.sync()

    def _compare_table(self, name: str, table) -> list[dict]:
        known, current, records = self._items.setdefault(name, {}), {}, []
        for item in table.all_items():
            attributes = item.to_json()["Attributes"]
            current[_item_key(table, attributes)] = json.dumps(attributes, sort_keys=True)
        for key, item in current.items():
            if known.get(key) != item:
                records.append({"table": name, "key": key, "item": item})
        records.extend({"table": name, "key": key, "item": None} for key in known.keys() - current.keys())
        self._items[name] = current
        return records

    def _compare_items(self, name: str, table, named: list[dict]) -> list[dict] | None:
        """The records for the items ``named``; None when one cannot be looked up by its key (compare the table)."""
        known, records = self._items.setdefault(name, {}), []
        for attributes in named:
            hash_value = attributes.get(table.hash_key_attr)
            range_value = attributes.get(table.range_key_attr) if table.range_key_attr else None
            if hash_value is None or (table.range_key_attr and range_value is None):
                return None
            item = table.get_item(DynamoType(hash_value), DynamoType(range_value) if range_value else None)
            if item is None:
                key = _item_key(table, attributes)
                if key not in known:  # never journaled, or journaled under another spelling of its key
                    return None
                del known[key]
                records.append({"table": name, "key": key, "item": None})
                continue
            stored = item.to_json()["Attributes"]
            key, value = _item_key(table, stored), json.dumps(stored, sort_keys=True)
            if known.get(key) != value:
                known[key] = value
                records.append({"table": name, "key": key, "item": value})
        return records

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
