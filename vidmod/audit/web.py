"""Audit pages for the local portal: recent executions (with an integrity mark each), and each one's report.

Handlers are plain ``def``: boto3 blocks, so Starlette runs them in its thread pool.
"""

from __future__ import annotations

import html

from botocore.exceptions import ClientError
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from vidmod.audit.history import all_events
from vidmod.audit.record import check_record, plain, record_write
from vidmod.audit.render import to_html
from vidmod.audit.sources import AuditSources, audit
from vidmod.audit.timeline import final_facts
from vidmod.local.clients import local_client

INDEX_ROWS = 100
NOT_FOUND = {"ExecutionDoesNotExist", "InvalidArn", "InvalidName"}
STYLE = "<style>body{font:14px system-ui;margin:2rem}td,th{padding:.3rem .6rem;border-bottom:1px solid #eee}</style>"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}{body}", status_code=status
    )


def audit_routes(endpoint_url: str, state_machine_arn: str, decisions_table: str, audit_bucket: str) -> list[Route]:
    def sources() -> AuditSources:
        clients = [local_client(service, endpoint_url) for service in ("stepfunctions", "dynamodb", "s3")]
        return AuditSources(*clients, decisions_table, state_machine_arn, audit_bucket)

    def decisions(ddb) -> dict[str, dict]:
        """Every decision record (typed), by execution name; the scan is paged."""
        items, kwargs = [], {"TableName": decisions_table}
        while True:
            page = ddb.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return {i["executionName"]["S"]: i for i in items}
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark(sfn, execution: dict, record: dict | None) -> str:
        """The record check of the full audit (history vs stored item), without reading S3 evidence."""
        events = all_events(sfn, execution["executionArn"])
        running = execution["status"] == "RUNNING"
        findings, notes = check_record(final_facts(events), record_write(events), record, running)
        if findings:
            return "<span style='color:#a31515' title='integrity findings: open the report'>✗ altered</span>"
        if notes:
            return "… in progress" if running else "– no record"
        return "✓ record"  # the report also checks the evidence files and the archive

    def index(request: Request) -> HTMLResponse:
        src = sources()
        recorded = decisions(src.ddb)
        pages = src.sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn)
        executions = sorted((e for p in pages for e in p["executions"]), key=lambda e: e["startDate"], reverse=True)
        rows = []
        for execution in executions[:INDEX_ROWS]:
            item = recorded.get(execution["name"])
            record = plain(item) or {}
            name = html.escape(execution["name"])
            cells = [record.get(k, "") for k in ("decision", "source", "reviewer")]
            rows.append(
                f"<tr><td><a href='/audit/{name}'>{name}</a></td><td>{html.escape(execution['status'])}</td>"
                + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)  # an altered item may hold any type
                + f"<td>{execution['startDate']:%Y-%m-%d %H:%M:%S}</td><td>{mark(src.sfn, execution, item)}</td></tr>"
            )
        return _page(
            "vidmod audit",
            "<h1>Recent executions</h1><table><tr><th>execution</th><th>status</th><th>decision</th>"
            "<th>source</th><th>reviewer</th><th>started</th><th>integrity (record)</th></tr>"
            + "".join(rows)
            + "</table>",
        )

    def report(request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        try:
            return HTMLResponse(to_html(audit(sources(), name)))
        except LookupError as error:
            return _page("not found", f"<h1>Not found</h1><p>{html.escape(str(error))}</p>", 404)
        except ValueError as error:  # e.g. an archive that is not one any more
            return _page("cannot audit", f"<h1>Cannot audit</h1><p>{html.escape(str(error))}</p>", 422)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in NOT_FOUND:
                raise
            return _page("not found", f"<h1>Not found</h1><p>no execution named {html.escape(name)}</p>", 404)

    return [Route("/audit", index), Route("/audit/{name}", report)]
