"""Audit pages for the local portal: recent executions, and each one's report."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from vidmod.audit.cli import audit
from vidmod.audit.render import to_html
from vidmod.local.clients import local_client


def audit_routes(endpoint_url: str, state_machine_arn: str, decisions_table: str) -> list[Route]:
    def client(service: str):
        return local_client(service, endpoint_url)

    def decisions() -> dict[str, dict]:
        items = client("dynamodb").scan(TableName=decisions_table).get("Items", [])
        return {i["executionName"]["S"]: {k: next(iter(v.values())) for k, v in i.items()} for i in items}

    async def index(request: Request) -> HTMLResponse:
        recorded = decisions()
        rows = []
        executions = client("stepfunctions").list_executions(stateMachineArn=state_machine_arn)["executions"]
        for execution in sorted(executions, key=lambda e: e["startDate"], reverse=True)[:200]:
            record = recorded.get(execution["name"], {})
            name = html.escape(execution["name"])
            rows.append(
                f"<tr><td><a href='/audit/{name}'>{name}</a></td><td>{html.escape(execution['status'])}</td>"
                f"<td>{html.escape(record.get('decision', ''))}</td><td>{html.escape(record.get('source', ''))}</td>"
                f"<td>{html.escape(record.get('reviewer', ''))}</td>"
                f"<td>{execution['startDate']:%Y-%m-%d %H:%M:%S}</td></tr>"
            )
        body = (
            "<!doctype html><meta charset='utf-8'><title>vidmod audit</title>"
            "<style>body{font:14px system-ui;margin:2rem}"
            "td,th{padding:.3rem .6rem;border-bottom:1px solid #eee}</style>"
            "<h1>Recent executions</h1><table><tr><th>execution</th><th>status</th><th>decision</th>"
            "<th>source</th><th>reviewer</th><th>started</th></tr>" + "".join(rows) + "</table>"
        )
        return HTMLResponse(body)

    async def report(request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        return HTMLResponse(to_html(audit(client("stepfunctions"), client("dynamodb"), decisions_table, arn)))

    return [Route("/audit", index), Route("/audit/{name}", report)]
