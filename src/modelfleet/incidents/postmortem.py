"""Postmortems: a Markdown draft of what happened in an incident, for its people to finish.

The facts come filled in: a summary of the incident's times, response figures and reach, and
its whole timeline with each entry's time since detection. The judgement is left to people,
under the usual headings, each with a prompt. A pure function: the caller reads the incident
and its timeline from the store (`get_incident`, `timeline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from modelfleet.incidents.records import Incident, TimelineEntry

PROMPTS = {
    "Root cause": "What made this happen? Ask why until you reach a cause a change can remove, "
    "and link the evidence: the monitor reports, dashboards, or the change that started it.",
    "What went well": "What shortened the response: detection, the pages reaching the right "
    "person, runbooks, tools, people?",
    "What went wrong": "Where was time lost between the anomaly, its detection, the "
    "acknowledgement and the resolution? What was missing, noisy or misleading?",
}


def postmortem(incident: Incident, timeline: Sequence[TimelineEntry]) -> str:
    """A Markdown postmortem draft of `incident`, with `timeline` (oldest first) in full."""
    detected = incident.detected_at
    lines = [
        f"# Incident {incident.id}: {_cell(incident.title)}",
        "",
        f"Postmortem draft: {incident.severity} incident detected {_at(detected)}, "
        f"{_outcome(incident)}.",
        "",
        "## Summary",
        "",
        "| | |",
        "|---|---|",
        f"| Severity | {incident.severity} |",
        f"| Status | {incident.status} |",
        f"| Tenants affected | {_cell(', '.join(incident.tenants)) or 'none recorded'} |",
        f"| Labels | {_labels(incident.labels)} |",
        f"| Anomaly start | {_when(incident.anomaly_at, detected, 'unknown')} |",
        f"| Detected | {_at(detected)} |",
        f"| Acknowledged | {_when(incident.acknowledged_at, detected, 'not acknowledged')} |",
        f"| Resolved | {_when(incident.resolved_at, detected, 'not resolved')} |",
        f"| MTTD (time to detect) | {_duration(incident.mttd)} |",
        f"| MTTA (time to acknowledge) | {_duration(incident.mtta)} |",
        f"| MTTR (time to resolve) | {_duration(incident.mttr)} |",
        f"| Resolved by | {_cell(incident.resolved_by or 'not resolved')} |",
        f"| Pages | {incident.pages} |",
        "",
        "## Timeline",
        "",
        f"Times are since detection, {_at(detected)}.",
        "",
        "| Since detection | Time (UTC) | Event | What happened |",
        "|---:|---|---|---|",
    ]
    lines += [
        f"| {_since(e.at - detected)} | {e.at:%Y-%m-%d %H:%M:%S} | `{e.kind}` | {_cell(e.message)} |"
        for e in timeline
    ]
    if not timeline:
        lines.append("| | | | nothing was recorded |")
    for heading, prompt in PROMPTS.items():
        lines += ["", f"## {heading}", "", f"_{prompt}_"]
    lines += [
        "",
        "## Action items",
        "",
        "_One change per row that prevents a recurrence or shortens the response, each with "
        "an owner and a date._",
        "",
        "| Action | Owner | Due | Tracking |",
        "|---|---|---|---|",
        "| | | | |",
        "",
    ]
    return "\n".join(lines)


def _outcome(incident: Incident) -> str:
    if incident.resolved_at is None:
        return "still open"
    return (
        f"resolved by {_cell(incident.resolved_by or 'unknown')} after {_duration(incident.mttr)}"
    )


def _at(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S} UTC"


def _when(when: datetime | None, detected: datetime, missing: str) -> str:
    return missing if when is None else f"{_at(when)} ({_since(when - detected)})"


def _since(offset: timedelta) -> str:
    """A signed offset: `+4:05` under an hour (minutes:seconds), `+1:02:05` from one on."""
    seconds = round(offset.total_seconds())
    sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"{sign}{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{sign}{minutes}:{seconds:02d}"
    )


def _duration(span: timedelta | None) -> str:
    """`45s`, `3m 05s`, `2h 03m 05s`, `1d 02h 03m`; a dash when there is nothing to measure."""
    if span is None:
        return "—"
    seconds = round(span.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m {seconds:02d}s"
    return f"{sign}{minutes}m {seconds:02d}s" if minutes else f"{sign}{seconds}s"


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"`{k}={_cell(v)}`" for k, v in sorted(labels.items())) or "none"


def _cell(text: str) -> str:
    """Text that stays in its Markdown table cell: no pipes or line breaks."""
    return " ".join(text.split()).replace("|", "\\|")
