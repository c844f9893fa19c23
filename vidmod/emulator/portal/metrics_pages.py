"""The portal's /metrics page: the quality figures of a time window, as plots and as tables.

``?since=`` and ``?until=`` take what ``vidmod metrics --since/--until`` take (7d, 12h, an ISO time); anything
else is a 400 page saying what is accepted. The handler is a plain ``def`` (boto3 and matplotlib block: Starlette
runs it in its thread pool; the plots use matplotlib's object API only, safe there; matplotlib is imported on the
first request, not when the portal starts). The page is the portal's Liquid template
``templates/metrics.liquid.html``, autoescaped; the plots are inline SVG whose text matplotlib has XML-escaped,
passed in as ``Markup``.
"""

from __future__ import annotations

from dataclasses import asdict

from liquid import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from vidmod.emulator.clients import local_client
from vidmod.emulator.portal.pages import render_page
from vidmod.quality.figures import Figures
from vidmod.quality.sources import QualitySources, read_figures
from vidmod.quality.text import duration, interval, share, share_of
from vidmod.quality.window import DEFAULT_SINCE, SPELLINGS, parse_window

PRESETS = ("24h", "7d", "30d", "90d")
MAX_PARAMETER = 64


def page_data(figures: Figures) -> dict:
    """The tables' rows as text (the template only lays them out)."""
    counts = figures.decisions
    outcomes = list(counts.byDecision)
    return {
        "outcomes": outcomes,
        "sources": [
            {"source": source, "counts": [row.get(o, 0) for o in outcomes], "total": counts.bySource[source]}
            for source, row in counts.bySourceAndDecision.items()
        ],
        "total": counts.total,
        "reviews": asdict(figures.reviews),
        "precision": [
            {
                "category": row.category,
                "precision": share(row.precision),
                "tp": row.truePositives,
                "fp": row.falsePositives,
                "wrong": row.wrongCategory,
                "verdicts": row.verdicts,
                "said": [{"category": c, "count": n} for c, n in row.wrongAs.items()],
                "labels": [
                    {
                        "label": label.label,
                        "precision": share(label.precision),
                        "tp": label.truePositives,
                        "fp": label.falsePositives,
                        "wrong": label.wrongCategory,
                        "verdicts": label.verdicts,
                    }
                    for label in row.labels
                ],
            }
            for row in figures.precision
        ],
        "overturns": [
            {
                "outcome": row.outcome,
                "sampled": row.sampled,
                "audited": row.audited,
                "overturned": row.overturned,
                "rate": share(row.rate),
                "interval": interval(row.interval.low, row.interval.high) if row.interval else "–",
                "expired": row.expired,
            }
            for row in figures.overturns
        ],
        "reviewers": [
            {
                "reviewer": row.reviewer,
                "answers": row.answers,
                "consensus": share_of(row.withConsensus, row.panelAnswers),
                "automatic": share_of(row.agreedWithAutomatic, row.auditAnswers),
            }
            for row in figures.reviewers
        ],
        "latency": [
            {
                "kind": row.kind,
                "count": row.count,
                "values": [duration(v) for v in (row.p50, row.p90, row.p99, row.max)],
                "skipped": row.skipped,
            }
            for row in figures.latency
        ],
        "notes": figures.notes,
    }


def metrics_routes(endpoint_url: str, decisions_table: str) -> list[Route]:
    def metrics(request: Request) -> HTMLResponse:
        since = request.query_params.get("since") or DEFAULT_SINCE
        until = request.query_params.get("until") or ""
        common = {"reviewer": request.session.get("reviewer"), "since": since, "until": until, "presets": PRESETS}
        try:
            if len(since) > MAX_PARAMETER or len(until) > MAX_PARAMETER:
                raise ValueError(f"since and until are at most {MAX_PARAMETER} characters: use {SPELLINGS}")
            window = parse_window(since, until or None)
        except ValueError as error:
            return render_page("metrics.liquid.html", 400, error=str(error), **common)
        sources = QualitySources(
            local_client("dynamodb", endpoint_url), local_client("s3", endpoint_url), decisions_table
        )
        figures = read_figures(sources, window)
        window_text = {"windowSince": figures.since, "windowUntil": figures.until}
        if figures.empty:
            return render_page("metrics.liquid.html", none_decided=True, **window_text, **common)
        from vidmod.quality.plots import plots  # matplotlib takes a second to import: not at the portal's start

        drawn = {name: Markup(svg) for name, svg in plots(figures).items()}  # text escaped by matplotlib
        return render_page("metrics.liquid.html", plots=drawn, **page_data(figures), **window_text, **common)

    return [Route("/metrics", metrics)]
