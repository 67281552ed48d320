"""A model's time series for the dashboard's charts, read off the telemetry rollups.

`model_series` merges the rollups of each time bucket (one minute, or `step` seconds for long
windows, so that a month of minute rollups stays under `MAX_POINTS` points a series) and
gives, per bucket: requests per second (quota rejections included, as the alert rules count
them), the share of served requests answered 5xx, latency p50/p95/p99 from the bucket's merged
latency sketch, the mean confidence, and each feature's PSI against the serving version's
reference profile. Rollups merge by addition, so a bucket's percentiles are exactly those of
the sketch of all its requests, not an average of minutes.

The result is columns (`timestamps` in epoch seconds and one list per metric, None where a
bucket has no data), which serialise straight to the JSON uPlot draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, select

from modelfleet.monitors.profile import Profile, read_profile
from modelfleet.stats import Histogram, LatencySketch
from modelfleet.stats.drift import psi
from modelfleet.stats.histogram import midpoint_mean
from modelfleet.store.tables import rollups as rollups_table
from modelfleet.telemetry.rollup import CONFIDENCE_EDGES

MAX_POINTS: Final = 3000
# Bucket widths, in seconds, that a chart steps through as its window grows: whole minutes
# that divide an hour or a day, so bucket edges fall on round times.
STEPS_S: Final = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
# PSI over a handful of rows is noise: a bucket's drift is shown from this many rows of a version.
DRIFT_MIN_ROWS: Final = 50
METRICS: Final = ("requests_per_s", "error_rate", "p50_s", "p95_s", "p99_s", "confidence")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Column = list[float | None]


@dataclass(frozen=True)
class Series:
    """One model's metrics per bucket of `step_s` seconds in [since, until), as columns."""

    model: str
    tenant: str | None  # None: every tenant
    since: datetime  # the first bucket's start
    until: datetime
    step_s: int
    timestamps: list[int]  # each bucket's start, epoch seconds
    requests_per_s: Column
    error_rate: Column  # 5xx over served requests
    p50_s: Column
    p95_s: Column
    p99_s: Column
    confidence: Column  # mean confidence of the predictions
    drift: dict[str, Column] = field(default_factory=dict)  # feature -> PSI vs the reference

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as `charts.js` reads it: `timestamps`, then a list per metric."""
        return {
            "model": self.model,
            "tenant": self.tenant,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "step_s": self.step_s,
            "timestamps": self.timestamps,
            **{name: getattr(self, name) for name in METRICS},
            "drift": self.drift,
        }


def auto_step(since: datetime, until: datetime, max_points: int = MAX_POINTS) -> int:
    """The narrowest of `STEPS_S` that covers [since, until) in at most `max_points` buckets,
    wherever the window starts (a window off the buckets' edges touches one bucket more)."""
    seconds = (until - since).total_seconds()
    for step in STEPS_S:
        if seconds / step + 1 <= max_points:
            return step
    return STEPS_S[-1] * -(-int(seconds) // (STEPS_S[-1] * (max_points - 1)))


def model_series(
    conn: Connection,
    model: str,
    *,
    since: datetime,
    until: datetime,
    tenant: str | None = None,
    step: int | None = None,
) -> Series:
    """`model`'s metrics per bucket of [since, until) (see the module); `tenant` keeps one
    tenant's traffic; `step` (seconds, whole minutes) overrides the automatic bucket width.

    Raises ValueError for an empty window, a step that is not whole minutes, or one that
    gives more than `MAX_POINTS` buckets."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("a series' window must be timezone-aware")
    if until <= since:
        raise ValueError(f"a series' window must end after it starts: {since} to {until}")
    step_s = auto_step(since, until) if step is None else step
    if step_s < 60 or step_s % 60:
        raise ValueError(f"a series' step must be whole minutes, got {step_s} s")
    first = _bucket(since, step_s)
    count = -(-int((until - _EPOCH).total_seconds() - first) // step_s)
    if count > MAX_POINTS:
        raise ValueError(f"a step of {step_s} s gives {count} points, more than {MAX_POINTS}")
    buckets: list[_Bucket] = [_Bucket() for _ in range(count)]
    profiles = {
        version: profile
        for version in _versions(conn, model, since, until, tenant)
        if (profile := read_profile(conn, model, version)) is not None
    }
    for at, version, payload in _stored(conn, model, since, until, tenant):
        bucket = buckets[(_bucket(at, step_s) - first) // step_s]
        # Feature histograms are most of a rollup; only a version with a profile needs them.
        bucket.add(payload, version, features=version in profiles)
    drift = _drift(buckets, profiles)
    columns: dict[str, Column] = {name: [] for name in METRICS}
    for b in buckets:
        for name, value in b.values(step_s).items():
            columns[name].append(value)
    return Series(
        model=model,
        tenant=tenant,
        since=_EPOCH + timedelta(seconds=first),
        until=until,
        step_s=step_s,
        timestamps=[first + i * step_s for i in range(count)],
        requests_per_s=columns["requests_per_s"],
        error_rate=columns["error_rate"],
        p50_s=columns["p50_s"],
        p95_s=columns["p95_s"],
        p99_s=columns["p99_s"],
        confidence=columns["confidence"],
        drift=drift,
    )


def _stored(
    conn: Connection, model: str, since: datetime, until: datetime, tenant: str | None
) -> Iterator[tuple[datetime, str, Mapping[str, Any]]]:
    """The stored rollup rows of [since, until), shadow ones never, one by one, undecoded:
    a month of minute rollups built as `Rollup` objects takes seconds, most of it for the
    feature histograms that only drift needs."""
    t = rollups_table
    query = select(t.c.minute, t.c.version, t.c.payload).where(
        *_window(model, since, until, tenant)
    )
    for row in conn.execute(query):
        yield row.minute, row.version, row.payload


def _versions(
    conn: Connection, model: str, since: datetime, until: datetime, tenant: str | None
) -> list[str]:
    query = select(rollups_table.c.version).where(*_window(model, since, until, tenant))
    return sorted(set(conn.execute(query.distinct()).scalars()))


def _window(model: str, since: datetime, until: datetime, tenant: str | None) -> list[Any]:
    t = rollups_table
    where = [t.c.model == model, t.c.minute >= since, t.c.minute < until, t.c.shadow.is_(False)]
    return where if tenant is None else [*where, t.c.tenant == tenant]


class _Bucket:
    """The merged rollups of one bucket: counts, one sketch, one confidence histogram, and
    feature histograms per version (each version has its own reference edges)."""

    __slots__ = ("confidence", "features", "latency", "requests", "served", "server_errors")

    def __init__(self) -> None:
        self.requests = 0
        self.served = 0
        self.server_errors = 0
        self.latency: LatencySketch | None = None
        self.confidence = Histogram(CONFIDENCE_EDGES)
        self.features: dict[str, dict[str, Histogram]] = {}  # version -> feature -> histogram

    def add(self, payload: Mapping[str, Any], version: str, *, features: bool) -> None:
        """Add one stored rollup (`Rollup.to_dict`'s form); its feature histograms too when
        `features`."""
        status = payload["status"]
        requests = sum(status.values())
        self.requests += requests
        self.served += requests - status.get("rejected", 0)
        self.server_errors += status.get("5xx", 0)
        latency = LatencySketch.from_dict(payload["latency"])
        if self.latency is None:
            self.latency = latency
        else:
            self.latency.merge(latency)
        self.confidence.merge(Histogram.from_dict(payload["confidence"]))
        if not features:
            return
        into = self.features.setdefault(version, {})
        for name, stored in payload["features"].items():
            histogram = Histogram.from_dict(stored)
            have = into.get(name)
            if have is None:
                into[name] = histogram
            elif have.edges == histogram.edges:
                have.merge(histogram)
            # else: the version's edges changed within the bucket; the later minutes count

    def values(self, step_s: int) -> dict[str, float | None]:
        if self.latency is None:  # no rollup at all: no data, which is not zero traffic
            return dict.fromkeys(METRICS)
        latency = self.latency
        return {
            "requests_per_s": self.requests / step_s,
            "error_rate": self.server_errors / self.served if self.served else None,
            "p50_s": latency.quantile(0.5),
            "p95_s": latency.quantile(0.95),
            "p99_s": latency.quantile(0.99),
            "confidence": midpoint_mean(self.confidence),
        }


def _drift(buckets: list[_Bucket], profiles: dict[str, Profile]) -> dict[str, Column]:
    """Per feature and bucket, the highest PSI of any version against its own profile (None
    below `DRIFT_MIN_ROWS` rows, or where the edges do not match the profile's)."""
    names = sorted({name for p in profiles.values() for name in p.columns})
    out: dict[str, Column] = {name: [None] * len(buckets) for name in names}
    for i, b in enumerate(buckets):
        for version, histograms in b.features.items():
            profile = profiles.get(version)
            if profile is None:
                continue
            for name, current in histograms.items():
                column = profile.columns.get(name)
                if column is None or column.edges != current.edges:
                    continue
                if sum(current.counts) < DRIFT_MIN_ROWS:
                    continue
                value = psi(column.counts, current.counts)
                have = out[name][i]
                out[name][i] = value if have is None else max(have, value)
    return out


def _bucket(at: datetime, step_s: int) -> int:
    """The epoch second the bucket holding `at` starts at."""
    seconds = int((at - _EPOCH).total_seconds())
    return seconds - seconds % step_s
