"""SVG plots of the quality figures for the portal's /metrics page, drawn server-side by matplotlib.

Only the object API is used (``Figure`` + ``FigureCanvasSVG``, never pyplot): no global figure state, so plots
can be drawn in the portal's thread pool at once. Text stays text (``svg.fonttype: none``) and matplotlib
XML-escapes it; names and labels come from reviewers and detectors, so none is parsed as mathtext
(``parse_math=False``: a ``$`` in a name is a dollar sign, not a formula). Ids inside each SVG get the plot's own
prefix, so several plots can share one HTML page.
"""

from __future__ import annotations

import io
import re

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from vidmod.quality.figures import Figures, Latency

matplotlib.rcParams["svg.fonttype"] = "none"  # <text> elements, not glyph paths
matplotlib.rcParams["svg.hashsalt"] = "vidmod-metrics"  # the same figures draw the same SVG

TITLES = {
    "precision": "Detector precision per category",
    "overturns": "Automatic decisions overturned by audits",
    "reviewers": "Reviewer agreement",
    "latency": "Review latency",
}
BLUE, ORANGE, GREY, RED = "#0b6bcb", "#e07b00", "#8d99a6", "#c0392b"
NAME_CHARS = 40
MAX_REVIEWERS = 30
WIDTH = 7.5  # inches


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _figure(rows: int, per_row: float = 0.42, minimum: float = 2.2) -> Figure:
    return Figure(figsize=(WIDTH, max(minimum, 1.2 + per_row * rows)), layout="constrained")


def to_svg(figure: Figure, name: str, title: str) -> str:
    """The figure as an inline ``<svg>`` element: no XML prologue, ``title`` as its ``<title>``, ids prefixed."""
    buffer = io.StringIO()
    FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None, "Title": title})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    ids = sorted(set(re.findall(r'\bid="([^"]+)"', svg)), key=len, reverse=True)
    if ids:
        pattern = re.compile(r'(\bid="|url\(#|href="#)(' + "|".join(map(re.escape, ids)) + r')(?=[")])')
        svg = pattern.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", svg)
    return svg.replace("<svg ", f'<svg class="plot" id="plot-{name}" role="img" ', 1)  # <title>: matplotlib's


def precision_plot(figures: Figures) -> str:
    """Horizontal bars: precision per category, with true positives of verdicts at each bar's end."""
    rows = figures.precision[::-1]  # taxonomy order from the top
    figure = _figure(len(rows))
    axes = figure.subplots()
    positions = range(len(rows))
    values = [(row.precision or 0.0) * 100 for row in rows]
    axes.barh(positions, values, color=BLUE, height=0.6)
    axes.set_yticks(positions, [_short(row.category) for row in rows], parse_math=False)
    for position, value, row in zip(positions, values, rows, strict=True):
        note = f"{value:.0f} %  ({row.truePositives} of {row.verdicts}"
        note += f"; {row.wrongCategory} wrong category)" if row.wrongCategory else ")"
        axes.text(min(value, 100) + 1.5, position, note, va="center", fontsize=9, parse_math=False)
    axes.set_xlim(0, 135)
    axes.set_xticks([0, 25, 50, 75, 100])
    axes.xaxis.set_major_formatter(PercentFormatter())
    axes.set_xlabel("true positives / segment verdicts (true + false positives + wrong category)")
    axes.spines[["top", "right"]].set_visible(False)
    return to_svg(figure, "precision", TITLES["precision"])


def overturn_plot(figures: Figures) -> str:
    """One bar per audited outcome: the overturn rate, its 95 % Wilson interval as an error bar."""
    rows = figures.overturns
    figure = _figure(0, minimum=3.0)
    axes = figure.subplots()
    positions = list(range(len(rows)))
    for position, row in zip(positions, rows, strict=True):
        if row.interval is None:
            axes.text(position, 3, "no audits", ha="center", color=GREY, fontsize=9)
            continue
        rate = (row.rate or 0.0) * 100
        low, high = row.interval.low * 100, row.interval.high * 100
        axes.bar(position, rate, color=RED if row.outcome == "APPROVE" else ORANGE, width=0.5)
        axes.errorbar(position, rate, yerr=[[rate - low], [high - rate]], color="#16191f", capsize=8, lw=1.4)
        axes.text(
            position + 0.3,
            max(rate, 8),
            f"{rate:.1f} %  ({row.overturned} of {row.audited})\n95 %: {low:.1f}–{high:.1f} %",
            va="center",
            fontsize=9,
        )
    axes.set_xticks(positions, [f"{_short(row.outcome)} overturned" for row in rows], parse_math=False)
    axes.set_xlim(-0.6, len(rows) - 0.4 + 0.6)
    axes.set_ylim(0, 105)
    axes.yaxis.set_major_formatter(PercentFormatter())
    axes.set_ylabel("overturned, of audited")
    axes.spines[["top", "right"]].set_visible(False)
    return to_svg(figure, "overturns", TITLES["overturns"])


