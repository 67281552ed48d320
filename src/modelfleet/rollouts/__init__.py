"""Safe rollouts: quality gates, blue-green, canary and shadow, judged by statistics on real traffic."""

from modelfleet.rollouts.commands import (
    abort,
    active_rollout,
    pause,
    promote_now,
    resume,
    rollback,
    start_rollout,
)
from modelfleet.rollouts.controller import RolloutController, current_judgement
from modelfleet.rollouts.records import (
    Rollout,
    RolloutEvent,
    events_of,
    latest_rollout,
    list_rollouts,
)

__all__ = [
    "Rollout",
    "RolloutController",
    "RolloutEvent",
    "abort",
    "active_rollout",
    "current_judgement",
    "events_of",
    "latest_rollout",
    "list_rollouts",
    "pause",
    "promote_now",
    "resume",
    "rollback",
    "start_rollout",
]
