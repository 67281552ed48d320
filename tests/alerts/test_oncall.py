"""On call: rotations handing off at local time across DST changes, overrides, shifts, escalation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.alerts.oncall import (
    Shift,
    handoffs,
    next_escalation,
    on_call,
    people_at,
    shifts,
)
from modelfleet.config.alerting import (
    EscalationLevel,
    EscalationPolicySpec,
    OnCallScheduleSpec,
    Override,
    Person,
    Rotation,
)
from modelfleet.errors import NotFound

ANA, BEN, CEM, DEE, EVE = (
    Person(name=n, email=f"{n.lower()}@example.com") for n in ("Ana", "Ben", "Cem", "Dee", "Eve")
)
US = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def schedule(
    *,
    length: timedelta = timedelta(days=7),
    start: date = date(2026, 10, 12),
    handoff: time = time(9, 0),
    time_zone: str = "Europe/Berlin",
    overrides: list[Override] | None = None,
) -> OnCallScheduleSpec:
    return OnCallScheduleSpec(
        time_zone=time_zone,
        participants=[ANA, BEN, CEM],
        rotation=Rotation(length=length, start=start, handoff=handoff),
        overrides=overrides or [],
    )


WEEKLY = schedule()  # Mondays 09:00 in Berlin; the clocks go back on Sunday 2026-10-25


def test_a_weekly_rotation_hands_off_at_nine_local_on_both_sides_of_the_dst_change() -> None:
    # 09:00 CEST is 07:00 UTC; after the change, 09:00 CET is 08:00 UTC.
    assert on_call(WEEKLY, utc(2026, 10, 12, 7, 0)) == ANA
    assert on_call(WEEKLY, utc(2026, 10, 19, 6, 59)) == ANA
    assert on_call(WEEKLY, utc(2026, 10, 19, 7, 0)) == BEN
    assert on_call(WEEKLY, utc(2026, 10, 26, 7, 59)) == BEN  # 08:59 local: still Ben
    assert on_call(WEEKLY, utc(2026, 10, 26, 8, 0)) == CEM
    assert on_call(WEEKLY, utc(2026, 11, 2, 8, 0)) == ANA
    assert handoffs(WEEKLY, utc(2026, 10, 12), utc(2026, 11, 3)) == [
        utc(2026, 10, 12, 7, 0),
        utc(2026, 10, 19, 7, 0),
        utc(2026, 10, 26, 8, 0),
        utc(2026, 11, 2, 8, 0),
    ]


def test_a_weekly_rotation_hands_off_at_nine_local_when_the_clocks_go_forward() -> None:
    spring = schedule(start=date(2026, 3, 23))  # the clocks go forward on 2026-03-29
    assert handoffs(spring, utc(2026, 3, 23), utc(2026, 4, 1)) == [
        utc(2026, 3, 23, 8, 0),
        utc(2026, 3, 30, 7, 0),
    ]


def test_a_daily_rotation_takes_turns_every_day_at_the_handoff_time() -> None:
    daily = schedule(length=timedelta(days=1), start=date(2026, 10, 24))
    assert [on_call(daily, utc(2026, 10, d, 12, 0)) for d in range(24, 30)] == [
        ANA, BEN, CEM, ANA, BEN, CEM,
    ]  # fmt: skip
    assert on_call(daily, utc(2026, 10, 25, 7, 59)) == ANA  # 08:59 CET
    assert on_call(daily, utc(2026, 10, 25, 8, 0)) == BEN


def test_before_its_start_the_rotation_runs_backwards_from_the_last_participant() -> None:
    assert on_call(WEEKLY, utc(2026, 10, 12, 6, 59)) == CEM
    assert on_call(WEEKLY, utc(2026, 10, 5, 6, 59)) == BEN
    assert on_call(WEEKLY, utc(2026, 10, 5, 7, 0)) == CEM


def test_a_handoff_the_clocks_skip_happens_when_they_jump() -> None:
    # 02:30 on 2026-03-29 does not exist in Berlin: the clocks go from 02:00 CET to 03:00 CEST.
    nightly = schedule(length=timedelta(days=1), start=date(2026, 3, 27), handoff=time(2, 30))
    assert handoffs(nightly, utc(2026, 3, 27), utc(2026, 3, 31)) == [
        utc(2026, 3, 27, 1, 30),
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, the moment 02:30 is skipped
        utc(2026, 3, 30, 0, 30),
    ]
    # Hourly turns: the 02:00 turn is swallowed by the jump, and nobody takes it.
    hourly = schedule(length=timedelta(hours=1), start=date(2026, 3, 29), handoff=time(0, 0))
    assert handoffs(hourly, utc(2026, 3, 28, 23), utc(2026, 3, 29, 3)) == [
        utc(2026, 3, 28, 23),  # 00:00 CET, turn 0
        utc(2026, 3, 29, 0),  # 01:00 CET, turn 1
        utc(2026, 3, 29, 1),  # 03:00 CEST: turns 2 and 3 begin at once; turn 3 holds
        utc(2026, 3, 29, 2),
    ]
    assert on_call(hourly, utc(2026, 3, 29, 1, 30)) == ANA  # turn 3, not CEM's turn 2


def test_an_ambiguous_handoff_happens_at_its_first_occurrence() -> None:
    nightly = schedule(length=timedelta(days=1), start=date(2026, 10, 24), handoff=time(2, 30))
    assert handoffs(nightly, utc(2026, 10, 24), utc(2026, 10, 26, 12)) == [
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, not 02:30 CET an hour later
        utc(2026, 10, 26, 1, 30),
    ]


def overridden() -> OnCallScheduleSpec:
    return schedule(
        overrides=[
            # Naive: Berlin time (CEST, UTC+2), so 16:00 to 06:00 UTC.
            Override(person=DEE, start=datetime(2026, 10, 20, 18), end=datetime(2026, 10, 21, 8)),
            # Aware, declared later: wins where both cover.
            Override(person=EVE, start=utc(2026, 10, 20, 20), end=utc(2026, 10, 20, 22)),
        ]
    )


def test_an_override_wins_over_the_rotation_naive_times_being_local() -> None:
    s = overridden()
    assert on_call(s, utc(2026, 10, 20, 15, 59)) == BEN
    assert on_call(s, utc(2026, 10, 20, 16, 0)) == DEE
    assert on_call(s, utc(2026, 10, 21, 5, 59)) == DEE
    assert on_call(s, utc(2026, 10, 21, 6, 0)) == BEN


def test_of_two_overlapping_overrides_the_one_declared_later_wins() -> None:
    s = overridden()
    assert on_call(s, utc(2026, 10, 20, 19, 59)) == DEE
    assert on_call(s, utc(2026, 10, 20, 20, 0)) == EVE
    assert on_call(s, utc(2026, 10, 20, 21, 59)) == EVE
    assert on_call(s, utc(2026, 10, 20, 22, 0)) == DEE
    swapped = schedule(overrides=list(reversed(s.overrides)))
    assert on_call(swapped, utc(2026, 10, 20, 21, 0)) == DEE


def test_shifts_list_who_is_on_call_over_a_period_with_overrides_merged_in() -> None:
    assert shifts(overridden(), utc(2026, 10, 18), utc(2026, 10, 27)) == [
        Shift(ANA, utc(2026, 10, 18), utc(2026, 10, 19, 7), override=False),
        Shift(BEN, utc(2026, 10, 19, 7), utc(2026, 10, 20, 16), override=False),
        Shift(DEE, utc(2026, 10, 20, 16), utc(2026, 10, 20, 20), override=True),
        Shift(EVE, utc(2026, 10, 20, 20), utc(2026, 10, 20, 22), override=True),
        Shift(DEE, utc(2026, 10, 20, 22), utc(2026, 10, 21, 6), override=True),
        Shift(BEN, utc(2026, 10, 21, 6), utc(2026, 10, 26, 8), override=False),
        Shift(CEM, utc(2026, 10, 26, 8), utc(2026, 10, 27), override=False),
    ]
    assert shifts(WEEKLY, utc(2026, 10, 27), utc(2026, 10, 27)) == []


def test_an_override_by_the_rotations_own_person_is_still_an_override_shift() -> None:
    s = schedule(overrides=[Override(person=ANA, start=utc(2026, 10, 19), end=utc(2026, 10, 20))])
    assert shifts(s, utc(2026, 10, 18), utc(2026, 10, 20)) == [
        Shift(ANA, utc(2026, 10, 18), utc(2026, 10, 19), override=False),
        Shift(ANA, utc(2026, 10, 19), utc(2026, 10, 20), override=True),
    ]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call(WEEKLY, datetime(2026, 10, 20, 9))


# -- escalation ----------------------------------------------------------------------------

POLICY = EscalationPolicySpec(
    levels=[
        EscalationLevel(schedule="primary", escalate_after=timedelta(minutes=15)),
        EscalationLevel(people=[DEE, EVE], escalate_after=timedelta(minutes=30)),
    ],
    repeat=1,
)
SCHEDULES = {"primary": WEEKLY}
T = utc(2026, 10, 20, 3, 0)


def test_each_level_pages_its_schedules_on_call_person_or_its_people() -> None:
    assert people_at(POLICY, 0, T, SCHEDULES) == [BEN]
    assert people_at(POLICY, 1, T, SCHEDULES) == [DEE, EVE]
    assert people_at(POLICY, 2, utc(2026, 10, 26, 9), SCHEDULES) == [CEM]  # round 2, level 0
    both = EscalationPolicySpec(levels=[EscalationLevel(schedule="primary", people=[BEN, EVE])])
    assert people_at(both, 0, T, SCHEDULES) == [BEN, EVE]


def test_a_level_naming_an_unknown_schedule_says_which() -> None:
    with pytest.raises(NotFound, match="on-call schedule 'primary' not found"):
        people_at(POLICY, 0, T, {})


def test_the_next_level_is_due_once_escalate_after_has_passed_and_not_before() -> None:
    assert next_escalation(POLICY, level=0, paged_at=T, now=T) is None
    assert next_escalation(POLICY, level=0, paged_at=T, now=T + timedelta(minutes=15) - US) is None
    assert next_escalation(POLICY, level=0, paged_at=T, now=T + timedelta(minutes=15)) == 1
    assert next_escalation(POLICY, level=0, paged_at=T, now=T + timedelta(hours=5)) == 1
    assert next_escalation(POLICY, level=1, paged_at=T, now=T + timedelta(minutes=15)) is None
    assert next_escalation(POLICY, level=1, paged_at=T, now=T + timedelta(minutes=30)) == 2


def test_escalation_repeats_its_levels_then_stops() -> None:
    assert next_escalation(POLICY, level=2, paged_at=T, now=T + timedelta(minutes=15)) == 3
    assert next_escalation(POLICY, level=3, paged_at=T, now=T + timedelta(days=1)) is None
    once = EscalationPolicySpec(levels=POLICY.levels)  # repeat: 0
    assert next_escalation(once, level=1, paged_at=T, now=T + timedelta(days=1)) is None
    single = EscalationPolicySpec(levels=POLICY.levels[:1], repeat=2)
    due = T + timedelta(minutes=15)
    assert [next_escalation(single, level=n, paged_at=T, now=due) for n in range(3)] == [1, 2, None]


def test_a_negative_level_is_refused() -> None:
    with pytest.raises(ValueError, match="counts from 0"):
        next_escalation(POLICY, level=-1, paged_at=T, now=T)


# -- properties ----------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
local_times = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31))


@st.composite
def schedules(draw: st.DrawFn, *, with_overrides: bool = True) -> OnCallScheduleSpec:
    hours = draw(st.sampled_from([1, 2, 12, 24, 36, 168]) | st.integers(1, 24 * 30))
    overrides: list[Override] = []
    for _ in range(draw(st.integers(0, 3)) if with_overrides else 0):
        begins = draw(local_times | instants)
        span = draw(st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=20)))
        who = draw(st.sampled_from([DEE, EVE, ANA]))
        overrides.append(Override(person=who, start=begins, end=begins + span))
    return OnCallScheduleSpec(
        time_zone=draw(st.sampled_from(ZONES)),
        participants=draw(st.lists(st.sampled_from([ANA, BEN, CEM]), min_size=1, max_size=4)),
        rotation=Rotation(
            length=timedelta(hours=hours),
            start=draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))),
            handoff=draw(st.times()),
        ),
        overrides=overrides,
    )


@given(schedules(), instants)
def test_the_person_on_call_is_a_participant_or_an_overrides_person(
    s: OnCallScheduleSpec, at: datetime
) -> None:
    assert on_call(s, at) in [*s.participants, *(o.person for o in s.overrides)]


@given(schedules(with_overrides=False), instants)
def test_the_person_on_call_is_constant_between_consecutive_handoffs(
    s: OnCallScheduleSpec, at: datetime
) -> None:
    margin = s.rotation.length + timedelta(days=1)
    around = handoffs(s, at - margin, at + margin)
    assert around == sorted(set(around))
    before = max(h for h in around if h <= at)
    after = min(h for h in around if h > at)
    assert on_call(s, before) == on_call(s, at) == on_call(s, after - US)


@given(schedules(), instants, st.timedeltas(min_value=US, max_value=timedelta(days=40)))
def test_shifts_cover_the_period_back_to_back_with_whoever_is_on_call(
    s: OnCallScheduleSpec, start: datetime, span: timedelta
) -> None:
    listed = shifts(s, start, start + span)
    assert listed[0].start == start and listed[-1].end == start + span
    for shift, following in zip(listed, listed[1:], strict=False):
        assert shift.end == following.start
        assert (shift.person, shift.override) != (following.person, following.override)
    for shift in listed:
        assert shift.start < shift.end
        assert on_call(s, shift.start) == on_call(s, shift.end - US) == shift.person