def reviewer_plot(figures: Figures) -> str:
    """Per reviewer (most answers first): agreement with their panels' consensus and with audited decisions."""
    rows = figures.reviewers[:MAX_REVIEWERS][::-1]
    figure = _figure(len(rows), per_row=0.5)
    axes = figure.subplots()
    height = 0.38
    series = (
        (height / 2, BLUE, "with the panel's consensus", "consensusAgreement", ("withConsensus", "panelAnswers")),
        (
            -height / 2,
            ORANGE,
            "with the audited automatic decision",
            "automaticAgreement",
            ("agreedWithAutomatic", "auditAnswers"),
        ),
    )
    for offset, color, label, share, counts in series:
        positions = [i + offset for i in range(len(rows))]
        values = [(getattr(row, share) or 0.0) * 100 for row in rows]
        axes.barh(positions, values, height=height, color=color, label=label)
        for position, value, row in zip(positions, values, rows, strict=True):
            part, whole = (getattr(row, name) for name in counts)
            note = f"{value:.0f} % ({part}/{whole})" if whole else "–"
            axes.text(value + 1.5, position, note, va="center", fontsize=8, color="#16191f" if whole else GREY)
    axes.set_yticks(range(len(rows)), [_short(row.reviewer) for row in rows], parse_math=False)
    axes.set_xlim(0, 125)
    axes.set_xticks([0, 25, 50, 75, 100])
    axes.xaxis.set_major_formatter(PercentFormatter())
    axes.legend(loc="lower right", fontsize=8, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return to_svg(figure, "reviewers", TITLES["reviewers"])


def _minutes(value: float, _position: object = None) -> str:
    if value < 1:
        return f"{value * 60:.0f} s"
    if value < 120:
        return f"{value:.3g} min"
    return f"{value / 60:.3g} h"


def latency_plot(figures: Figures) -> str:
    """The share of reviews answered within a time (empirical distribution), per kind, p50 and p90 marked."""
    figure = _figure(0, minimum=3.2)
    axes = figure.subplots()
    drawn: list[Latency] = [row for row in figures.latency if row.seconds]
    for row, color in zip(drawn, (BLUE, ORANGE), strict=False):
        minutes = [max(s / 60, 1 / 60) for s in row.seconds]
        shares = [(i + 1) / len(minutes) * 100 for i in range(len(minutes))]
        label = f"{row.kind} ({row.count})"
        axes.step([minutes[0], *minutes], [0, *shares], where="post", color=color, lw=2, label=label)
        for q, share, value in (("p50", 50, row.p50), ("p90", 90, row.p90)):
            if value is not None:
                at = max(value / 60, 1 / 60)
                axes.plot([at], [share], "o", color=color, ms=5)
                axes.text(at, share, f"  {q} {_minutes(value / 60)}", color=color, fontsize=8, va="top")
    if drawn:
        axes.set_xscale("log")
        every = [max(s / 60, 1 / 60) for row in drawn for s in row.seconds]
        axes.set_xlim(min(every) / 1.6, max(every) * 2.2)  # room for the p50 / p90 notes
        axes.xaxis.set_major_formatter(FuncFormatter(_minutes))
        axes.legend(loc="lower right", fontsize=8, frameon=False)
    else:
        axes.text(0.5, 0.5, "no review with a request time", ha="center", color=GREY, transform=axes.transAxes)
    axes.set_ylim(0, 100)
    axes.yaxis.set_major_formatter(PercentFormatter())
    axes.set_ylabel("reviews answered within")
    axes.set_xlabel("time from the review's request to its last answer")
    axes.spines[["top", "right"]].set_visible(False)
    return to_svg(figure, "latency", TITLES["latency"])


def plots(figures: Figures) -> dict[str, str]:
    """Every plot of non-empty figures, as inline SVG, by name (precision only when there are verdicts,
    reviewers only when there are answers)."""
    drawn = {"overturns": overturn_plot(figures), "latency": latency_plot(figures)}
    if figures.precision:
        drawn["precision"] = precision_plot(figures)
    if figures.reviewers:
        drawn["reviewers"] = reviewer_plot(figures)
    return {name: drawn[name] for name in TITLES if name in drawn}
