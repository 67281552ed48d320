"""Per-replica capacity, measured: what one replica of a version served within its objective.

For each minute of the last day, the rollups of the serving version give the requests served
(less those rejected by quota) and the p99 latency (their sketches merged). A minute whose p99
met the policy's `latency_objective` shows that each replica that ran then sustained
``served / 60 / replicas`` requests per second. The replicas that ran are those of the
capacity decisions (`replicas_per_minute`): a decision inside a minute counts for the whole
minute, so replicas still starting are counted as serving and the figure errs low. The
capacity is the busiest such minute's figure: a lower bound that rises as busier minutes meet
the objective, and forgets a minute after a day, so a slower version is measured anew.

`CapacityMeter` keeps each minute's figure and reads only minutes it has not seen (and the
last two again, for telemetry flushed late), so the controller can measure every minute
without rereading a day of rollups.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from modelfleet.config.capacity import CapacityPolicySpec
from modelfleet.config.schema import Deployment
from modelfleet.registry.replicas import replica_target
from modelfleet.registry.resources import load_state
from modelfleet.stats import LatencySketch
from modelfleet.store.tables import capacity_decisions
from modelfleet.telemetry.writer import read_rollups

MEASURE_OVER = timedelta(days=1)
_MINUTE = timedelta(minutes=1)
_REREAD = 2 * _MINUTE  # the gateway flushes a minute's rollup a little after it ends


class CapacityMeter:
    """One version's per-replica capacity, kept up to date minute by minute; see the module."""

    def __init__(self, spec: CapacityPolicySpec, version: str) -> None:
        self.spec = spec
        self.version = version
        self.minutes_: dict[datetime, float | None] = {}  # per-replica rps, None: missed
        self.read_until_: datetime | None = None

    def measure(self, conn: Connection, now: datetime, replicas_now: int) -> float | None:
        """Requests/s per replica in the busiest minute of the last day that met the objective."""
        since = now - MEASURE_OVER
        start = since if self.read_until_ is None else max(since, self.read_until_ - _REREAD)
        if start < now:
            minutes = int((now - start) / _MINUTE)
            ran = replicas_per_minute(conn, self.spec.model, start, minutes, replicas_now)
            served, latency = _minutes(conn, self.spec.model, self.version, start, now)
            objective = self.spec.latency_objective.total_seconds()
            for minute, count in served.items():
                p99 = latency[minute].quantile(0.99)
                index = int((minute - start) / _MINUTE)
                if count > 0 and p99 is not None and 0 <= index < len(ran):
                    ok = p99 <= objective
                    self.minutes_[minute] = count / 60.0 / max(ran[index], 1) if ok else None
        self.read_until_ = now
        for minute in [m for m in self.minutes_ if m < since]:
            del self.minutes_[minute]
        return max((r for r in self.minutes_.values() if r is not None), default=None)


def measured_capacity(
    conn: Connection, spec: CapacityPolicySpec, version: str, now: datetime, replicas_now: int
) -> float | None:
    """The `CapacityMeter` figure read afresh: for commands, which run once."""
    return CapacityMeter(spec, version).measure(conn, now, replicas_now)


def _minutes(
    conn: Connection, model: str, version: str, since: datetime, until: datetime
) -> tuple[dict[datetime, int], dict[datetime, LatencySketch]]:
    served: dict[datetime, int] = {}
    latency: dict[datetime, LatencySketch] = {}
    rollups = read_rollups(conn, since=since, until=until, model=model, version=version)
    for rollup in rollups.values():
        minute = rollup.key.minute
        served[minute] = served.get(minute, 0) + rollup.requests - rollup.status["rejected"]
        if minute in latency:
            latency[minute].merge(rollup.latency)
        else:
            latency[minute] = rollup.latency.copy()
    return served, latency


def replicas_per_minute(
    conn: Connection, model: str, since: datetime, minutes: int, fallback: int
) -> list[int]:
    """The replicas that ran in each of `minutes` minutes from `since`, by capacity decision.

    Before the first decision of the period, the last one before it; failing that, the first
    decision's ``previous``; with no decision at all, `fallback`.
    """
    t = capacity_decisions
    before = conn.execute(
        select(t.c.replicas).where(t.c.model == model, t.c.at <= since).order_by(t.c.at.desc())
    ).first()
    during = conn.execute(
        select(t.c.at, t.c.replicas, t.c.previous)
        .where(t.c.model == model, t.c.at > since, t.c.at < since + minutes * _MINUTE)
        .order_by(t.c.at)
    ).all()
    replicas = fallback
    if before is not None:
        replicas = before.replicas
    elif during:
        replicas = during[0].previous  # what ran until the first decision
    out = []
    i = 0
    for m in range(minutes):
        minute_end = since + (m + 1) * _MINUTE  # a decision inside the minute counts for it
        while i < len(during) and during[i].at < minute_end:
            replicas = during[i].replicas
            i += 1
        out.append(replicas)
    return out


def serving_versions(conn: Connection) -> dict[str, str]:
    """Each deployed model's stable version, the one serving now."""
    out: dict[str, str] = {}
    for registered in load_state(conn).of_kind(Deployment):
        deployment = registered.resource
        assert isinstance(deployment, Deployment)
        if registered.serving_version is not None:
            out[deployment.spec.model] = registered.serving_version
    return out


def current_replicas(conn: Connection, policy: CapacityPolicySpec) -> int:
    """The serving version's replica target, or the policy's `min_replicas` without one."""
    version = serving_versions(conn).get(policy.model)
    target = replica_target(conn, policy.model, version).replicas if version else None
    return target or policy.min_replicas
