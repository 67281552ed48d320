"""What a run found: one row per measurement, then the summary and the issue's goals as ratios.

The summary takes, per server and concurrency, the median over repeats of each figure (with
two repeats, their mean). The goals compare servers measured in the same run only.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

COMPETITORS = ("bentoml", "mlserver", "rayserve")
FLOOR = "fastapi"
MODELFLEET, NO_TELEMETRY = "modelfleet", "modelfleet-notelemetry"


@dataclass(frozen=True)
class Measurement:
    """One measured wrk run against one server."""

    target: str
    repeat: int
    concurrency: int
    duration_s: float
    ok: int  # 2xx/3xx responses
    rps: float  # ok / duration
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]  # connect, read, write, timeout, status (non-2xx/3xx answers)
    statuses: dict[str, int]
    server_cores: float  # CPU seconds of the server's process tree / wall seconds
    busiest: list[tuple[str, float]]  # the tree's busiest processes, (name, cores)
    wrk_cores: float
    other_cores: float  # the rest of the machine's busy time: other work sharing the cores

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class Summary:
    """The medians over repeats of one server at one concurrency."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # total over repeats
    server_cores: float
    runs: int
    rps_each: list[float] = field(default_factory=list)


HEADER = (
    f"{'server':<24}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    f"{'server CPU':>12}{'wrk CPU':>9}{'other':>7}"
)


def row(m: Measurement) -> str:
    """One table line; CPU in cores (CPU seconds per wall second)."""
    return (
        f"{m.target:<24}{m.concurrency:>5}{m.rps:>10.0f}{m.p50_ms:>9.2f}{m.p99_ms:>9.2f}"
        f"{m.error_count:>8}{m.server_cores:>12.2f}{m.wrk_cores:>9.2f}{m.other_cores:>7.2f}"
    )


def summarize(measurements: Sequence[Measurement]) -> dict[tuple[str, int], Summary]:
    """Medians over repeats, per (server, concurrency)."""
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.target, m.concurrency), []).append(m)
    return {
        key: Summary(
            rps=statistics.median(m.rps for m in ms),
            p50_ms=statistics.median(m.p50_ms for m in ms),
            p99_ms=statistics.median(m.p99_ms for m in ms),
            errors=sum(m.error_count for m in ms),
            server_cores=statistics.median(m.server_cores for m in ms),
            runs=len(ms),
            rps_each=[round(m.rps, 1) for m in ms],
        )
        for key, ms in groups.items()
    }


def summary_table(summaries: dict[tuple[str, int], Summary], order: Sequence[str]) -> str:
    lines = [
        f"{'server':<24}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'server CPU':>12}  req/s per repeat"
    ]
    for name in order:
        for (target, c), s in sorted(summaries.items(), key=lambda kv: kv[0][1]):
            if target == name:
                lines.append(
                    f"{target:<24}{c:>5}{s.rps:>10.0f}{s.p50_ms:>9.2f}{s.p99_ms:>9.2f}"
                    f"{s.errors:>8}{s.server_cores:>12.2f}  {s.rps_each}"
                )
    return "\n".join(lines)


@dataclass(frozen=True)
class Goal:
    """One of the issue's goals, evaluated on this run's figures."""

    text: str
    value: float | None  # the measured ratio, None when a side is missing
    passed: bool | None
    detail: str


def _verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a "}[passed]


