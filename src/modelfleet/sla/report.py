"""A tenant's SLA report as one self-contained HTML page: no scripts, no external resources.

The page holds the summary of every SLO, a line chart (inline SVG) per SLO of its daily values
against the objective with a table of the same numbers under it, the service credit and its
reasons, and the critical incidents that counted. Every text from the store is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape
from typing import Any

from modelfleet.sla.status import TenantStatus

_WIDTH, _HEIGHT, _PAD = 640, 220, 40

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.met { color: #17803d; } .missed { color: #c0262d; font-weight: bold; }
.muted { color: #777; }
svg { background: #fafafa; border: 1px solid #ddd; }
"""


def _pct(value: float) -> str:
    return f"{value * 100:.3f}%"


def render_html_all(statuses: Sequence[TenantStatus]) -> str:
    """One HTML document holding the report of each status (a tenant under several SLAs)."""
    if not statuses:
        raise ValueError("a report needs at least one status")
    titles = [_title(s) for s in statuses]
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape('; '.join(titles))}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for title, status in zip(titles, statuses, strict=True):
        parts.extend(_section(title, status))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _title(status: TenantStatus) -> str:
    return f"SLA report: {status.tenant}, {status.sla.name}, {status.period}"


def _section(title: str, status: TenantStatus) -> list[str]:
    spec = status.sla.spec
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">Period {escape(str(status.period))} in {escape(spec.time_zone)}'
        f" ({escape(status.period.start.isoformat())} to"
        f" {escape(status.period.end.isoformat())} UTC)</p>",
        "<h2>Summary</h2>",
        _summary(status),
    ]
    for s in status.slos:
        days = status.daily.get(s.slo.name)
        if days is None:
            continue
        parts.append(f"<h2>{escape(s.slo.name)}: daily values</h2>")
        parts.append(_chart(s.slo.name, days, s.slo.objective))
        parts.append(_daily_table(days, s.slo.objective))
    parts.append("<h2>Service credit</h2>")
    parts.append(_credit(status))
    parts.append("<h2>Incidents that counted</h2>")
    parts.append(_incidents(status.incidents))
    return parts


def _summary(status: TenantStatus) -> str:
    rows = [
        "<table><thead><tr><th>SLO</th><th>Type</th><th>Good</th><th>Total</th><th>Value</th>"
        "<th>Objective</th><th>Budget left</th><th>Projected</th><th>State</th></tr></thead><tbody>"
    ]
    for s in status.slos:
        state = "met" if s.met else "missed"
        rows.append(
            f"<tr><td>{escape(s.slo.name)}</td><td>{escape(s.slo.type)}</td>"
            f"<td>{s.sli.good}</td><td>{s.sli.total}</td>"
            f'<td class="{state}">{_pct(s.sli.value)}</td><td>{_pct(s.slo.objective)}</td>'
            f"<td>{_pct(s.budget_left)}</td><td>{_pct(s.projected)}</td>"
            f'<td class="{state}">{state}</td></tr>'
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _chart(name: str, days: dict[date, float], objective: float) -> str:
    """A line chart of `days` against the objective, scaled to the values shown."""
    label = escape(f"{name}: daily values against the objective {_pct(objective)}")
    if not days:
        return f'<p class="muted">{escape(name)}: no traffic measured yet.</p>'
    values = list(days.values())
    low = min([*values, objective])
    high = max([*values, objective])
    if high - low < 1e-6:
        low, high = low - 0.0005, high + 0.0005
    margin = (high - low) * 0.1
    low, high = max(0.0, low - margin), min(1.0, high + margin)
    if high <= low:
        high = low + 1e-3
    inner_w, inner_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD
    n = len(values)

    def x(i: int) -> float:
        return _PAD + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    def y(v: float) -> float:
        return _PAD + inner_h * (high - v) / (high - low)

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    oy = y(objective)
    dots = "".join(
        f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{"#17803d" if v >= objective else "#c0262d"}">'
        f"<title>{escape(d.isoformat())}: {_pct(v)}</title></circle>"
        for i, (d, v) in enumerate(days.items())
    )
    first, last = next(iter(days)), list(days)[-1]
    return (
        f'<svg width="{_WIDTH}" height="{_HEIGHT}"'
        f' viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{label}">'
        f"<title>{label}</title>"
        f'<line x1="{_PAD}" y1="{oy:.1f}" x2="{_WIDTH - _PAD}" y2="{oy:.1f}" stroke="#c0262d"'
        ' stroke-dasharray="6 4" stroke-width="1"/>'
        f'<text x="{_WIDTH - _PAD}" y="{oy - 4:.1f}" font-size="11" text-anchor="end"'
        f' fill="#c0262d">objective {_pct(objective)}</text>'
        f'<polyline points="{points}" fill="none" stroke="#1f5fbf" stroke-width="2"/>{dots}'
        f'<text x="4" y="{_PAD:.0f}" font-size="11">{_pct(high)}</text>'
        f'<text x="4" y="{_HEIGHT - _PAD:.0f}" font-size="11">{_pct(low)}</text>'
        f'<text x="{_PAD}" y="{_HEIGHT - 12}" font-size="11">{escape(first.isoformat())}</text>'
        f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - 12}" font-size="11" text-anchor="end">'
        f"{escape(last.isoformat())}</text></svg>"
    )


def _daily_table(days: dict[date, float], objective: float) -> str:
    rows = ["<table><thead><tr><th>Date</th><th>Value</th></tr></thead><tbody>"]
    for d, v in days.items():
        state = "met" if v >= objective else "missed"
        rows.append(f'<tr><td>{escape(d.isoformat())}</td><td class="{state}">{_pct(v)}</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


def _credit(status: TenantStatus) -> str:
    currency = escape(status.sla.spec.currency)
    reasons = "".join(f"<li>{escape(r)}</li>" for r in status.reasons)
    return (
        "<table><tbody>"
        f"<tr><td>Credit so far</td><td>{status.credit_amount:.2f} {currency}"
        f" ({_pct(status.credit_share)} of the monthly fee)</td></tr>"
        f"<tr><td>Credit at risk (projected)</td><td>{status.credit_at_risk:.2f} {currency}"
        f" ({_pct(status.projected_credit_share)})</td></tr>"
        "</tbody></table>"
        + (f"<ul>{reasons}</ul>" if reasons else '<p class="muted">No credit owed so far.</p>')
    )


def _incidents(found: list[dict[str, Any]]) -> str:
    if not found:
        return '<p class="muted">No critical incident affected this tenant in the period.</p>'
    rows = [
        "<table><thead><tr><th>ID</th><th>Title</th><th>Detected</th><th>Acknowledged</th>"
        "<th>Resolved</th></tr></thead><tbody>"
    ]
    for i in found:
        cells = [i.get(k) for k in ("id", "title", "detected_at", "acknowledged_at", "resolved_at")]
        rows.append(
            "<tr>"
            + "".join(f"<td>{escape('' if c is None else str(c))}</td>" for c in cells)
            + "</tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)
