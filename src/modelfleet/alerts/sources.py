"""Controller events as alert signals: how rollouts, monitors and detectors raise alerts.

Control-plane packages never call the alert manager; they append events, and this reads them.
An event that carries `details["alert"]` (labels, state, annotations, anomaly_at) speaks for
itself: the anomaly detectors and, later, SLO burn-rate rules write those. Other events are
mapped by kind: a rollback or a failed gate fires an alert that resolves by itself after the
routing's `resolve_timeout` (nothing else will clear a one-off event), and a monitor's
`monitor.<name>` / `monitor.<name>.resolved` pair fires and resolves one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from modelfleet.alerts.alert import Signal
from modelfleet.registry.events import Event

# Events of these sources that are warnings or worse become alerts.
_ONE_OFF_SOURCES = ("rollouts",)


def camel(text: str) -> str:
    """`data_quality` -> `DataQuality`."""
    return "".join(part[:1].upper() + part[1:] for part in text.replace(".", "_").split("_"))


def signal_of(event: Event, *, resolve_timeout: timedelta) -> Signal | None:
    """The alert signal an event stands for, or None for an event that raises nothing."""
    carried = event.details.get("alert") if isinstance(event.details, dict) else None
    if isinstance(carried, dict):
        return _carried(event, carried)
    if event.kind.startswith("monitor."):
        monitor = event.kind.removeprefix("monitor.")
        resolved = monitor.endswith(".resolved")
        monitor = monitor.removesuffix(".resolved")
        model, _, version = event.subject.partition("/")
        labels = {
            "alertname": camel(monitor) + "Alert",
            "severity": "warning" if monitor == "drift" else "critical",
            "model": model,
            "version": version,
            "scope": "model",
        }
        if event.tenant:
            labels["tenant"] = event.tenant
        return Signal(
            labels=labels,
            state="resolved" if resolved else "firing",
            at=event.at,
            source="monitors",
            annotations={"summary": event.message},
        )
    if event.source in _ONE_OFF_SOURCES and event.severity in ("warning", "critical"):
        labels = {
            "alertname": camel(event.kind),
            "severity": event.severity,
            "deployment": event.subject,
            "scope": "deployment",
        }
        if event.tenant:
            labels["tenant"] = event.tenant
        return Signal(
            labels=labels,
            state="firing",
            at=event.at,
            source=event.source,
            annotations={"summary": event.message},
            expires_in_s=resolve_timeout.total_seconds(),
        )
    return None


def _carried(event: Event, carried: dict[str, Any]) -> Signal | None:
    labels = carried.get("labels")
    state = carried.get("state")
    if not isinstance(labels, dict) or state not in ("firing", "resolved"):
        return None
    anomaly_at = carried.get("anomaly_at")
    return Signal(
        labels={str(k): str(v) for k, v in labels.items()},
        state=state,
        at=event.at,
        source=event.source,
        annotations={str(k): str(v) for k, v in (carried.get("annotations") or {}).items()},
        anomaly_at=datetime.fromisoformat(anomaly_at) if isinstance(anomaly_at, str) else None,
        expires_in_s=float(expires)
        if isinstance(expires := carried.get("expires_in_s"), int | float)
        else None,
    )
