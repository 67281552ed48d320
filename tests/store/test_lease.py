"""Leases on SQLite and PostgreSQL: one holder at a time, terms that count up, handover."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfleet.store import Store
from modelfleet.store.lease import LeaseState, acquire, current, new_holder, release, renew

TTL = timedelta(seconds=10)
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _acquire(
    store: Store, holder: str, now: datetime, name: str = "control-loop"
) -> LeaseState | None:
    with store.begin(immediate=True) as conn:
        return acquire(conn, name, holder, now, TTL)


def _renew(
    store: Store, holder: str, term: int, now: datetime, name: str = "control-loop"
) -> LeaseState | None:
    with store.begin(immediate=True) as conn:
        return renew(conn, name, holder, term, now, TTL)


def _release(store: Store, holder: str, now: datetime, name: str = "control-loop") -> bool:
    with store.begin(immediate=True) as conn:
        return release(conn, name, holder, now)


def _current(store: Store, name: str = "control-loop") -> LeaseState | None:
    with store.begin() as conn:
        return current(conn, name)


def test_only_one_of_two_holders_gets_a_free_lease(store: Store) -> None:
    assert _current(store) is None
    first = _acquire(store, "a", T0)
    assert first is not None and (first.holder, first.term) == ("a", 1)
    assert first.acquired_at == first.renewed_at == T0 and first.expires_at == T0 + TTL
    assert _acquire(store, "b", T0 + timedelta(seconds=1)) is None
    assert _current(store) == first


def test_renewing_extends_the_lease_in_the_same_term(store: Store) -> None:
    _acquire(store, "a", T0)
    again = _acquire(store, "a", T0 + timedelta(seconds=6))
    assert again is not None and again.term == 1
    assert again.acquired_at == T0 and again.expires_at == T0 + timedelta(seconds=16)
    renewed = _renew(store, "a", 1, T0 + timedelta(seconds=12))  # past the first expiry
    assert renewed is not None and renewed.expires_at == T0 + timedelta(seconds=22)
    assert _acquire(store, "b", T0 + timedelta(seconds=15)) is None


def test_an_expired_lease_goes_to_another_holder_in_the_next_term(store: Store) -> None:
    _acquire(store, "a", T0)
    assert _acquire(store, "b", T0 + TTL - timedelta(microseconds=1)) is None
    taken = _acquire(store, "b", T0 + TTL)  # expiry is exclusive: at expires_at it is free
    assert taken is not None and (taken.holder, taken.term, taken.acquired_at) == ("b", 2, T0 + TTL)
    # The old holder can neither renew its term nor take the lease back while b holds it.
    assert _renew(store, "a", 1, T0 + TTL) is None
    assert _acquire(store, "a", T0 + TTL + timedelta(seconds=1)) is None
    assert _current(store) == taken


def test_a_lapsed_lease_cannot_be_renewed_even_when_nobody_took_it(store: Store) -> None:
    _acquire(store, "a", T0)
    assert _renew(store, "a", 1, T0 + TTL) is None
    back = _acquire(store, "a", T0 + TTL)
    assert back is not None and back.term == 2  # a new term: it was not held in between


def test_release_hands_the_lease_over_at_once(store: Store) -> None:
    _acquire(store, "a", T0)
    assert not _release(store, "b", T0 + timedelta(seconds=1))  # not b's to release
    assert _release(store, "a", T0 + timedelta(seconds=1))
    assert not _release(store, "a", T0 + timedelta(seconds=1))
    assert _renew(store, "a", 1, T0 + timedelta(seconds=1)) is None
    taken = _acquire(store, "b", T0 + timedelta(seconds=1))
    assert taken is not None and (taken.holder, taken.term) == ("b", 2)


def test_leases_of_different_names_are_independent(store: Store) -> None:
    assert _acquire(store, "a", T0, name="control-loop") is not None
    other = _acquire(store, "b", T0, name="other")
    assert other is not None and other.term == 1


def test_a_lease_needs_a_positive_time_to_live(store: Store) -> None:
    with store.begin() as conn, pytest.raises(ValueError, match="positive"):
        acquire(conn, "control-loop", "a", T0, timedelta(0))


def test_holder_ids_differ_between_holders_of_one_process() -> None:
    a, b = new_holder(), new_holder()
    assert a != b and a.split(":")[:2] == b.split(":")[:2]


def test_holders_racing_on_real_connections_never_both_win(store: Store) -> None:
    """Threads race for the lease at the same instant, first for the row's insert and then,
    round after round, for the lapsed row's update: exactly one wins each time."""
    holders, rounds = 4, 12
    barrier = threading.Barrier(holders)
    won: list[list[int]] = [[] for _ in range(rounds)]

    def race(h: int) -> None:
        for r in range(rounds):
            barrier.wait()
            if _acquire(store, f"h{h}", T0 + r * 2 * TTL) is not None:
                won[r].append(h)

    threads = [threading.Thread(target=race, args=(h,)) for h in range(holders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [len(w) for w in won] == [1] * rounds
    final = _current(store)
    assert final is not None and final.term == rounds and final.holder == f"h{won[-1][0]}"


# One step of the property test: (operation, holder, seconds the clock moves first).
Step = tuple[str, int, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "renew", "release"]),
        st.integers(0, 2),
        st.sampled_from([0, 0, 1, 3, 9, 10, 11]),
    ),
    max_size=30,
)
names = itertools.count()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_at_any_instant_at_most_one_holder_believes_it_leads(
    store: Store, plan: list[Step]
) -> None:
    """Holders act on what the store told them: after a successful acquire or renew each
    believes it leads until the expiry it was given; a failure or release ends the belief."""
    name = f"lease-{next(names)}"  # one lease per example, on the one store of the test
    now = T0
    beliefs: dict[int, tuple[int, datetime]] = {}  # holder -> (term, believed expiry)
    last_term = 0
    for operation, h, wait in plan:
        now += timedelta(seconds=wait)
        holder = f"h{h}"
        if operation == "release":
            _release(store, holder, now, name)
            beliefs.pop(h, None)
            continue
        if operation == "renew" and h in beliefs:
            state = _renew(store, holder, beliefs[h][0], now, name)
        else:
            state = _acquire(store, holder, now, name)
        if state is None:
            beliefs.pop(h, None)
        else:
            assert state.holder == holder and state.expires_at == now + TTL
            assert state.term >= last_term  # the fencing token never goes back
            if h not in beliefs or beliefs[h][0] != state.term:
                assert state.term > last_term  # a new term: after every earlier one
            last_term = state.term
            beliefs[h] = (state.term, state.expires_at)
        leading = [b for b, (_, until) in beliefs.items() if now < until]
        assert len(leading) <= 1, (now, beliefs)
        stored = _current(store, name)
        for b in leading:
            assert stored is not None and stored.holder == f"h{b}"
            assert stored.term == beliefs[b][0]
