"""On call: who carries the pager at a given time, and who is paged next when nobody answers.

A schedule's participants take turns of `rotation.length`. The turns hand off at local wall-clock
times in the schedule's time zone: the first at `rotation.start` + `rotation.handoff`, with
`participants[0]`, then one every `length` of wall-clock time, so a weekly rotation handing off
at 09:00 does so at 09:00 local on both sides of a daylight-saving change. The rotation is
extended backwards as if it had always run: before `start`, the turn that ends at the first
hand-off is the last participant's, the one before it the second last's, and so on.

Where a change of the clocks makes a hand-off time ambiguous (the clocks go back), the hand-off
is at its first occurrence; where it makes one skipped (the clocks go forward), the hand-off is
when the clocks jump past it, and a turn the jump swallows whole (possible only for turns shorter
than the jump) is skipped.

Overrides take precedence over the rotation; a naive override time is local to the schedule, an
aware one is taken as given, and of two overrides that overlap the one declared later wins.

Escalation levels are counted by a running number: `level % len(levels)` is the position in
the policy and `level // len(levels)` the round, so `repeat: 2` allows `3 * len(levels)` levels.

All times passed in and returned are timezone-aware; the ones returned are UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from modelfleet.config.alerting import (
    EscalationPolicySpec,
    OnCallScheduleSpec,
    Override,
    Person,
)
from modelfleet.errors import NotFound


@dataclass(frozen=True)
class Shift:
    """`person` is on call from `start` (included) to `end` (excluded); `override`: by an
    override rather than the rotation."""

    person: Person
    start: datetime
    end: datetime
    override: bool


def on_call(schedule: OnCallScheduleSpec, at: datetime) -> Person:
    """The person on call at `at`: the latest-declared override covering it, else the rotation's."""
    _require_aware(at, "at")
    return _who(schedule, at.astimezone(UTC))[0]


def handoffs(schedule: OnCallScheduleSpec, start: datetime, end: datetime) -> list[datetime]:
    """The rotation's hand-off instants from `start` (included) to `end` (excluded), in UTC."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    found: list[datetime] = []
    turn = _turn(schedule, start)
    instant = _handoff(schedule, turn)
    while instant < end:
        if instant >= start and (not found or found[-1] != instant):
            found.append(instant)
        turn += 1
        instant = _handoff(schedule, turn)
    return found


def shifts(schedule: OnCallScheduleSpec, start: datetime, end: datetime) -> list[Shift]:
    """Who is on call from `start` to `end`, as consecutive shifts, overrides merged in.

    The first shift starts at `start` and the last ends at `end` (shifts are cut to the period);
    neighbouring pieces with the same person and the same `override` are one shift.
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    zone = ZoneInfo(schedule.time_zone)
    cuts = {start, end, *handoffs(schedule, start, end)}
    for cover in schedule.overrides:
        cuts.update(t for t in _span(cover, zone) if start < t < end)
    bounds = sorted(cuts)
    found: list[Shift] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        person, override = _who(schedule, a)
        if found and found[-1].person == person and found[-1].override == override:
            found[-1] = Shift(person, found[-1].start, b, override)
        else:
            found.append(Shift(person, a, b, override))
    return found


def _who(schedule: OnCallScheduleSpec, at: datetime) -> tuple[Person, bool]:
    zone = ZoneInfo(schedule.time_zone)
    for override in reversed(schedule.overrides):
        begins, ends = _span(override, zone)
        if begins <= at < ends:
            return override.person, True
    participants = schedule.participants
    return participants[_turn(schedule, at) % len(participants)], False


def _turn(schedule: OnCallScheduleSpec, at: datetime) -> int:
    """The number of the turn `at` falls in: hand-off `k` begins turn `k` (0 at the start)."""
    rotation = schedule.rotation
    zone = ZoneInfo(schedule.time_zone)
    local = at.astimezone(zone).replace(tzinfo=None)
    turn = (local - _first_local(schedule)) // rotation.length
    # The wall-clock estimate is off by at most a turn or two around a change of the clocks.
    while _handoff(schedule, turn) > at:
        turn -= 1
    while _handoff(schedule, turn + 1) <= at:
        turn += 1
    return turn


def _first_local(schedule: OnCallScheduleSpec) -> datetime:
    rotation = schedule.rotation
    return datetime.combine(rotation.start, rotation.handoff.replace(tzinfo=None))


def _handoff(schedule: OnCallScheduleSpec, turn: int) -> datetime:
    local = _first_local(schedule) + turn * schedule.rotation.length
    return _to_utc(local, ZoneInfo(schedule.time_zone))


def _span(override: Override, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return _instant(override.start, zone), _instant(override.end, zone)


def _instant(value: datetime, zone: ZoneInfo) -> datetime:
    return _to_utc(value, zone) if value.tzinfo is None else value.astimezone(UTC)


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time names in `zone`: an ambiguous one's first occurrence, and
    for one the clocks skip, the instant they jump past it."""
    utc = local.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first occurrence
    if utc.astimezone(zone).replace(tzinfo=None) == local:
        return utc
    # Skipped: fold=1 reads it with the offset after the jump (an instant before the jump),
    # fold=0 with the one before (an instant after). The jump lies between; find it.
    before = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = utc
    offset_after = after.astimezone(zone).utcoffset()
    while after - before > timedelta(microseconds=1):
        middle = before + (after - before) / 2
        if middle.astimezone(zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return after


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


# -- escalation ----------------------------------------------------------------------------


def people_at(
    policy: EscalationPolicySpec,
    level: int,
    at: datetime,
    schedules: Mapping[str, OnCallScheduleSpec],
) -> list[Person]:
    """Who level `level` pages at `at`: its schedule's on-call person, then its named people.

    Raises NotFound when the level names a schedule that `schedules` lacks.
    """
    step = policy.levels[_position(policy, level)]
    people: list[Person] = []
    if step.schedule is not None:
        schedule = schedules.get(step.schedule)
        if schedule is None:
            raise NotFound("on-call schedule", step.schedule)
        people.append(on_call(schedule, at))
    people.extend(p for p in step.people if p not in people)
    return people


def next_escalation(
    policy: EscalationPolicySpec, *, level: int, paged_at: datetime, now: datetime
) -> int | None:
    """The level to page at `now` when level `level`, paged at `paged_at`, has not answered.

    `level + 1` once that level's `escalate_after` has passed (`now >= paged_at +
    escalate_after`), None before then and once every round is spent. One step at a time: a
    caller that pages the next level records when, and asks again from there.
    """
    _require_aware(paged_at, "paged_at")
    _require_aware(now, "now")
    step = policy.levels[_position(policy, level)]
    if now < paged_at + step.escalate_after:
        return None
    following = level + 1
    return following if following < len(policy.levels) * (policy.repeat + 1) else None


def _position(policy: EscalationPolicySpec, level: int) -> int:
    if level < 0:
        raise ValueError(f"an escalation level counts from 0, got {level}")
    return level % len(policy.levels)
