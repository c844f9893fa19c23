"""Audit pages for the local portal: recent executions (with an integrity mark each), and each one's report.

Handlers are plain ``def``: boto3 blocks, so Starlette runs them in its thread pool. The index and the error
pages are the portal's Liquid templates (``templates/audit_*.liquid.html``, autoescaped); a report is
``vidmod.audit.render.to_html``.
"""

from __future__ import annotations

from botocore.exceptions import ClientError
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from vidmod.audit.history import all_events
from vidmod.audit.record import check_record, plain, record_write
from vidmod.audit.render import to_html
from vidmod.audit.sources import AuditSources, audit
from vidmod.audit.timeline import final_facts
from vidmod.emulator.clients import local_client
from vidmod.emulator.portal.pages import render_page

INDEX_ROWS = 100
NOT_FOUND = {"ExecutionDoesNotExist", "InvalidArn", "InvalidName"}


def _error(title: str, message: str, status_code: int) -> HTMLResponse:
    return render_page("audit_error.liquid.html", status_code, title=title, message=message)


def audit_routes(
    endpoint_url: str,
    state_machine_arn: str,
    decisions_table: str,
    audit_bucket: str,
    audit_state_machine_arn: str = "",
) -> list[Route]:
    """The audit pages: moderation executions and, when ``audit_state_machine_arn`` is given, audit executions."""
    machines = [arn for arn in (state_machine_arn, audit_state_machine_arn) if arn]

    def sources() -> AuditSources:
        clients = [local_client(service, endpoint_url) for service in ("stepfunctions", "dynamodb", "s3")]
        return AuditSources(*clients, decisions_table, state_machine_arn, audit_bucket, audit_state_machine_arn)

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
        """The record check of the full audit (history vs stored item), without reading S3 evidence:
        altered, running, missing or ok."""
        events = all_events(sfn, execution["executionArn"])
        running = execution["status"] == "RUNNING"
        findings, notes = check_record(final_facts(events), record_write(events), record, running)
        if findings:
            return "altered"
        if notes:
            return "running" if running else "missing"
        return "ok"  # the report also checks the evidence files and the archive

    def index(request: Request) -> HTMLResponse:
        src = sources()
        recorded = decisions(src.ddb)
        paginator = src.sfn.get_paginator("list_executions")
        listed = [e for arn in machines for p in paginator.paginate(stateMachineArn=arn) for e in p["executions"]]
        executions = sorted(listed, key=lambda e: e["startDate"], reverse=True)
        rows = []
        for execution in executions[:INDEX_ROWS]:
            item = recorded.get(execution["name"])
            record = plain(item) or {}
            rows.append(
                {
                    "name": execution["name"],
                    "status": execution["status"],
                    # as text: an altered item may hold any type
                    "record": [str(record.get(k, "")) for k in ("decision", "source", "reviewer")],
                    "started": f"{execution['startDate']:%Y-%m-%d %H:%M:%S}",
                    "integrity": mark(src.sfn, execution, item),
                }
            )
        return render_page("audit_index.liquid.html", executions=rows)

    def report(request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        try:
            return HTMLResponse(to_html(audit(sources(), name)))
        except LookupError as error:
            return _error("not found", str(error), 404)
        except ValueError as error:  # e.g. an archive that is not one any more
            return _error("cannot audit", str(error), 422)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in NOT_FOUND:
                raise
            return _error("not found", f"no execution named {name}", 404)

    return [Route("/audit", index), Route("/audit/{name}", report)]
