"""The monitor controller: judges every (tenant, model, version) window and says what changed.

Each `tick(now)` first profiles any served version that has reference data but no profile yet,
then, once per `every` of a model's monitoring spec, pools the last `window` of rollups per
(tenant, version) and judges drift, data quality and output quality against the profile. Every
verdict is stored (`monitor_results`) with its evidence; an event is written when a verdict
gets worse (`monitor.<name>`, warning or critical) and when it recovers (`monitor.<name>.resolved`),
so alerting hears of a change once, not every minute. A tenant's verdicts only ever read its
own rollups: drift injected into one tenant's traffic is flagged for that tenant alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select

from modelfleet.config.schema import Deployment, Model, MonitoringSpec
from modelfleet.gateway.routing import version_spec
from modelfleet.monitors.judge import Verdict, judge
from modelfleet.monitors.profile import Profile, build_profile, read_profile, write_profile
from modelfleet.monitors.window import Window, labelled_rows, windows
from modelfleet.registry import load_state
from modelfleet.registry.events import Event, record_event
from modelfleet.registry.resources import FleetState
from modelfleet.registry.splits import read_splits
from modelfleet.store import Store
from modelfleet.store.tables import monitor_results
from modelfleet.telemetry.writer import read_rollups

log = logging.getLogger(__name__)

SOURCE = "monitors"


class MonitorController:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._profiles: dict[tuple[str, str], Profile] = {}
        self._unprofiled: set[tuple[str, str]] = set()  # tried and failed: said once, not per tick

    def tick(self, now: datetime) -> list[Event]:
        with self.store.begin() as conn:
            state = load_state(conn)
            candidates = {s.deployment: s.candidate for s in read_splits(conn).values()}
        self._profile_served_versions(state, candidates, now)
        events: list[Event] = []
        for model, spec in _monitored_models(state).items():
            end = _floor(now, spec.every)
            with self.store.begin() as conn:
                if _judged_until(conn, model) >= end:
                    continue
                events += self._judge_model(conn, model, spec, end)
        return events

    def _profile_served_versions(
        self, state: FleetState, candidates: dict[str, str], now: datetime
    ) -> None:
        """Profile every version that serves or may soon: stable, declared, pinned, and the
        candidate of a rollout in progress."""
        for reg in state.of_kind(Deployment):
            deployment = reg.resource
            assert isinstance(deployment, Deployment)
            versions = {
                reg.serving_version,
                deployment.spec.version,
                candidates.get(deployment.name),
                *deployment.spec.pins.values(),
            }
            for version in sorted(v for v in versions if v is not None):
                key = (deployment.spec.model, version)
                if key in self._profiles or key in self._unprofiled:
                    continue
                with self.store.begin() as conn:
                    stored = read_profile(conn, *key)
                if stored is None:
                    spec = version_spec(state, *key)
                    if spec is None or spec.reference_data is None:
                        continue
                    try:
                        stored = build_profile(spec)  # outside a transaction: it loads a model
                    except Exception as exc:  # a broken reference must not stop monitoring
                        log.warning("cannot profile %s/%s: %s", *key, exc)
                        self._unprofiled.add(key)
                        continue
                    with self.store.begin() as conn:
                        write_profile(conn, stored, now=now)
                self._profiles[key] = stored

    def _judge_model(
        self, conn: Connection, model: str, spec: MonitoringSpec, end: datetime
    ) -> list[Event]:
        start = end - spec.window
        found = read_rollups(conn, since=start, until=end, model=model)
        events: list[Event] = []
        for (_, _, version), window in sorted(
            windows(found.values(), start=start, end=end).items()
        ):
            profile = self._profiles.get((model, version))
            if profile is None:
                continue
            for verdict in judge(window, profile, spec, labelled_rows(conn, window)):
                events += self._record(conn, window, verdict)
        return events

    def _record(self, conn: Connection, window: Window, verdict: Verdict) -> list[Event]:
        previous = _latest_status(conn, window, verdict.monitor)
        conn.execute(
            insert(monitor_results).values(
                at=window.end,
                tenant=window.tenant,
                model=window.model,
                version=window.version,
                monitor=verdict.monitor,
                status=verdict.status,
                window_start=window.start,
                window_end=window.end,
                payload=verdict.to_dict(),
            )
        )
        if verdict.status == "insufficient":
            return []
        was_alert, is_alert = previous == "alert", verdict.status == "alert"
        if is_alert and not was_alert:
            kind, severity = f"monitor.{verdict.monitor}", "critical"
        elif was_alert and not is_alert:
            kind, severity = f"monitor.{verdict.monitor}.resolved", "info"
        else:
            return []
        event = Event(
            at=window.end,
            source=SOURCE,
            kind=kind,
            severity=severity,  # type: ignore[arg-type]
            subject=f"{window.model}/{window.version}",
            tenant=window.tenant,
            message=f"{window.tenant} {window.model}/{window.version} {verdict.monitor} "
            f"{verdict.status} ({window.start:%H:%M}-{window.end:%H:%M}): {verdict.reason}",
            details=_summary(window, verdict),
        )
        record_event(conn, event)
        return [event]


def _summary(window: Window, verdict: Verdict) -> dict[str, Any]:
    details = dict(verdict.details)
    if "features" in details:  # the ranked drifted features, not all of them
        details["features"] = [f for f in details["features"] if f["drifted"] or f["warning"]][:20]
    return {
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "rows": window.rows,
        "status": verdict.status,
        **details,
    }


def _monitored_models(state: FleetState) -> dict[str, MonitoringSpec]:
    out = {}
    for reg in state.of_kind(Model):
        assert isinstance(reg.resource, Model)
        out[reg.resource.name] = reg.resource.spec.monitoring
    return out


def _floor(now: datetime, every: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    return epoch + ((now - epoch) // every) * every


def _judged_until(conn: Connection, model: str) -> datetime:
    found = conn.execute(
        select(func.max(monitor_results.c.window_end)).where(monitor_results.c.model == model)
    ).scalar_one_or_none()
    return found if found is not None else datetime.min.replace(tzinfo=UTC)


def _latest_status(conn: Connection, window: Window, monitor: str) -> str | None:
    t = monitor_results
    return conn.execute(
        select(t.c.status)
        .where(
            and_(
                t.c.tenant == window.tenant,
                t.c.model == window.model,
                t.c.version == window.version,
                t.c.monitor == monitor,
                t.c.status != "insufficient",
            )
        )
        .order_by(t.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
