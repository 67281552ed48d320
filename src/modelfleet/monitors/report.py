"""The monitoring report: one self-contained HTML page of what the monitors see for a model.

`build_sections` reads the store: for each tenant and version with traffic in the window ending
now, it pools the rollups and judges them against the stored profile as the monitor controller
does (feedback labels included), storing nothing.
`render_report` is pure, sections in and HTML out: inline CSS and SVG bar charts, no external
asset and no script, so the page reads the same attached to a ticket or opened offline. Every
string is escaped, and a section holds only its own tenant's rollups and feedback, so a page
built for one tenant names no other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import Connection, select

from modelfleet.config.schema import Model, MonitoringSpec
from modelfleet.errors import InvalidInput, NotFound
from modelfleet.monitors.judge import (
    ColumnDrift,
    Verdict,
    judge,
    judge_data_quality,
    judge_drift,
    judge_output_quality,
)
from modelfleet.monitors.profile import Profile, read_profile
from modelfleet.monitors.window import Window, labelled_rows, windows
from modelfleet.registry import load_state
from modelfleet.store.tables import profiles
from modelfleet.telemetry.writer import read_rollups

MAX_CHARTS = 12  # drifted features charted per section; the rest are listed by name
MONITORS = ("drift", "data_quality", "output_quality")
REFERENCE_COLOUR, CURRENT_COLOUR = "#4c72b0", "#dd8452"


@dataclass(frozen=True)
class Bars:
    """Two distributions on the same bins, as shares: the reference's and the window's."""

    title: str
    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


@dataclass(frozen=True)
class ReportSection:
    """What the monitors see for one (tenant, version) over one window."""

    tenant: str
    model: str
    version: str
    start: datetime
    end: datetime
    rows: int
    requests: int
    verdicts: tuple[Verdict, ...] = ()  # as `judge` gives them; none without a profile
    features: tuple[ColumnDrift, ...] = ()  # every feature's drift, worst first
    charts: tuple[Bars, ...] = ()  # the first MAX_CHARTS drifted features
    uncharted: tuple[str, ...] = ()  # the drifted features past those
    data_quality: Mapping[str, Any] = field(default_factory=dict)
    output_quality: Mapping[str, Any] = field(default_factory=dict)
    classes: Bars | None = None
    note: str = ""

    def status(self, monitor: str) -> str:
        return next((v.status for v in self.verdicts if v.monitor == monitor), "-")


def build_sections(
    conn: Connection,
    model: str,
    *,
    tenant: str | None,
    now: datetime,
    window: timedelta | None,
) -> list[ReportSection]:
    """Each (tenant, version) of `model` with traffic in the `window` before `now`, judged.

    `window` defaults to the model's monitoring window. InvalidInput for an unknown model or
    tenant, and for a model none of whose versions has a reference profile yet.
    """
    state = load_state(conn)
    registered = state.get(("Model", model))
    if registered is None:
        raise NotFound("model", model)
    if tenant is not None and state.get(("Tenant", tenant)) is None:
        raise NotFound("tenant", tenant)
    assert isinstance(registered.resource, Model)
    spec = registered.resource.spec.monitoring
    labels = registered.resource.spec.output.labels
    if conn.execute(select(profiles.c.version).where(profiles.c.model == model)).first() is None:
        raise InvalidInput(
            f"model {model!r} has no reference profile yet: the monitor controller profiles each "
            "served version that has reference_data (`modelfleet up` runs it)"
        )
    start = now - (window if window is not None else spec.window)
    found = read_rollups(conn, since=start, until=now, tenant=tenant, model=model)
    sections = []
    for (_, _, version), pooled in sorted(windows(found.values(), start=start, end=now).items()):
        profile = read_profile(conn, model, version)
        if profile is None:
            sections.append(
                ReportSection(
                    pooled.tenant,
                    model,
                    version,
                    start,
                    now,
                    pooled.rows,
                    pooled.requests,
                    note="This version has no reference profile: there is nothing to compare with.",
                )
            )
        else:
            sections.append(_section(pooled, profile, spec, labels, labelled_rows(conn, pooled)))
    return sections


def _section(
    window: Window,
    profile: Profile,
    spec: MonitoringSpec,
    labels: Sequence[str] | None,
    labelled: tuple[int, int] | None,
) -> ReportSection:
    verdicts = judge(window, profile, spec, labelled)
    # The evidence is computed whatever the verdict: below min_rows `judge` only says
    # "insufficient", yet the statistics so far are still worth a look.
    drift = judge_drift(window, profile, spec.drift)
    quality = judge_data_quality(window, profile, spec.quality)
    output = judge_output_quality(window, profile, spec.quality, labelled)
    features = tuple(ColumnDrift(**f) for f in drift.details["features"])
    drifted = [f for f in features if f.drifted]
    return ReportSection(
        window.tenant,
        window.model,
        window.version,
        window.start,
        window.end,
        window.rows,
        window.requests,
        tuple(verdicts),
        features,
        tuple(_feature_bars(f.name, profile, window) for f in drifted[:MAX_CHARTS]),
        tuple(f.name for f in drifted[MAX_CHARTS:]),
        quality.details,
        output.details,
        _class_bars(profile, window, labels),
    )


def _shares(counts: Sequence[int]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(c / total if total else 0.0 for c in counts)


def _bin_labels(edges: Sequence[float], maximum: float) -> tuple[str, ...]:
    """A profile's bins by their edges: below the first, between each two, above the last. The
    last edge is the next float above the reference's maximum, so it reads as that maximum."""
    shown = [f"{e:.3g}" for e in edges[:-1]] + [f"{maximum:.3g}"]
    inner = tuple(a if a == b else f"{a}–{b}" for a, b in zip(shown, shown[1:], strict=False))
    return (f"< {shown[0]}", *inner, f"> {shown[-1]}")


