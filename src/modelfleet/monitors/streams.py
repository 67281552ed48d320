"""The anomaly controller: a detector on every metric stream, fed one minute at a time.

A stream is one metric (telemetry/series.py) of one (tenant, model, version, region) that is
live: its version serves that tenant (stable, canary or pinned) in a region that is not down.
Each tick:

- every complete minute since the last tick is one point: the detector scores it and learns
  from it, and its state is saved in the same transaction as the controller's cursor, so a
  restart loses no learning and learns nothing twice;
- the minute still filling is *peeked* at (scored, not learned), so a fault is seen within
  seconds of enough requests, not at the end of its minute: the ratio metrics (error rate,
  latency, confidence) once it holds `min_requests`, and the request rate at once for a rise
  and once half of it has passed for a fall, its deviation shrunk to a full minute's noise.
  Telemetry reaches the store a flush late, so a rise is judged on the requests over the
  whole elapsed part and a fall over the elapsed part less one flush interval: neither bias
  can raise an alarm by itself.

A point that alarms fires an alert (an event carrying it: alerts/sources.py) labelled with the
stream, the metric and the direction of the deviation; its `anomaly_at` is the start of the
first anomalous minute, so MTTD counts from there. The first complete minute back in range
resolves it, and so does the stream ending (a version rolled back, a region failed over).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from modelfleet.config.schema import AnomalySpec, Deployment, Model, Tenant
from modelfleet.monitors.anomaly import BAD_DIRECTION, SeasonalDetector, Verdict
from modelfleet.registry.cursors import move_cursor, read_cursor
from modelfleet.registry.events import Event, alert_details, record_event
from modelfleet.registry.resources import FleetState, load_state
from modelfleet.registry.splits import read_splits
from modelfleet.store import Store
from modelfleet.store.tables import detector_states, monitor_results, region_status
from modelfleet.store.tables import rollups as rollups_table
from modelfleet.store.upsert import upsert
from modelfleet.telemetry.rollup import Rollup, pooled
from modelfleet.telemetry.series import METRICS, StreamKey, metric_values, stream_key
from modelfleet.telemetry.writer import read_rollups

SOURCE = "monitors"
CURSOR = "anomaly"
_MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DORMANT = timedelta(minutes=3)
# The request rate is a tenant's demand, followed over all the versions that answer it (a
# canary or a rollback moves requests between versions; it does not change the demand).
ALL_VERSIONS = "*"
_RATIOS = (
    "error_rate",
    "latency_p50",
    "latency_p99",
    "confidence",
)  # a stream not learned from this long has paused
# A fall in the request rate of a minute still filling is judged once this much of it has
# passed, allowing for telemetry not flushed yet (the gateway flushes every 5 s).
PEEK_FALL_AFTER_S = 30.0
FLUSH_ALLOWANCE_S = 5.0
# Minutes older than this when first seen (history on the first tick, a long stop) are learned
# from without raising alerts: nobody can act on what is long over.
CATCH_UP_SILENTLY_BEFORE = timedelta(minutes=5)
# On its first tick the controller learns from this much history, not from all time.
BACKFILL = timedelta(days=7)


def alert_name(metric: str) -> str:
    """`latency_p99` -> `LatencyP99Anomaly`."""
    return "".join(p[:1].upper() + p[1:] for p in metric.split("_")) + "Anomaly"


@dataclass
class _Stream:
    key: StreamKey
    metric: str
    detector: SeasonalDetector
    firing: str | None  # the direction it fires in, if it does
    anomalous_since: datetime | None
    started_at: datetime  # when the controller first followed it, or again after a pause
    last_minute: datetime | None = None  # the last complete minute it learned
    changed: bool = False

    @property
    def id(self) -> str:
        k = self.key
        return f"{self.metric}|{k.tenant}|{k.model}|{k.version}|{k.region}"


class AnomalyController:
    """Scores every live metric stream each tick; see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        backfill: timedelta = BACKFILL,
        silent_catch_up: timedelta | None = CATCH_UP_SILENTLY_BEFORE,
    ) -> None:
        self.store = store
        self.backfill = backfill
        # None: every minute learned can alert, however old (a replay judging all of it).
        self.silent_catch_up = silent_catch_up

    def tick(self, now: datetime) -> list[Event]:
        current = now.replace(second=0, microsecond=0)
        events: list[Event] = []
        with self.store.begin() as conn:
            state = load_state(conn)
            specs = _anomaly_specs(state)
            live = _live_streams(conn, state)
            done = read_cursor(conn, CURSOR)  # minutes since the epoch, the last one learned
            start = (
                max(_minute(done + 1), current - self.backfill) if done else current - self.backfill
            )
            if not done:  # the first tick learns from the history there is, not from before it
                first = conn.execute(select(func.min(rollups_table.c.minute))).scalar()
                start = max(start, first) if first is not None else current
            rollups = read_rollups(conn, since=start, until=current + _MINUTE)
            drift = _drift_scores(conn, start, current)
            by_minute: dict[datetime, dict[StreamKey, Rollup]] = defaultdict(dict)
            demand: dict[tuple[datetime, StreamKey], list[Rollup]] = defaultdict(list)
            for rollup in rollups.values():
                key = stream_key(rollup)
                by_minute[rollup.key.minute][key] = rollup
                demand[(rollup.key.minute, replace(key, version=ALL_VERSIONS))].append(rollup)
            for (minute_of, key), parts in demand.items():
                by_minute[minute_of][key] = pooled(parts)  # type: ignore[assignment]
            streams = self._load(conn, live, specs, now)
            minute = start
            while minute < current:
                for stream in streams.values():
                    spec = specs[stream.key.model]
                    point = by_minute[minute].get(stream.key)
                    value = _value(stream, point, drift, minute, spec)
                    value = _at_full_minute(stream, value, point, minute, spec)
                    verdict = stream.detector.step(minute, value)
                    stream.changed, stream.last_minute = True, minute
                    if self.silent_catch_up is None or now - minute <= self.silent_catch_up:
                        events += self._judge(stream, verdict, value, minute, now, spec, final=True)
                minute += _MINUTE
            for stream in streams.values():  # the minute still filling
                spec = specs[stream.key.model]
                filling = by_minute[current].get(stream.key)
                if stream.metric == "request_rate":
                    events += self._peek_rate(stream, filling, current, now, spec)
                    continue
                value = _value(stream, filling, drift, current, spec, partial=now - current)
                value = _at_full_minute(stream, value, filling, current, spec)
                if value is not None:
                    verdict = stream.detector.peek(current, value)
                    events += self._judge(stream, verdict, value, current, now, spec, final=False)
            events += self._end_dead_streams(conn, live, now)
            self._save(conn, streams.values(), now)
            if current > start or not done:
                move_cursor(conn, CURSOR, _number(current) - 1, now=now)
            for event in events:
                record_event(conn, event)
        return events

    def _load(
        self,
        conn: Connection,
        live: set[StreamKey],
        specs: dict[str, AnomalySpec],
        now: datetime,
    ) -> dict[str, _Stream]:
        saved: dict[str, Any] = {r.stream: r for r in conn.execute(select(detector_states))}
        # A stream that starts (a new version, a tenant moved to another region) learns on from
        # the tenant's stream of the same model and metric last updated: what was normal for
        # the tenant is the baseline its new version is judged against.
        previous: dict[tuple[str, str, str], Any] = {}
        for row in sorted(saved.values(), key=lambda r: r.updated_at):
            previous[(row.metric, row.labels["tenant"], row.labels["model"])] = row
        out: dict[str, _Stream] = {}
        for key in sorted(live):
            spec = specs.get(key.model)
            if spec is None or not spec.enabled:
                continue
            for metric in METRICS:
                if (metric == "request_rate") != (key.version == ALL_VERSIONS):
                    continue  # demand is the tenant's, whichever versions answer it
                stream = _Stream(key, metric, _new_detector(metric, spec), None, None, now)
                row = saved.get(stream.id)
                if row is not None:
                    stream.detector = SeasonalDetector.from_state(row.state)
                    stream.firing = row.firing
                    stream.anomalous_since = row.anomalous_since
                    stream.started_at = row.started_at
                    stream.last_minute = row.last_minute
                    if row.last_minute is None or now - row.last_minute > _DORMANT:
                        stream.started_at = now  # it stopped a while (a version rolled back)
                elif (inherited := previous.get((metric, key.tenant, key.model))) is not None:
                    stream.detector = SeasonalDetector.from_state(inherited.state)
                    stream.changed = True
                out[stream.id] = stream
        return out

    def _peek_rate(
        self,
        stream: _Stream,
        filling: Rollup | None,
        current: datetime,
        now: datetime,
        spec: AnomalySpec,
    ) -> list[Event]:
        elapsed = (now - current).total_seconds()
        count = filling.requests if filling is not None else 0
        checks = [(elapsed, 1)]  # a rise, on every request flushed so far
        if elapsed >= PEEK_FALL_AFTER_S:  # a fall, allowing for requests not flushed yet
            checks.append((elapsed - FLUSH_ALLOWANCE_S, -1))
        for seconds, sign in checks:
            if seconds <= 0:
                continue
            raw = count / seconds
            expected = stream.detector.peek(current, raw).expected
            if not math.isfinite(expected):
                continue
            # A rate over part of a minute is noisier than over all of it (Poisson: its sd
            # grows as 1 / sqrt(seconds)); its deviation is shrunk by sqrt(seconds / 60) so
            # that it is judged at a full minute's noise, and no more alarms than one.
            value = expected + (raw - expected) * math.sqrt(min(1.0, seconds / 60.0))
            verdict = stream.detector.peek(current, value)
            if verdict.alarm and _deviation(verdict) * sign > 0:
                return self._judge(stream, verdict, value, current, now, spec, final=False)
        return []

    def _judge(
        self,
        stream: _Stream,
        verdict: Verdict,
        value: float | None,
        minute: datetime,
        now: datetime,
        spec: AnomalySpec,
        *,
        final: bool,
    ) -> list[Event]:
        direction = "up" if _deviation(verdict) > 0 else "down"
        if (
            stream.metric == "request_rate"
            and direction == "down"
            and minute <= stream.started_at.replace(second=0, microsecond=0)
        ):
            return []  # the stream began within this minute: it was never going to be full
        if verdict.alarm:
            if stream.firing == direction:
                return []
            events = []
            if stream.firing is not None:  # turned around: the other direction is a new alert
                events.append(
                    self._event(stream, stream.firing, "resolved", now, spec, value, verdict)
                )
            stream.firing, stream.anomalous_since, stream.changed = direction, minute, True
            return [*events, self._event(stream, direction, "firing", now, spec, value, verdict)]
        # A clean complete minute ends an alert; so does a clean minute still filling, for the
        # ratios (a partial minute's rate is low by construction, so not for request_rate).
        ratio = stream.metric != "request_rate"
        if (final or ratio) and stream.firing is not None and value is not None:
            event = self._event(stream, stream.firing, "resolved", now, spec, value, verdict)
            stream.firing, stream.anomalous_since, stream.changed = None, None, True
            return [event]
        return []

    def _event(
        self,
        stream: _Stream,
        direction: str,
        state: str,
        now: datetime,
        spec: AnomalySpec,
        value: float | None,
        verdict: Verdict,
    ) -> Event:
        k = stream.key
        labels = {
            "alertname": alert_name(stream.metric),
            "severity": _severity(stream.metric, direction, spec),
            "metric": stream.metric,
            "direction": direction,
            "scope": "model",
            **k.labels(),
        }
        shown = f"{value:.4g}" if value is not None else "no value"
        summary = (
            f"{stream.metric} of {k.tenant} {k.model}/{k.version} in {k.region} is {shown}, "
            f"expected {verdict.expected:.4g} (p = {verdict.p_value:.2g})"
        )
        return Event(
            at=now,
            source=SOURCE,
            kind=f"anomaly.{state}",
            severity=labels["severity"] if state == "firing" else "info",  # type: ignore[arg-type]
            subject=f"{k.model}/{k.version}",
            message=f"{labels['alertname']} {state}: {summary}",
            details={
                "alert": alert_details(
                    labels,
                    state,
                    annotations={"summary": summary, "value": shown},
                    anomaly_at=stream.anomalous_since,
                ),
                "score": verdict.score,
            },
            tenant=k.tenant,
        )

    def _end_dead_streams(
        self, conn: Connection, live: set[StreamKey], now: datetime
    ) -> list[Event]:
        """Resolve the alerts of streams that ended while firing, and forget their state."""
        events = []
        for row in conn.execute(
            select(detector_states).where(detector_states.c.firing.is_not(None))
        ):
            key = StreamKey(**row.labels)
            if key in live:
                continue
            labels = {
                "alertname": alert_name(row.metric),
                "severity": "critical",
                "metric": row.metric,
                "direction": row.firing,
                "scope": "model",
                **key.labels(),
            }
            events.append(
                Event(
                    at=now,
                    source=SOURCE,
                    kind="anomaly.resolved",
                    severity="info",
                    subject=f"{key.model}/{key.version}",
                    message=f"{labels['alertname']} resolved: the stream ended",
                    details={"alert": {"labels": labels, "state": "resolved"}},
                    tenant=key.tenant,
                )
            )
            conn.execute(detector_states.delete().where(detector_states.c.stream == row.stream))
        return events

    def _save(self, conn: Connection, streams: Any, now: datetime) -> None:
        rows = [
            {
                "stream": s.id,
                "metric": s.metric,
                "labels": {
                    "tenant": s.key.tenant,
                    "model": s.key.model,
                    "version": s.key.version,
                    "region": s.key.region,
                },
                "state": s.detector.state(),
                "firing": s.firing,
                "anomalous_since": s.anomalous_since,
                "started_at": s.started_at,
                "last_minute": s.last_minute,
                "updated_at": now,
            }
            for s in streams
            if s.changed
        ]
        upsert(
            conn,
            detector_states,
            rows,
            unique=["stream"],
            update=[
                "state",
                "firing",
                "anomalous_since",
                "started_at",
                "last_minute",
                "updated_at",
            ],
        )


