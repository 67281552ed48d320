"""What each model's replicas did over a period, read from the store for `capacity/cost.py`.

The I/O edge of cost per tenant and right-sizing: `usage` reads one model's hours of a period
``[since, until)`` and returns plain numbers; `cost.allocate` and `cost.right_size` do the
arithmetic. For every hour of the period:

- **replicas that ran**, minute by minute: the last `capacity_decisions` row at or before the
  minute; before the first decision of all, that decision's ``previous``; with no decision at
  all, the serving version's replica target, or the policy's ``min_replicas``;
- **requests served per tenant**: the rollups' requests less those rejected by quota;
- **cost**: each minute's instances (``ceil(replicas / replicas_per_instance)``) at the
  on-demand price of the policy's instance type, a sixtieth of an hour each;
- **utilization**: served requests over what the replicas could serve at the measured
  per-replica capacity (`per_replica_capacity`, one figure for the period), clipped to
  ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from modelfleet.capacity.cost import instances_needed
from modelfleet.capacity.measure import (
    current_replicas,
    measured_capacity,
    replicas_per_minute,
    serving_versions,
)
from modelfleet.config.capacity import CapacityPolicySpec, InstanceTypeSpec
from modelfleet.store.tables import capacity_decisions
from modelfleet.telemetry.writer import read_rollups

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Usage:
    """One model's hours from `since` (the last one may be partial), as `usage` read them."""

    model: str
    currency: str
    since: datetime
    per_replica_rps: float | None
    """Requests per second one replica serves, as measured; None: not measured yet."""
    replicas_now: int
    replica_minutes: tuple[int, ...]
    """Per hour: the replicas that ran, summed over its minutes."""
    served: Mapping[str, tuple[int, ...]]
    """Per tenant, per hour: requests served (rejected ones left out)."""
    cost: tuple[float, ...]
    """Per hour: on-demand cost of the instances that ran."""

    def utilization(self) -> list[float]:
        """Per hour: served requests over what the replicas that ran could serve, in [0, 1]."""
        capacity = self._capacity_per_replica_minute()
        return [
            min(1.0, served / (minutes * capacity)) if minutes else float(served > 0)
            for served, minutes in zip(self.served_per_hour(), self.replica_minutes, strict=True)
        ]

    def utilization_at(self, replicas: int) -> list[float]:
        """Per hour: served requests over what `replicas` replicas serve in an hour, not
        clipped (above 1: more than they could have served)."""
        hour = self._capacity_per_replica_minute() * 60 * replicas
        return [served / hour for served in self.served_per_hour()]

    def served_per_hour(self) -> list[int]:
        """Per hour: requests served, all tenants together."""
        totals = [0] * len(self.cost)
        for counts in self.served.values():
            for hour, n in enumerate(counts):
                totals[hour] += n
        return totals

    def _capacity_per_replica_minute(self) -> float:
        if not self.per_replica_rps:
            raise ValueError(f"model {self.model!r} has no measured per-replica capacity")
        return self.per_replica_rps * 60.0


def usage(
    conn: Connection,
    policy: CapacityPolicySpec,
    instance: InstanceTypeSpec,
    *,
    since: datetime,
    until: datetime,
) -> Usage:
    """`policy.model`'s hours of ``[since, until)`` (whole minutes); see the module."""
    minutes = int((until - since) / _MINUTE)
    if minutes < 1:
        raise ValueError("the period must last at least a minute")
    hours = -(-minutes // 60)
    replicas_now = current_replicas(conn, policy)
    ran = replicas_per_minute(conn, policy.model, since, minutes, replicas_now)
    replica_minutes = [0] * hours
    instance_minutes = [0] * hours
    for m, replicas in enumerate(ran):
        replica_minutes[m // 60] += replicas
        instance_minutes[m // 60] += instances_needed(replicas, policy.replicas_per_instance)
    served: dict[str, list[int]] = {}
    for key, rollup in read_rollups(conn, since=since, until=until, model=policy.model).items():
        per_hour = served.setdefault(key.tenant, [0] * hours)
        per_hour[int((key.minute - since) / _HOUR)] += rollup.requests - rollup.status["rejected"]
    return Usage(
        model=policy.model,
        currency=instance.currency,
        since=since,
        per_replica_rps=per_replica_capacity(conn, policy, until),
        replicas_now=replicas_now,
        replica_minutes=tuple(replica_minutes),
        served={tenant: tuple(counts) for tenant, counts in sorted(served.items())},
        cost=tuple(n * instance.on_demand_hourly / 60.0 for n in instance_minutes),
    )


def per_replica_capacity(
    conn: Connection, policy: CapacityPolicySpec, now: datetime
) -> float | None:
    """Requests per second one replica serves: the larger of what the last day measured for
    the serving version (`controller.measured_capacity`) and what the latest capacity
    decision used. Both are lower bounds, and the measurement forgets busier days after one
    day, which the decision remembers. None when neither exists."""
    found = []
    version = serving_versions(conn).get(policy.model)
    if version is not None:
        found.append(measured_capacity(conn, policy, version, now, current_replicas(conn, policy)))
    t = capacity_decisions
    recorded = t.c.inputs["per_replica_rps"].as_float()
    found.append(
        conn.execute(
            select(recorded)
            .where(t.c.model == policy.model, t.c.at <= now, recorded.is_not(None))
            .order_by(t.c.at.desc())
            .limit(1)
        ).scalar()
    )
    return max((rps for rps in found if rps), default=None)