def _feature_bars(name: str, profile: Profile, window: Window) -> Bars:
    column = profile.columns[name]
    return Bars(
        name,
        _bin_labels(column.edges, column.maximum),
        _shares(column.counts),
        _shares(window.features[name].counts),
    )


def _class_bars(profile: Profile, window: Window, labels: Sequence[str] | None) -> Bars | None:
    if profile.classes is None or not window.classes:
        return None
    k = max([*profile.classes, *window.classes]) + 1
    names = tuple(labels[i] if labels and i < len(labels) else str(i) for i in range(k))
    return Bars(
        "predicted classes",
        names,
        _shares([profile.classes.get(i, 0) for i in range(k)]),
        _shares([window.classes.get(i, 0) for i in range(k)]),
    )


def summary_line(sections: Sequence[ReportSection]) -> str:
    """One line: each section's worst verdicts and worst feature."""
    if not sections:
        return "no traffic in the window"
    parts = []
    for s in sections:
        moving = [f"{m.replace('_', ' ')} {s.status(m)}" for m in MONITORS if s.status(m) != "ok"]
        worst = s.features[0] if s.features and s.features[0].drifted else None
        if worst is not None:
            moving.append(f"worst {worst.name} PSI {worst.psi:.2f}")
        parts.append(f"{s.tenant}/{s.version}: {', '.join(moving) or 'all ok'}")
    return "; ".join(parts)


