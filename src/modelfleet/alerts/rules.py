"""Threshold rules: an `AlertRule` fires while a metric stream is past its threshold.

A rule is evaluated over a window (`over`) of each stream's rollups. `for` works as in
Prometheus: the condition must hold for that long before the alert fires. Rather than keep a
pending state that a restart would lose, the rule is judged on each window ending at every whole
minute of the last `for` (rollups are per minute), so the same store always gives the same
answer. The drift score is not a rollup metric; the drift monitor alerts on it by itself.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Connection

from modelfleet.alerts.alert import Signal
from modelfleet.config.schema import AlertRule
from modelfleet.telemetry.rollup import Rollup, pooled
from modelfleet.telemetry.series import StreamKey, metric_values, stream_key
from modelfleet.telemetry.writer import read_rollups

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
_MINUTE = timedelta(minutes=1)


def evaluate_rules(conn: Connection, rules: list[AlertRule], now: datetime) -> list[Signal]:
    """A firing or resolved signal for every stream each rule watches, as of `now`."""
    rules = [r for r in rules if r.spec.metric != "drift_score"]
    if not rules:
        return []
    end = now.replace(second=0, microsecond=0)  # complete minutes only
    longest = max(r.spec.over + r.spec.for_ for r in rules)
    by_minute: dict[datetime, dict[StreamKey, list[Rollup]]] = {}
    for rollup in read_rollups(conn, since=end - longest, until=end).values():
        by_minute.setdefault(rollup.key.minute, {}).setdefault(stream_key(rollup), []).append(
            rollup
        )
    streams = sorted({k for minute in by_minute.values() for k in minute})
    signals = []
    for rule in rules:
        for stream in streams:
            if not _selected(rule, stream):
                continue
            firing = _holds(rule, stream, by_minute, end)
            if firing is None:
                continue
            signals.append(_signal(rule, stream, firing, now))
    return signals


def _selected(rule: AlertRule, stream: StreamKey) -> bool:
    spec = rule.spec
    return (spec.model is None or spec.model == stream.model) and (
        spec.tenant is None or spec.tenant == stream.tenant
    )


def _holds(
    rule: AlertRule,
    stream: StreamKey,
    by_minute: Mapping[datetime, Mapping[StreamKey, list[Rollup]]],
    end: datetime,
) -> bool | None:
    """Whether the condition held on every window ending in the last `for`; None: no data."""
    spec = rule.spec
    compare = _OPS[spec.op]
    steps = max(1, int(spec.for_ / _MINUTE) + 1) if spec.for_ > timedelta(0) else 1
    judged = False
    for i in range(steps):
        window_end = end - i * _MINUTE
        minutes = int(spec.over / _MINUTE) or 1
        parts = [
            r
            for m in range(minutes)
            for r in by_minute.get(window_end - (m + 1) * _MINUTE, {}).get(stream, [])
        ]
        rollup = pooled(parts)
        if rollup is None or rollup.requests < spec.min_requests:
            return None if i == 0 else False
        value = metric_values(rollup, minutes * 60.0, min_requests=spec.min_requests)[spec.metric]
        if value is None:
            return None if i == 0 else False
        judged = True
        if not compare(value, spec.threshold):
            return False
    return judged


def _signal(rule: AlertRule, stream: StreamKey, firing: bool, now: datetime) -> Signal:
    spec = rule.spec
    labels = {
        "alertname": rule.name,
        "severity": spec.severity,
        "metric": spec.metric,
        "scope": "model",
        **stream.labels(),
        **spec.labels,
    }
    annotations = {
        "summary": f"{spec.metric} {spec.op} {spec.threshold:g} over {spec.over} "
        f"for {stream.tenant} {stream.model}/{stream.version} in {stream.region}",
        **spec.annotations,
    }
    return Signal(
        labels=labels,
        state="firing" if firing else "resolved",
        at=now,
        source="rules",
        annotations=annotations,
    )
