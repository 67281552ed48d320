"""Replay a demand trace through an autoscaler: how often it ran short, and what it cost.

The trace is one (timestamp in seconds, requests in the interval) pair per interval of
`interval_s` seconds. At the start of interval i the autoscaler decides from the load of
interval i − 1 and, in predictive mode, from the forecaster's upper bound over the time its
replicas must serve (`upper_over_window`), given the requests of intervals 0 … i − 1.
Replicas asked for become ready `startup_delay_s` later; a scale-down takes effect at once
(pending replicas are cancelled first). The replay starts warm: the first decision sees the
first interval's load as the load just observed, and its replicas are ready at once.

For interval i, capacity = per_replica_rps × the replica-seconds that were ready in it (a
replica that becomes ready 2 minutes into an hour serves 58 minutes of it), served =
min(demand, capacity), and the interval is under-provisioned when demand > capacity. Every
replica that exists (ready or starting) is billed for the interval:
replica_hours = Σ billed × interval_s / 3600 and cost = replica_hours × price_per_replica_hour.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from modelfleet.capacity.autoscaler import Autoscaler, Decision, Mode, ScalingPolicy

Forecaster = Callable[[np.ndarray, int], np.ndarray]
"""(requests of the intervals so far, h) → upper bound of each of the next h intervals."""

SEASONAL_MARGIN = 1.1
DAY_S = 86_400.0


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """What a replay found, in totals and per interval."""

    under_provisioned_share: float
    """Share of intervals whose demand exceeded their capacity."""
    mean_utilization: float
    """Mean over intervals of served / capacity."""
    replica_hours: float
    cost: float
    timestamps: np.ndarray
    demand: np.ndarray
    """Requests per interval."""
    capacity: np.ndarray
    """Requests each interval's ready replicas could serve."""
    served: np.ndarray
    ready_replicas: np.ndarray
    """Replicas ready at each interval's start."""
    billed_replicas: np.ndarray
    """Replicas that existed (ready or starting) during each interval."""
    utilization: np.ndarray
    decisions: tuple[Decision, ...]


def seasonal_naive_upper(interval_s: float) -> Forecaster:
    """Upper bound = the same interval a day earlier × 1.1, else the last value × 1.1."""
    per_day = max(1, round(DAY_S / interval_s))

    def forecast(history: np.ndarray, h: int) -> np.ndarray:
        n = len(history)
        out = np.zeros(h, dtype=float)
        if n == 0:
            return out
        for k in range(h):
            earlier = n + k - per_day
            base = history[earlier] if 0 <= earlier < n else history[-1]
            out[k] = float(base) * SEASONAL_MARGIN
        return out

    return forecast


def upper_over_window(ahead: np.ndarray, interval_s: float, lead_s: float) -> float:
    """The rate, requests/s, that replicas decided now must serve: the highest upper bound of
    the intervals from now until a later decision's replicas could be ready.

    A decision holds for one interval and its replicas serve `lead_s` after it, so it covers
    ``[now, now + interval + lead)``. Intervals wholly inside count whole; the last, partial
    one only as the mean rate over the window's final interval-length, so an hourly trace with
    a 5-minute start-up is sized for this hour and not for all of the next.
    """
    if len(ahead) == 0:
        return 0.0
    whole, part = divmod(lead_s, interval_s)
    full = int(whole) + 1
    rates = np.asarray(ahead, dtype=float) / interval_s
    highest = float(np.max(rates[:full]))
    if part > 0 and len(rates) > full:
        share = part / interval_s
        highest = max(highest, share * rates[full] + (1.0 - share) * rates[full - 1])
    return highest


