"""A runbook's guards: how often it may act, and how soon again. Pure: the runs are passed in.

A runbook that fixes a symptom but not its cause would act forever (restart, recover, fail,
restart): the rate limit and the cool-down stop that loop and hand the alert to a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelfleet.config.alerting import Guards


@dataclass(frozen=True)
class PastRun:
    started_at: datetime
    finished_at: datetime | None


def refusal(guards: Guards, runs: Sequence[PastRun], now: datetime) -> str | None:
    """Why the runbook may not start a run at `now` (None: it may), given its past runs."""
    recent = [r for r in runs if now - r.started_at < timedelta(hours=1)]
    if len(recent) >= guards.max_runs_per_hour:
        return (
            f"ran {len(recent)} time(s) in the last hour, the most its guard allows "
            f"({guards.max_runs_per_hour})"
        )
    finished = [r.finished_at for r in runs if r.finished_at is not None]
    if finished and now - max(finished) < guards.cooldown:
        wait = guards.cooldown - (now - max(finished))
        return f"cooling down for {int(wait.total_seconds())}s more after its last run"
    return None