def goals(
    summaries: dict[tuple[str, int], Summary], high: int, low: int
) -> tuple[list[Goal], list[str]]:
    """The issue's four goals, and what modelfleet must reach when it was not measured."""

    def get(name: str, c: int) -> Summary | None:
        return summaries.get((name, c))

    rivals_high = [(n, s) for n in COMPETITORS if (s := get(n, high)) is not None]
    rivals_low = [(n, s) for n in COMPETITORS if (s := get(n, low)) is not None]
    best_high = max(rivals_high, key=lambda ns: ns[1].rps, default=None)
    best_low = min(rivals_low, key=lambda ns: ns[1].p99_ms, default=None)
    floor = get(FLOOR, high)
    mf_high, mf_low, off_high = get(MODELFLEET, high), get(MODELFLEET, low), get(NO_TELEMETRY, high)

    found: list[Goal] = []
    if mf_high and best_high:
        ratio = mf_high.rps / best_high[1].rps
        detail = f"{mf_high.rps:.0f} vs {best_high[0]} {best_high[1].rps:.0f} req/s"
        found.append(
            Goal(f"req/s at c{high} >= 3x the fastest of the three", ratio, ratio >= 3, detail)
        )
    else:
        found.append(
            Goal(
                f"req/s at c{high} >= 3x the fastest of the three", None, None, "a side is missing"
            )
        )
    if mf_high and floor:
        ratio = mf_high.rps / floor.rps
        detail = f"{mf_high.rps:.0f} vs {floor.rps:.0f} req/s"
        found.append(
            Goal(f"req/s at c{high} >= bare FastAPI, same workers", ratio, ratio >= 1, detail)
        )
    else:
        found.append(
            Goal(f"req/s at c{high} >= bare FastAPI, same workers", None, None, "a side is missing")
        )
    if mf_low and best_low:
        ratio = mf_low.p99_ms / best_low[1].p99_ms
        detail = f"{mf_low.p99_ms:.2f} vs {best_low[0]} {best_low[1].p99_ms:.2f} ms"
        found.append(Goal(f"p99 at c{low} <= the best of the three", ratio, ratio <= 1, detail))
    else:
        found.append(
            Goal(f"p99 at c{low} <= the best of the three", None, None, "a side is missing")
        )
    if mf_high and off_high:
        cost = 1 - mf_high.rps / off_high.rps
        detail = f"{mf_high.rps:.0f} on vs {off_high.rps:.0f} off req/s"
        found.append(
            Goal(f"telemetry costs <= 10% of req/s at c{high}", cost, cost <= 0.10, detail)
        )
    else:
        found.append(
            Goal(f"telemetry costs <= 10% of req/s at c{high}", None, None, "a side is missing")
        )

    bars: list[str] = []
    if best_high:
        bars.append(f"req/s at c{high} >= {3 * best_high[1].rps:.0f} (3 x {best_high[0]})")
    if floor:
        bars.append(f"req/s at c{high} >= {floor.rps:.0f} (bare FastAPI)")
    if best_low:
        bars.append(f"p99 at c{low} <= {best_low[1].p99_ms:.2f} ms ({best_low[0]})")
    return found, bars


def goals_text(found: list[Goal], bars: list[str], modelfleet_measured: bool) -> str:
    lines = ["Goals (modelfleet, ratios from this run):"]
    for g in found:
        value = "" if g.value is None else f"{g.value:.2f}"
        lines.append(f"  {_verdict(g.passed)}  {g.text:<48}{value:>6}  ({g.detail})")
    if not modelfleet_measured and bars:
        lines.append("  modelfleet was not measured; from this run it needs:")
        lines += [f"    {b}" for b in bars]
    return "\n".join(lines)


def interference_note(measurements: Sequence[Measurement], threshold: float = 0.25) -> str | None:
    """A warning when other work took a noticeable share of the cores during the runs."""
    if not measurements:
        return None
    other = statistics.median(m.other_cores for m in measurements)
    worst = max(measurements, key=lambda m: m.other_cores)
    if other < threshold:
        return None
    return (
        f"warning: other processes used {other:.2f} cores (median; up to {worst.other_cores:.2f} "
        f"during {worst.target} c{worst.concurrency} repeat {worst.repeat}) while servers were "
        "measured: the figures are noisy; compare within a run, rerun on a quiet machine"
    )


def imbalance_notes(measurements: Sequence[Measurement], share: float = 0.9) -> list[str]:
    """Runs where one process did nearly all of a server's work.

    With wrk's keep-alive connections all opened at once, a server whose workers share one
    listening socket can see every connection accepted by the same worker; the others idle.
    """
    notes = []
    for m in measurements:
        if m.busiest and m.server_cores > 0.5 and m.busiest[0][1] >= share * m.server_cores:
            notes.append(
                f"  {m.target} c{m.concurrency} repeat {m.repeat}: one process used "
                f"{m.busiest[0][1]:.2f} of its {m.server_cores:.2f} cores"
            )
    return notes
