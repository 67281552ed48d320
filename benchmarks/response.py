"""How the fleet answers faults: the six drills of `modelfleet.sim.response`, then a quiet week.

    .venv/bin/python benchmarks/response.py [--quiet-warm 14] [--quiet-days 7] [--only NAME]

Each drill runs the retail-vision example for real (two gateways over HTTP, the whole control
loop, the example's alerting.yaml with its routes, on-call and runbooks) on a virtual clock,
injects one fault and reports what the fleet recorded: detected (an incident opened after the
fault), MTTD (fault to detection), resolved without a person (its serious incidents resolved by
a runbook or by recovery, and no page), MTTR (detection to the resolution of the serious
incidents) and the pages sent. The person paged acknowledges three minutes after the page.

Goals (issue #6): every scenario detected, median MTTD under 60 s; at least five of six
resolved without a person with MTTR under 2 minutes; at most one page per incident; and no
alert at all in a fault-free week (after `--quiet-warm` days of learning, with a daily cycle,
a quieter weekend and noise).
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from modelfleet.sim.quiet import quiet_days
from modelfleet.sim.response import SCENARIOS, Outcome, run_scenario

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "retail-vision"


def seconds(value: timedelta | None) -> str:
    return "-" if value is None else f"{value.total_seconds():.0f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet-warm", type=int, default=14, help="days learned before the week")
    parser.add_argument("--quiet-days", type=int, default=7, help="fault-free days judged")
    parser.add_argument("--only", help="run this scenario only (e.g. 'replica crash')")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    console = Console(width=None if sys.stdout.isatty() else 160)  # a wide table in a log
    console.print(f"machine: {platform.machine()}, {platform.python_version()}, 2 cores")
    outcomes: list[Outcome] = []
    for scenario in SCENARIOS:
        if args.only and scenario.name != args.only:
            continue
        started = time.perf_counter()
        with console.status(f"drill: {scenario.name} ({scenario.description})"):
            outcomes.append(run_scenario(EXAMPLE, scenario))
        console.print(f"  {scenario.name}: {time.perf_counter() - started:.0f} s of wall time")
    table = Table(title="Fault drills (virtual clock, real gateways and controllers)")
    for column in (
        "scenario",
        "detected",
        "MTTD",
        "resolved automatically",
        "MTTR",
        "pages",
        "incidents",
    ):
        table.add_column(column)
    for o in outcomes:
        table.add_row(
            o.scenario,
            "yes" if o.detected else "no",
            seconds(o.mttd),
            "yes" if o.resolved_automatically else "no",
            seconds(o.mttr),
            str(o.pages),
            ", ".join(
                f"{i.title.split()[0]} ({i.severity}, {i.resolved_by or 'open'})"
                for i in o.incidents
            ),
        )
    console.print(table)
    mttds = [o.mttd.total_seconds() for o in outcomes if o.mttd is not None]
    auto = [
        o
        for o in outcomes
        if o.resolved_automatically and o.mttr is not None and o.mttr < timedelta(minutes=2)
    ]
    goals = {
        "every scenario detected": all(o.detected for o in outcomes),
        f"median MTTD under 60 s ({statistics.median(mttds):.0f} s)": bool(mttds)
        and statistics.median(mttds) < 60,
        f"5 of 6 resolved without a person in under 2 min ({len(auto)})": len(auto)
        >= min(5, len(outcomes) - 1),
        "at most one page per incident": all(o.most_pages_per_incident <= 1 for o in outcomes),
    }
    if not args.only:
        with console.status(f"a fault-free week after {args.quiet_warm} days of learning"):
            started = time.perf_counter()
            quiet = quiet_days(EXAMPLE, warm=args.quiet_warm, days=args.quiet_days)
        console.print(
            f"fault-free: {quiet.days} days, {quiet.points:,} points judged: "
            f"{len(quiet.anomalies)} anomalies, {len(quiet.alerts)} alerts "
            f"({time.perf_counter() - started:.0f} s)"
        )
        for event in quiet.anomalies:
            console.print(f"  {event.at:%a %H:%M}: {event.message}")
        goals["no alert in the fault-free week"] = not quiet.alerts
    for goal, met in goals.items():
        console.print(f"{'met ' if met else 'MISSED'}  {goal}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