# Rendering: pure, sections in, one HTML string out.

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:2em auto;
max-width:1100px;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em}
h3{margin-top:1.6em}.meta{color:#666}
table{border-collapse:collapse;margin:.6em 0}th,td{padding:.25em .7em;text-align:left;
border-bottom:1px solid #eee}th{background:#f6f6f6}td.num{text-align:right;
font-variant-numeric:tabular-nums}
.status{display:inline-block;padding:0 .5em;border-radius:3px;font-weight:600}
.ok{background:#e3f4e6;color:#1d6b2c}.warning{background:#fff3d6;color:#8a5a00}
.alert{background:#fde2e1;color:#a11d16}.insufficient,.none{background:#eee;color:#555}
tr.drifted td{background:#fff5f4}section{margin:2.5em 0}
.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}svg{background:#fff}
""".strip()


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _status(status: str) -> str:
    css = status if status in ("ok", "warning", "alert", "insufficient") else "none"
    return f'<span class="status {css}">{_e(status)}</span>'


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else _e(f"{value:.{digits}f}")


def _rate(value: Any) -> str:
    return "-" if value is None else _e(f"{value:.1%}")


def _anchor(section: ReportSection) -> str:
    return _e(f"{section.tenant}--{section.version}")


def render_report(model: str, sections: list[ReportSection], generated_at: datetime) -> str:
    """The whole page: an overview of every section, then each section in full."""
    windows_ = sorted({(s.start, s.end) for s in sections})
    span = (
        ", ".join(f"{a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M} UTC" for a, b in windows_)
        or "no traffic in the window"
    )
    body = [
        f"<h1>Monitoring report: {_e(model)}</h1>",
        f'<p class="meta">Window {_e(span)}. Generated {_e(f"{generated_at:%Y-%m-%d %H:%M:%S}")} '
        "UTC. Verdicts are computed on the pooled rollups against each version's reference "
        "profile, as the monitor controller computes them.</p>",
        _overview(sections),
        *(_section_html(s) for s in sections),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Monitoring report: {_e(model)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _overview(sections: Sequence[ReportSection]) -> str:
    if not sections:
        return "<p>No tenant sent this model any traffic in the window.</p>"
    rows = []
    for s in sections:
        worst = s.features[0] if s.features else None
        rows.append(
            "<tr>"
            f'<td><a href="#{_anchor(s)}">{_e(s.tenant)}</a></td><td>{_e(s.version)}</td>'
            f'<td class="num">{s.rows}</td>'
            + "".join(f"<td>{_status(s.status(m))}</td>" for m in MONITORS)
            + (
                f"<td>{_e(worst.name)} (PSI {_num(worst.psi)})</td>"
                if worst is not None
                else "<td>-</td>"
            )
            + "</tr>"
        )
    return (
        "<table>\n<tr><th>Tenant</th><th>Version</th><th>Rows</th><th>Drift</th>"
        "<th>Data quality</th><th>Output quality</th><th>Worst feature</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>"
    )


def _section_html(s: ReportSection) -> str:
    parts = [
        f'<section id="{_anchor(s)}">',
        f"<h2>{_e(s.tenant)} · {_e(s.model)}/{_e(s.version)}</h2>",
        f'<p class="meta">{s.rows} rows in {s.requests} requests, '
        f"{_e(f'{s.start:%Y-%m-%d %H:%M} to {s.end:%Y-%m-%d %H:%M}')} UTC.</p>",
    ]
    if s.note:
        parts.append(f"<p>{_e(s.note)}</p>")
    if s.verdicts:
        parts.append("<h3>Verdicts</h3>")
        parts.append(_verdicts_table(s.verdicts))
    if s.features:
        parts.append("<h3>Input drift, worst first</h3>")
        parts.append(_features_table(s.features))
    if s.charts:
        parts.append("<h3>Drifted features: reference against this window</h3>")
        parts.append('<div class="charts">')
        parts.extend(f"<figure>{_chart(bars)}</figure>" for bars in s.charts)
        parts.append("</div>")
    if s.uncharted:
        parts.append(
            f"<p>Also drifted ({len(s.uncharted)} more): {_e(', '.join(s.uncharted))}.</p>"
        )
    if s.data_quality:
        parts.append("<h3>Data quality</h3>")
        parts.append(_data_quality_table(s.data_quality))
    if s.output_quality:
        parts.append("<h3>Output quality</h3>")
        parts.append(_output_quality_table(s.output_quality))
    if s.classes is not None:
        parts.append(f"<figure>{_chart(s.classes)}</figure>")
    parts.append("</section>")
    return "\n".join(parts)


def _verdicts_table(verdicts: Sequence[Verdict]) -> str:
    rows = "\n".join(
        f"<tr><td>{_e(v.monitor.replace('_', ' '))}</td><td>{_status(v.status)}</td>"
        f"<td>{_e(v.reason)}</td></tr>"
        for v in verdicts
    )
    return f"<table>\n<tr><th>Monitor</th><th>Status</th><th>Why</th></tr>\n{rows}\n</table>"


def _features_table(features: Sequence[ColumnDrift]) -> str:
    wasserstein = any(f.wasserstein is not None for f in features)
    head = "<th>Feature</th><th>PSI</th><th>KS</th><th>JS</th>"
    head += "<th>Wasserstein</th>" if wasserstein else ""
    head += "<th>Thresholds</th><th>Drifted</th>"
    rows = []
    for f in features:
        thresholds = ", ".join(f"{k.upper()} {v:.3g}" for k, v in f.thresholds.items())
        cells = [
            f"<td>{_e(f.name)}</td>",
            *(f'<td class="num">{_num(x)}</td>' for x in (f.psi, f.ks, f.js)),
            f'<td class="num">{_num(f.wasserstein)}</td>' if wasserstein else "",
            f"<td>{_e(thresholds)}</td>",
            f"<td>{'yes' if f.drifted else 'warning' if f.warning else 'no'}</td>",
        ]
        css = ' class="drifted"' if f.drifted else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(rows) + "\n</table>"


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    body = "\n".join(f'<tr><th>{_e(k)}</th><td class="num">{v}</td></tr>' for k, v in rows)
    return f"<table>\n{body}\n</table>"


def _data_quality_table(details: Mapping[str, Any]) -> str:
    rows = [
        ("Requests refused as malformed", _rate(details.get("rejected_rate"))),
        ("Highest out-of-range rate of a feature", _rate(details.get("max_out_of_range"))),
        ("Highest missing rate of a feature", _rate(details.get("missing_rate"))),
    ]
    worst = [(n, r) for n, r in details.get("out_of_range", {}).items() if r > 0][:5]
    rows += [(f"Out of range: {name}", _rate(rate)) for name, rate in worst]
    return _facts(rows)


def _output_quality_table(details: Mapping[str, Any]) -> str:
    labelled = details.get("labelled_rows")
    return _facts(
        [
            ("Mean confidence", _num(details.get("mean_confidence"))),
            ("Low-confidence predictions", _rate(details.get("low_confidence_rate"))),
            ("Estimated accuracy (from confidence)", _rate(details.get("estimated_accuracy"))),
            (
                "Labelled accuracy (from feedback)",
                "no feedback in the window"
                if labelled is None
                else f"{_rate(details.get('labelled_accuracy'))} on {int(labelled)} rows",
            ),
        ]
    )


def _chart(bars: Bars) -> str:
    """Grouped bars, reference beside current per bin, each bar titled with its share."""
    n = max(len(bars.labels), 1)
    slot = max(28.0, min(110.0, 560 / n))
    left, top, bottom = 44.0, 30.0, 170.0
    width, height = max(420.0, left + slot * n + 12), bottom + 70
    peak = max([*bars.reference, *bars.current, 0.0]) or 1.0
    bar = slot * 0.38
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" font-size="10" '
        'font-family="system-ui,sans-serif">',
        f"<title>{_e(bars.title)}: reference against current window</title>",
        f'<text x="{left:.0f}" y="14" font-size="12" font-weight="600">{_e(bars.title)}</text>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = bottom - frac * (bottom - top)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{width - 8:.1f}" y2="{y:.1f}" '
            'stroke="#ddd"></line>'
            f'<text x="{left - 4:.1f}" y="{y + 3:.1f}" text-anchor="end">'
            f"{_e(f'{peak * frac:.0%}')}</text>"
        )
    for i, label in enumerate(bars.labels):
        x0 = left + i * slot + slot * 0.12
        for j, (values, colour, name) in enumerate(
            (
                (bars.reference, REFERENCE_COLOUR, "reference"),
                (bars.current, CURRENT_COLOUR, "current"),
            )
        ):
            share = values[i] if i < len(values) else 0.0
            h = share / peak * (bottom - top)
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{bottom - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(label)}: {name} '
                f"{_e(f'{share:.1%}')}</title></rect>"
            )
        cx, cy = x0 + bar, bottom + 12
        parts.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" '
            f'transform="rotate(-40 {cx:.1f} {cy:.1f})">{_e(label)}</text>'
        )
    legend_x = width - 190
    for j, (colour, name) in enumerate(
        ((REFERENCE_COLOUR, "reference"), (CURRENT_COLOUR, "current window"))
    ):
        x = legend_x + j * 85
        parts.append(
            f'<rect x="{x:.1f}" y="6" width="10" height="10" fill="{colour}"></rect>'
            f'<text x="{x + 14:.1f}" y="15">{name}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