def replay(
    trace: Sequence[tuple[float, float]],
    policy: ScalingPolicy,
    mode: Mode,
    *,
    interval_s: float,
    startup_delay_s: float,
    forecaster: Forecaster | None = None,
    price_per_replica_hour: float,
    static_replicas: int | None = None,
) -> ReplayResult:
    """Run `trace` through an `Autoscaler(policy, mode, static_replicas)` and score it."""
    if not interval_s > 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    if startup_delay_s < 0:
        raise ValueError(f"startup_delay_s must be ≥ 0, got {startup_delay_s}")
    if price_per_replica_hour < 0:
        raise ValueError(f"price_per_replica_hour must be ≥ 0, got {price_per_replica_hour}")
    if not trace:
        raise ValueError("the trace is empty")
    timestamps = np.array([t for t, _ in trace], dtype=float)
    demand = np.array([r for _, r in trace], dtype=float)
    if np.any(np.diff(timestamps) <= 0):
        raise ValueError("trace timestamps must be strictly increasing")
    if np.any(demand < 0) or not np.all(np.isfinite(demand)):
        raise ValueError("trace requests must be finite and ≥ 0")

    scaler = Autoscaler(policy, mode, static_replicas)
    forecast = forecaster if forecaster is not None else seasonal_naive_upper(interval_s)
    whole, part = divmod(policy.startup_lead, interval_s)
    horizon = int(whole) + 1 + (part > 0)
    n = len(trace)
    ready = 0
    pending: list[tuple[float, int]] = []  # (ready at, replicas), oldest first
    ready_series = np.zeros(n, dtype=int)
    serving_s = np.zeros(n, dtype=float)
    billed_series = np.zeros(n, dtype=int)
    decisions: list[Decision] = []

    for i in range(n):
        now = float(timestamps[i])
        observed = demand[i - 1] if i > 0 else demand[0]
        upper: float | None = None
        if mode == "predictive":
            ahead = np.asarray(forecast(demand[:i].copy(), horizon), dtype=float)
            upper = upper_over_window(ahead[:horizon], interval_s, policy.startup_lead)
        existing = ready + sum(count for _, count in pending)
        decision = scaler.decide(now, existing, float(observed) / interval_s, upper)
        decisions.append(decision)
        target = decision.replicas
        if i == 0:
            ready, pending = target, []
        elif target > existing:
            pending.append((now + startup_delay_s, target - existing))
        elif target < existing:
            ready, pending = _scale_down(ready, pending, existing - target)
        ready += sum(count for at, count in pending if at <= now)
        pending = [(at, count) for at, count in pending if at > now]
        ready_series[i] = ready
        billed_series[i] = ready + sum(count for _, count in pending)
        end = now + interval_s
        serving_s[i] = ready * interval_s + sum(c * (end - at) for at, c in pending if at < end)

    capacity = serving_s * policy.per_replica_rps
    served = np.minimum(demand, capacity)
    utilization = np.divide(served, capacity, out=np.zeros(n, dtype=float), where=capacity > 0)
    replica_hours = float(np.sum(billed_series)) * interval_s / 3600.0
    return ReplayResult(
        under_provisioned_share=float(np.mean(demand > capacity)),
        mean_utilization=float(np.mean(utilization)),
        replica_hours=replica_hours,
        cost=replica_hours * price_per_replica_hour,
        timestamps=timestamps,
        demand=demand,
        capacity=capacity,
        served=served,
        ready_replicas=ready_series,
        billed_replicas=billed_series,
        utilization=utilization,
        decisions=tuple(decisions),
    )


def _scale_down(
    ready: int, pending: list[tuple[float, int]], remove: int
) -> tuple[int, list[tuple[float, int]]]:
    """Remove `remove` replicas, cancelling the newest pending ones before ready ones."""
    kept = list(pending)
    while remove > 0 and kept:
        at, count = kept.pop()
        if count > remove:
            kept.append((at, count - remove))
            remove = 0
        else:
            remove -= count
    return ready - remove, kept


def read_trace(path: str | os.PathLike[str]) -> list[tuple[float, float]]:
    """Read a CSV of (timestamp, requests) rows; timestamps ISO 8601 or epoch seconds.

    A first row that does not parse is taken as a header. ISO timestamps without an offset
    are UTC. A row that does not parse anywhere else is a ValueError naming its line.
    """
    rows: list[tuple[float, float]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            try:
                rows.append(_parse_row(row))
            except ValueError as exc:
                if number == 1:
                    continue  # a header
                raise ValueError(f"{os.fspath(path)}, line {number}: {exc}") from exc
    return rows


def _parse_row(row: list[str]) -> tuple[float, float]:
    if len(row) != 2:
        raise ValueError(f"expected 2 columns (timestamp, requests), got {len(row)}")
    stamp, count = (cell.strip() for cell in row)
    try:
        timestamp = float(stamp)
    except ValueError:
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            raise ValueError(f"timestamp {stamp!r} is neither epoch seconds nor ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        timestamp = moment.timestamp()
    try:
        requests = float(count)
    except ValueError:
        raise ValueError(f"requests {count!r} is not a number") from None
    if not (math.isfinite(timestamp) and math.isfinite(requests) and requests >= 0):
        raise ValueError(f"requests must be a finite number ≥ 0, got {count!r}")
    return timestamp, requests