def _deviation(verdict: Verdict) -> float:
    """Which way the point deviates: its own z when that is what alarms (a spike), else the
    level-shift statistic's (a shift that outlasts the points that made it)."""
    return verdict.z if abs(verdict.z) >= 3.0 else verdict.shift


def _severity(metric: str, direction: str, spec: AnomalySpec) -> str:
    harmful = metric in ("error_rate", "latency_p99") or (
        metric == "request_rate" and direction == "down"
    )
    return spec.severity if harmful else spec.minor_severity


def _new_detector(metric: str, spec: AnomalySpec) -> SeasonalDetector:
    return SeasonalDetector(BAD_DIRECTION[metric], alpha=spec.significance)


def _value(
    stream: _Stream,
    rollup: Rollup | None,
    drift: dict[tuple[str, str, str, datetime], float],
    minute: datetime,
    spec: AnomalySpec,
    *,
    partial: timedelta | None = None,
) -> float | None:
    if stream.metric == "drift_score":
        k = stream.key
        return drift.get((k.tenant, k.model, k.version, minute))
    seconds = partial.total_seconds() if partial is not None else 60.0
    return metric_values(rollup, seconds, min_requests=spec.min_requests)[stream.metric]


def _at_full_minute(
    stream: _Stream, value: float | None, rollup: Rollup | None, minute: datetime, spec: AnomalySpec
) -> float | None:
    """A ratio over fewer requests than a full minute's is noisier (the noise of a mean or a
    rate shrinks as 1 / sqrt(n)): its deviation from the forecast is shrunk by
    sqrt(n / full_minute_requests), so a quiet night or a minute just begun is judged at a full
    minute's noise, and learned as such."""
    if value is None or rollup is None or stream.metric not in _RATIOS:
        return value
    served = rollup.requests - rollup.status["rejected"]
    if served >= spec.full_minute_requests:
        return value
    expected = stream.detector.peek(minute, value).expected
    if not math.isfinite(expected):
        return value
    return expected + (value - expected) * math.sqrt(served / spec.full_minute_requests)


