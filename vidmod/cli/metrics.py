"""``vidmod metrics``: the quality figures of a time window, from the decisions table and the review outputs.

Like ``vidmod audit`` it reads the local endpoint by default and AWS with ``--aws`` (the table from the stack's
outputs, or ``--decisions-table``). Every label, category and reviewer name is printed literally, never as Rich
markup: they are untrusted.
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vidmod.cli.targets import add_target_options, read_failure
from vidmod.quality.figures import Figures
from vidmod.quality.sources import QualitySources, read_figures
from vidmod.quality.text import duration, interval, share, share_of
from vidmod.quality.window import SPELLINGS, parse_window

EXIT_ERROR = 2


def local_sources(args: argparse.Namespace) -> QualitySources:
    from vidmod.emulator.clients import local_client
    from vidmod.emulator.stack import local_resources

    table = args.decisions_table or local_resources(args.stack_name).tables["DecisionsTable"]["TableName"]
    return QualitySources(local_client("dynamodb", args.endpoint_url), local_client("s3", args.endpoint_url), table)


def aws_sources(args: argparse.Namespace) -> QualitySources:
    """Region: --region, else the default chain. Table: --decisions-table, else the stack's outputs."""
    from vidmod.cloud import stack_outputs

    session = boto3.session.Session(region_name=args.region)
    table = args.decisions_table
    if not table:
        table = stack_outputs(session.client("cloudformation"), args.stack_name).get("DecisionsTableName", "")
    if not table:
        raise LookupError(f"stack {args.stack_name} has no DecisionsTableName output; pass --decisions-table")
    return QualitySources(session.client("dynamodb"), session.client("s3"), table)


# ---------------------------------------------------------------------------- text
def print_text(figures: Figures, console: Console) -> None:
    """Tables of the figures. Values are escaped: labels, categories and reviewer names are untrusted."""
    console.print(
        f"[bold]Quality figures[/] {escape(figures.since)} – {escape(figures.until)} (decidedAt, end excluded)"
    )
    if figures.empty:
        console.print("No decisions in this window.")
        return
    counts = figures.decisions
    table = Table(title=f"Decisions: {counts.total}", title_justify="left")
    outcomes = list(counts.byDecision)
    table.add_column("source")
    for outcome in outcomes:
        table.add_column(escape(outcome), justify="right")
    table.add_column("total", justify="right")
    for source, row in counts.bySourceAndDecision.items():
        table.add_row(escape(source), *(str(row.get(o, 0)) for o in outcomes), str(counts.bySource[source]))
    console.print(table)
    reviews = figures.reviews
    console.print(
        f"Reviews: {reviews.human} human, {reviews.audit} audit; every answer read from output.json for "
        f"{reviews.outputsRead}, from the record for {reviews.outputsMissing}"
    )

    table = Table(title="Detector precision per category (reviewers' segment verdicts)", title_justify="left")
    for name in ("category", "precision", "true pos.", "false pos.", "wrong category", "verdicts", "said instead"):
        table.add_column(name, justify="left" if name in ("category", "said instead") else "right")
    for row in figures.precision:
        said = ", ".join(f"{escape(c)} {n}" for c, n in row.wrongAs.items())
        table.add_row(
            escape(row.category),
            share(row.precision),
            str(row.truePositives),
            str(row.falsePositives),
            str(row.wrongCategory),
            str(row.verdicts),
            said,
        )
        for label in row.labels:
            table.add_row(
                f"  {escape(label.label)}",
                share(label.precision),
                str(label.truePositives),
                str(label.falsePositives),
                str(label.wrongCategory),
                str(label.verdicts),
                "",
                style="dim",
            )
    console.print(table if figures.precision else "No segment verdicts in this window.")

    table = Table(title="Automatic decisions overturned by audits (95 % Wilson interval)", title_justify="left")
    for name in ("outcome", "sampled", "audited", "overturned", "rate", "95 % interval", "expired"):
        table.add_column(name, justify="left" if name == "outcome" else "right")
    for row in figures.overturns:
        bounds = interval(row.interval.low, row.interval.high) if row.interval else "–"
        table.add_row(
            escape(row.outcome),
            str(row.sampled),
            str(row.audited),
            str(row.overturned),
            share(row.rate),
            bounds,
            str(row.expired),
        )
    console.print(table)

    table = Table(title="Reviewers", title_justify="left")
    for name in ("reviewer", "answers", "with consensus (panels of 2+)", "with the automatic decision (audits)"):
        table.add_column(name, justify="left" if name == "reviewer" else "right")
    for row in figures.reviewers:
        table.add_row(
            escape(row.reviewer),
            str(row.answers),
            share_of(row.withConsensus, row.panelAnswers),
            share_of(row.agreedWithAutomatic, row.auditAnswers),
        )
    console.print(table if figures.reviewers else "No reviewer answers in this window.")

    table = Table(title="Review latency (request → last answer)", title_justify="left")
    for name in ("review", "count", "p50", "p90", "p99", "max", "skipped (no request time)"):
        table.add_column(name, justify="left" if name == "review" else "right")
    for row in figures.latency:
        values = (duration(v) for v in (row.p50, row.p90, row.p99, row.max))
        table.add_row(row.kind, str(row.count), *values, str(row.skipped))
    console.print(table)
    for note in figures.notes:
        console.print(f"note: {escape(note)}")


# ---------------------------------------------------------------------------- command
def _run(args: argparse.Namespace) -> int:
    """Exit 0 with the figures (also for an empty window); 2: a bad window, or the table cannot be read."""

    def fail(message: str) -> int:
        sys.stderr.write(f"vidmod metrics: {message}\n")
        return EXIT_ERROR

    try:
        window = parse_window(args.since, args.until)
    except ValueError as error:
        return fail(str(error))
    try:
        sources = aws_sources(args) if not args.endpoint_url else local_sources(args)
        figures = read_figures(sources, window)
    except LookupError as error:
        return fail(str(error).strip("'\""))
    except (ClientError, BotoCoreError) as error:
        return fail(read_failure(error, args.endpoint_url))
    if args.format == "json":
        sys.stdout.write(json.dumps(figures.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        print_text(figures, Console(highlight=False))
    return 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "metrics", help="quality figures: detector precision, overturn rates, reviewer agreement, review latency"
    )
    parser.add_argument("--since", default="7d", help=f"start of the window (default: %(default)s): {SPELLINGS}")
    parser.add_argument("--until", default=None, help="end of the window, excluded (default: now); same spellings")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    add_target_options(parser, region_help="AWS region (default: the credential chain's)")
    parser.set_defaults(func=_run)
