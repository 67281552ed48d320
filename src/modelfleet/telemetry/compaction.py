"""Minute rollups compacted into hourly ones, exactly: the maths of retention, without the store.

An hourly rollup is the merge of every rollup of one key in one hour, keyed at the hour's
start. Rollups merge by addition, so the hourly rollup's request and error counts, counts under
each SLO latency threshold, latency sketch, confidence and feature histograms are exactly those
of the minutes it replaces, and any quantile of its sketch is the quantile of their merge. A
reader that merges rows per key and minute (`read_rollups`) sees the hour as one minute holding
the whole hour: every sum over a window aligned to hours is unchanged.

Compacting is idempotent: an hourly rollup compacts into itself, so an hour compacted again
(because a late flush added minutes to it) merges its hourly rollup with the late minutes.

The minutes of one key normally share their SLO thresholds and feature edges. When they do
not (an SLA's threshold or a version's reference profile changed within the hour), the hourly
rollup keeps only what all of them share: the thresholds every minute counted and the feature
histograms with the same edges in every minute; everything else stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from modelfleet.telemetry.rollup import Rollup, RollupKey

HOUR = timedelta(hours=1)


def hour_start(at: datetime) -> datetime:
    """The start of the hour holding `at` (a timezone-aware UTC time)."""
    return at.replace(minute=0, second=0, microsecond=0)


def hourly_key(key: RollupKey) -> RollupKey:
    """The key of the hourly rollup that `key`'s minute compacts into."""
    return replace(key, minute=hour_start(key.minute))


def compact(rollups: Iterable[Rollup]) -> dict[RollupKey, Rollup]:
    """One hourly rollup per key and hour of `rollups` (minute or hourly ones), keyed at the
    hour's start; the inputs are not changed."""
    groups: dict[RollupKey, list[Rollup]] = {}
    for rollup in rollups:
        groups.setdefault(hourly_key(rollup.key), []).append(rollup)
    return {key: _merged(key, members) for key, members in groups.items()}


def _merged(key: RollupKey, members: list[Rollup]) -> Rollup:
    first = members[0]
    thresholds = [t for t in first.thresholds if all(t in m.thresholds for m in members)]
    edges = {
        name: h.edges
        for name, h in first.features.items()
        if all(name in m.features and m.features[name].edges == h.edges for m in members)
    }
    alike = all(m.thresholds == first.thresholds and set(m.features) == set(edges) for m in members)
    out = Rollup(key, thresholds=thresholds, feature_edges=edges)
    for member in members:
        source = member if alike else _restricted(member, thresholds, edges)
        # `merge` adds rollups of one key; this one gathers a whole hour's minutes, so it
        # takes each minute's key for the merge, and the hour's once done.
        out.key = source.key
        out.merge(source)
    out.key = key
    return out


def _restricted(
    rollup: Rollup, thresholds: list[float], edges: dict[str, tuple[float, ...]]
) -> Rollup:
    """`rollup` with only the given thresholds and feature histograms."""
    data = rollup.to_dict()
    keep = [i for i, t in enumerate(rollup.thresholds) if t in thresholds]
    data["thresholds"] = [rollup.thresholds[i] for i in keep]
    data["under_threshold"] = [data["under_threshold"][i] for i in keep]
    data["valid_under_threshold"] = [data["valid_under_threshold"][i] for i in keep]
    data["features"] = {n: h for n, h in data["features"].items() if n in edges}
    return Rollup.from_dict(data)