def _anomaly_specs(state: FleetState) -> dict[str, AnomalySpec]:
    return {
        r.resource.name: r.resource.spec.monitoring.anomaly
        for r in state.of_kind(Model)
        if isinstance(r.resource, Model)
    }


def _live_streams(conn: Connection, state: FleetState) -> set[StreamKey]:
    """Every live (tenant, model, version, region), and each (tenant, model, all, region)."""
    keys = _live_versions(conn, state)
    return keys | {replace(k, version=ALL_VERSIONS) for k in keys}


def _live_versions(conn: Connection, state: FleetState) -> set[StreamKey]:
    """The (tenant, model, version, region) streams traffic should be flowing on now.

    The region of a tenant's traffic is recorded by the gateway that served it; a stream is
    live in every region that has served the tenant recently and is not declared down."""
    tenants = [r.resource for r in state.of_kind(Tenant) if isinstance(r.resource, Tenant)]
    splits = read_splits(conn)
    down = set(
        conn.execute(
            select(region_status.c.region).where(region_status.c.status == "down")
        ).scalars()
    )
    regions = _recent_regions(conn)
    live: set[StreamKey] = set()
    for reg in state.of_kind(Deployment):
        d = reg.resource
        assert isinstance(d, Deployment)
        versions = {reg.serving_version}
        split = splits.get(d.name)
        if split is not None and split.canary_percent > 0:
            versions.add(split.candidate)
        names = [t.name for t in tenants] if d.spec.tenants == "all" else d.spec.tenants
        for tenant in names:
            own = d.spec.pins.get(tenant)
            for version in {own} if own else versions:
                for region in regions.get(tenant, set()) - down:
                    if version is not None:
                        live.add(StreamKey(tenant, d.spec.model, version, region))
    return live


