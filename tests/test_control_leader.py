"""Several control loops on one store: only the lease's holder acts, and a dead leader's lease
passes to another within its time to live, with controllers built afresh."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from modelfleet.cli import main
from modelfleet.clock import Clock, SystemClock, VirtualClock
from modelfleet.control import CONTROL_LOOP_LEASE, Controller, ControlLoop, Leadership
from modelfleet.errors import InvalidInput
from modelfleet.registry.events import Event
from modelfleet.store import Store
from modelfleet.store.lease import LeaseState, current

INTERVAL = timedelta(seconds=5)
TTL = timedelta(seconds=15)

# Every test here runs on the real PostgreSQL server, as several hosts would share it.
pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


class Counting:
    """A controller that remembers the instants it ticked at; `act` runs inside its tick."""

    def __init__(self, act: Callable[[], None] | None = None) -> None:
        self.ticks: list[datetime] = []
        self.act = act

    def tick(self, now: datetime) -> list[Event]:
        self.ticks.append(now)
        if self.act is not None:
            self.act()
        return []


class Process:
    """One `modelfleet up`'s control loop, with the controllers each of its terms built."""

    def __init__(
        self, store: Store, clock: Clock, holder: str, act: Callable[[], None] | None = None
    ) -> None:
        self.terms: list[list[Counting]] = []
        self.act = act
        self.loop = ControlLoop(
            self._build,
            clock,
            interval_s=INTERVAL.total_seconds(),
            lease=Leadership(store, holder=holder, ttl=TTL),
        )

    def _build(self) -> list[Controller]:
        built = [Counting(self.act), Counting()]
        self.terms.append(built)
        return list(built)

    def ticks(self) -> int:
        """How many times this process's controllers ticked, all terms together."""
        return sum(len(c.ticks) for term in self.terms for c in term)


def _lease(store: Store) -> LeaseState | None:
    with store.begin() as conn:
        return current(conn, CONTROL_LOOP_LEASE)


def test_only_the_leaders_controllers_tick(store: Store, clock: VirtualClock) -> None:
    a, b = Process(store, clock, "host-a:1:aa"), Process(store, clock, "host-b:2:bb")
    for _ in range(3):
        a.loop.tick()
        b.loop.tick()
        clock.advance(INTERVAL)
    assert (a.loop.term, b.loop.term) == (1, None)
    assert len(a.terms) == 1 and [len(c.ticks) for c in a.terms[0]] == [3, 3]
    assert b.terms == [] and b.loop.controllers == []


def test_when_the_leader_dies_another_takes_over_within_the_ttl_with_fresh_controllers(
    store: Store, clock: VirtualClock
) -> None:
    a, b = Process(store, clock, "host-a:1:aa"), Process(store, clock, "host-b:2:bb")
    a.loop.tick()
    b.loop.tick()
    last_renewal = clock.now()
    # a dies: it never ticks (so never renews) again. b keeps trying, once an interval.
    while b.loop.term is None:
        clock.advance(INTERVAL)
        b.loop.tick()
        assert clock.now() - last_renewal <= TTL + INTERVAL
    took_over = clock.now()
    assert took_over >= last_renewal + TTL  # not before a's lease lapsed
    assert b.loop.term == 2 and len(b.terms) == 1
    assert [c.ticks for c in b.terms[0]] == [[took_over], [took_over]]

    # a was only paused (a long GC, a partition): back, it finds itself no leader and acts not.
    clock.advance(INTERVAL)
    a.loop.tick()
    assert a.loop.term is None and a.loop.controllers == [] and a.ticks() == 2

    # b stops cleanly: it releases the lease, and a leads at once, on controllers built anew.
    b.loop.stop()
    a.loop.tick()
    assert a.loop.term == 3 and len(a.terms) == 2
    assert [c.ticks for c in a.terms[1]] == [[clock.now()], [clock.now()]]
    assert [len(c.ticks) for c in a.terms[0]] == [1, 1]  # the old term's stayed behind


def test_a_tick_stops_at_once_when_another_took_the_lease_meanwhile(
    store: Store, clock: VirtualClock
) -> None:
    b = Process(store, clock, "host-b:2:bb")

    def slow_fit() -> None:  # a forecast fit that outlasts the lease, while b takes it over
        clock.advance(TTL)
        b.loop.tick()

    a = Process(store, clock, "host-a:1:aa", act=slow_fit)
    a.loop.tick()
    first, second = a.terms[0]
    assert len(first.ticks) == 1 and second.ticks == []  # a stopped before its second controller
    assert (a.loop.term, b.loop.term) == (None, 2)
    assert b.ticks() == 2


