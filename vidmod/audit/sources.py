"""Where an audit reads from: Step Functions (or the archive once it has forgotten), DynamoDB, S3.

The same calls answer against AWS and against the local endpoint; only the clients differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from vidmod.audit.archive import MISSING, Archived, compare, overwrite_findings, read_archive
from vidmod.audit.history import all_events, iso
from vidmod.audit.record import plain, record_key, record_write
from vidmod.audit.sampling import audit_link
from vidmod.audit.timeline import AuditReport, build_report
from vidmod_contracts.archive import (
    archive_key,
    archive_prefix,
    execution_archives_prefix,
    latest_archive_key,
    redrive_count_of,
)
from vidmod_contracts.executions import execution_arn, name_stem


@dataclass
class History:
    events: list[dict]
    source: str
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class AuditSources:
    sfn: Any
    ddb: Any
    s3: Any
    decisions_table: str
    state_machine_arn: str = ""
    archive_bucket: str = ""  # AuditBucketName; "" = no archive
    audit_state_machine_arn: str = ""  # AuditStateMachineArn: completes the names of audit executions

    def execution_arn(self, target: str) -> str:
        """An execution ARN as given, or a name completed with the state machine ARN (like `vidmod status`): the
        audit state machine's for a name ending in ``-audit`` (what the moderation names its audits)."""
        if target.startswith("arn:"):
            if ":execution:" not in target:
                raise LookupError(f"{target} is not an execution ARN")
            return target
        if target.endswith("-audit") and self.audit_state_machine_arn:
            return execution_arn(self.audit_state_machine_arn, target)
        if not self.state_machine_arn:
            raise LookupError(f"{target}: an execution name needs the state machine ARN (--stack-name)")
        return execution_arn(self.state_machine_arn, target)

    def fetch(self, bucket: str, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise

    def archive(self, arn: str) -> tuple[Archived | None, list[str]]:
        """The archive of the execution's latest run (each end of a redriven execution has its own, and the
        latest holds every earlier run's events too), and the keys of all its archives."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.archive_bucket, Prefix=execution_archives_prefix(arn)
        )
        try:
            keys = [
                o["Key"]
                for page in pages
                for o in page.get("Contents", [])
                if redrive_count_of(arn, o["Key"]) is not None
            ]
            key = latest_archive_key(arn, keys)
            if key is None:
                return None, []
            return read_archive(self.s3, self.archive_bucket, arn, key), keys
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return None, []
            raise

    def record(self, key: dict) -> dict | None:
        return self.ddb.get_item(TableName=self.decisions_table, Key=key, ConsistentRead=True).get("Item")

    def video_records(self, uri: str) -> list[dict]:
        """Every decision record of the video (every page), as {name: value}."""
        items, kwargs = (
            [],
            {
                "TableName": self.decisions_table,
                "KeyConditionExpression": "videoUri = :v",
                "ExpressionAttributeValues": {":v": {"S": uri}},
            },
        )
        while True:
            page = self.ddb.query(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [plain(item) for item in items]

    def history(self, arn: str, from_archive: bool = False) -> History:
        """The live history when Step Functions still has it, checked against the archive; else the archive."""
        live, described = None, None
        if not from_archive:
            try:
                live = all_events(self.sfn, arn)
                described = self.sfn.describe_execution(executionArn=arn)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
                    raise
        where = f"s3://{self.archive_bucket}" if self.archive_bucket else "no audit bucket configured"
        try:
            archived, keys = self.archive(arn) if self.archive_bucket else (None, [])
        except ClientError as error:
            if live is None:
                raise
            archived, keys = None, []
            where = f"{where} unreadable: {error.response.get('Error', {}).get('Code')}"
        notes = []
        if archived is not None and len(keys) > 1:
            notes.append(f"{len(keys)} archives of this execution (one per end: it was redriven): read {archived.key}")
        if live is not None:
            history = History(live, "GetExecutionHistory", notes=notes)
            self._check_live(history, arn, archived, described or {}, where)
            return history
        if archived is None:
            raise LookupError(
                f"{arn}: no such execution"
                + (" in the archive" if from_archive else f" (not in Step Functions, nor archived: {where})")
            )
        history = History(archived.events, f"archive s3://{self.archive_bucket}/{archived.key} ({archived.archivedAt})")
        history.findings = overwrite_findings(archived)
        history.notes = notes
        return history

    def _check_live(self, history: History, arn: str, archived: Archived | None, described: dict, where: str) -> None:
        """Compare the live history with the archive of its latest archived run; say when a run that ended
        has no archive."""
        runs = int(described.get("redriveCount") or 0)  # how often the execution was redriven so far
        archived_run = -1 if archived is None else redrive_count_of(arn, archived.key) or 0
        if archived is not None:
            live, checked = history.events, described
            if archived_run < runs:  # redriven since: the archive holds the history up to that run's end
                live, checked = live[: len(archived.events)], None
                history.notes.append(
                    f"the execution was redriven after {archived.key} was written: "
                    f"its first {len(archived.events)} events were compared"
                )
            history.findings = overwrite_findings(archived) + compare(archived, live, checked)
            history.source += f", matched against the archive s3://{self.archive_bucket}/{archived.key}"
        if described.get("status") != "RUNNING" and archived_run < runs:
            unarchived = f"{where}: no {archive_key(arn, runs)}" if runs and self.archive_bucket else where
            history.notes.append(f"not archived ({unarchived}): after 90 days this history is gone")

    # ------------------------------------------------------------------ s3:// targets
    def executions_for_video(self, uri: str, version: str | None = None) -> list[str]:
        """Every execution for the video (all versions, or one), oldest first: from the decision records,
        else (nothing recorded yet) from ListExecutions and the archive."""
        arns = self._recorded(uri, version) or self._listed(uri, version)
        if not arns:
            raise LookupError(f"no execution found for {uri}" + (f" version {version}" if version else ""))
        return arns

    def _recorded(self, uri: str, version: str | None) -> list[str]:
        """Oldest first; an audit (its own record, started after the decision it audits) follows it."""
        chosen = [i for i in self.video_records(uri) if version is None or i.get("versionId") == version]
        chosen.sort(key=lambda i: i.get("startedAt", ""))
        return [i["executionArn"] for i in chosen if "executionArn" in i]

    def _matches(self, input_text: str, uri: str, version: str | None) -> bool:
        video = json.loads(input_text or "{}").get("video") or {}
        same = isinstance(video, dict) and f"s3://{video.get('bucket')}/{video.get('key')}" == uri
        return same and (version is None or video.get("versionId") == version)

    def _listed(self, uri: str, version: str | None) -> list[str]:
        key = uri.removeprefix("s3://").partition("/")[2]
        stem = name_stem(key)  # submit names executions "<stem of the key>-<digest>"
        found: dict[str, str] = {}  # arn → start date
        if self.state_machine_arn:
            pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn)
            for execution in (e for page in pages for e in page["executions"]):
                if execution["name"].startswith(f"{stem}-"):
                    described = self.sfn.describe_execution(executionArn=execution["executionArn"])
                    if self._matches(described.get("input", ""), uri, version):
                        found[execution["executionArn"]] = iso(execution["startDate"])
        if self.archive_bucket and self.state_machine_arn:
            machine = self.state_machine_arn.rsplit(":", 1)[-1]
            for arn, started in self._archived(archive_prefix(machine, f"{stem}-"), uri, version):
                found.setdefault(arn, started)
        return sorted(found, key=found.__getitem__)

    def _archived(self, prefix: str, uri: str, version: str | None) -> list[tuple[str, str]]:
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.archive_bucket, Prefix=prefix)
            keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return []
            raise
        found = []
        for key in keys:
            execution = json.loads(self.fetch(self.archive_bucket, key) or b"{}").get("execution") or {}
            if self._matches(execution.get("input", ""), uri, version):
                found.append(
                    (execution["executionArn"], iso(execution["startDate"]) if execution.get("startDate") else "")
                )
        return found


def audit(sources: AuditSources, target: str, from_archive: bool = False) -> AuditReport:
    """One execution (ARN or name): history, decision record and evidence → report."""
    arn = sources.execution_arn(target)
    history = sources.history(arn, from_archive)
    write = record_write(history.events)
    key = record_key(history.events, arn, write)
    report = build_report(arn, history.events, sources.record(key) if key else None, sources.fetch, history.source)
    report.integrity[:0] = history.findings
    report.notes += history.notes
    if write is not None and write.table and write.table != sources.decisions_table:
        report.notes.append(f"the record was written to table {write.table}; this audit read {sources.decisions_table}")
    _link_audits(sources, report, key)
    return report


def _link_audits(sources: AuditSources, report: AuditReport, key: dict | None) -> None:
    """An audited decision names its audits (their records name it in ``auditOf``); a sampled one without an
    audit record yet says so."""
    if not key or report.auditOf is not None:
        return
    name = key["executionName"]["S"]
    records = [r for r in sources.video_records(key["videoUri"]["S"]) if r.get("auditOf") == name]
    report.audits = [audit_link(r) for r in sorted(records, key=lambda r: r.get("startedAt", ""))]
    if report.auditSample.get("sampled") and not report.audits and report.final.get("source") == "rules":
        report.notes.append(
            "drawn for an audit, but no audit record names this decision yet (the audit is in progress, "
            "or was not started: see AuditNotStarted in the timeline)"
        )


def audit_target(
    sources: AuditSources, target: str, version: str | None = None, from_archive: bool = False
) -> list[AuditReport]:
    """An execution ARN or name → one report; s3://bucket/key → one per execution for that video."""
    if target.startswith("s3://"):
        return [audit(sources, arn, from_archive) for arn in sources.executions_for_video(target, version)]
    return [audit(sources, target, from_archive)]