def _recent_regions(conn: Connection) -> dict[str, set[str]]:
    """The regions each tenant's traffic has been served in, as the detectors know them."""
    since = conn.execute(
        select(rollups_table.c.minute).order_by(rollups_table.c.minute.desc()).limit(1)
    ).scalar()
    out: dict[str, set[str]] = defaultdict(set)
    if since is None:
        return out
    rows = conn.execute(
        select(rollups_table.c.tenant, rollups_table.c.region)
        .where(rollups_table.c.minute >= since - timedelta(hours=1))
        .distinct()
    )
    for tenant, region in rows:
        out[tenant].add(region)
    return out


def _drift_scores(
    conn: Connection, since: datetime, until: datetime
) -> dict[tuple[str, str, str, datetime], float]:
    """The drift monitor's largest feature PSI, by (tenant, model, version, minute)."""
    t = monitor_results
    rows = conn.execute(
        select(t.c.tenant, t.c.model, t.c.version, t.c.at, t.c.payload).where(
            t.c.monitor == "drift", t.c.at >= since, t.c.at <= until
        )
    )
    out: dict[tuple[str, str, str, datetime], float] = {}
    for tenant, model, version, at, payload in rows:
        features = payload.get("details", payload).get("features") or []
        psis = [f["psi"] for f in features if isinstance(f, dict) and "psi" in f]
        if psis:
            minute = at.replace(second=0, microsecond=0)
            out[(tenant, model, version, minute)] = max(psis)
    return out


def _number(minute: datetime) -> int:
    return int((minute - _EPOCH).total_seconds() // 60)


def _minute(number: int) -> datetime:
    return _EPOCH + number * _MINUTE