def test_a_tick_stops_when_its_lease_lapsed_even_if_nobody_took_it(
    store: Store, clock: VirtualClock
) -> None:
    a = Process(store, clock, "host-a:1:aa", act=lambda: clock.advance(TTL))
    a.loop.tick()
    assert [len(c.ticks) for c in a.terms[0]] == [1, 0] and a.loop.term is None
    a.act = None
    a.loop.tick()  # leads again, in a new term, on fresh controllers
    assert a.loop.term == 2 and len(a.terms) == 2
    assert [len(c.ticks) for c in a.terms[1]] == [1, 1]


def test_renewing_between_controllers_keeps_a_slow_tick_leading(
    store: Store, clock: VirtualClock
) -> None:
    a = Process(store, clock, "host-a:1:aa", act=lambda: clock.advance(TTL - INTERVAL))
    a.loop.tick()
    assert [len(c.ticks) for c in a.terms[0]] == [1, 1] and a.loop.term == 1
    lease = _lease(store)
    assert lease is not None and lease.expires_at == clock.now() + TTL  # renewed mid-tick


def test_leadership_changes_are_logged_with_holder_and_term(
    store: Store, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelfleet.control")
    a, b = Process(store, clock, "host-a:1:aa"), Process(store, clock, "host-b:2:bb")
    a.loop.tick()
    b.loop.tick()
    a.loop.stop()
    b.loop.tick()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines[0].startswith("control loop host-a:1:aa is the leader (term 1")
    assert lines[1].startswith("control loop host-a:1:aa is no longer the leader (term 1)")
    assert lines[2].startswith("control loop host-b:2:bb is the leader (term 2")


def test_a_leased_loop_needs_a_factory_and_a_ttl_longer_than_its_interval(
    store: Store, clock: VirtualClock
) -> None:
    with pytest.raises(TypeError, match="factory"):
        ControlLoop([Counting()], clock, lease=Leadership(store))
    with pytest.raises(InvalidInput, match="must be longer than the interval"):
        ControlLoop(list, clock, interval_s=5, lease=Leadership(store, ttl=timedelta(seconds=5)))


def _cli(*args: str) -> int:
    """Run `modelfleet ARGS` in-process; its exit code."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    code = info.value.code
    return code if isinstance(code, int) else 1 if code else 0


def test_the_leader_command_shows_who_leads_and_exits_1_without_a_leader(
    store: Store,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODELFLEET_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    clock = VirtualClock(datetime.now(UTC))  # the command reads the wall clock
    assert _cli("leader") == 1
    assert "no control loop has led on this store yet" in capsys.readouterr().out

    a = Process(store, clock, "host-a:1:aa")
    a.loop.tick()
    assert _cli("leader") == 0
    table = capsys.readouterr().out
    assert "host-a:1:aa" in table and "leading" in table
    assert _cli("leader", "-o", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["holder"], shown["term"], shown["held"]) == ("host-a:1:aa", 1, True)
    assert 0 < shown["expires_in_s"] <= TTL.total_seconds()

    a.loop.stop()
    assert _cli("leader") == 1
    assert "no leader" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelfleet", "up", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def _wait_until(condition: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_killing_the_leading_process_hands_the_control_loop_over_within_the_lease(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    """Two real `modelfleet up` on the real PostgreSQL: SIGKILL the leader, and the other leads
    within the lease's ttl (plus a tick and a margin for a loaded machine)."""
    ttl_s, tick_s = 3.0, 0.5
    env = {
        **os.environ,
        "MODELFLEET_HOME": str(tmp_path / "home"),
        "MODELFLEET_DATABASE_URL": database_url,
    }
    args = ("--tick", str(tick_s), "--lease-ttl", str(ttl_s))
    procs = dict(_up(env, *args) for _ in range(2))
    wall = SystemClock()
    try:
        assert _wait_until(lambda: all(_ready(url) for url in procs.values()), 60)

        def leader() -> LeaseState | None:
            lease = _lease(store)
            return lease if lease is not None and lease.held_at(wall.now()) else None

        assert _wait_until(lambda: leader() is not None, 10)
        first = leader()
        assert first is not None
        by_pid = {p.pid: p for p in procs}
        dead = by_pid[int(first.holder.split(":")[1])]
        (survivor,) = set(procs) - {dead}
        dead.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        dead.communicate(timeout=10)
        last_expiry = _lease(store)
        assert last_expiry is not None

        def taken_over() -> bool:
            lease = leader()
            return lease is not None and lease.holder != first.holder

        assert _wait_until(taken_over, ttl_s + 2 * tick_s + 3)
        assert time.monotonic() - killed <= ttl_s + 2 * tick_s + 2
        second = leader()
        assert second is not None and second.holder.split(":")[1] == str(survivor.pid)
        assert second.term == first.term + 1
        assert second.acquired_at >= last_expiry.expires_at  # not while the dead one's stood

        survivor.send_signal(signal.SIGTERM)  # a clean stop releases the lease at once
        log, _ = survivor.communicate(timeout=60)
        assert survivor.returncode == 0, log
        assert f"is the leader (term {second.term}" in log
        released = _lease(store)
        assert released is not None and not released.held_at(wall.now())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=10)
