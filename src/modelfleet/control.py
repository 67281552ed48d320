"""The control loop: ticks every controller of the control plane, one after another.

Controllers never call each other; they read the store and write their decisions back, so the
loop's only job is time: every `interval_s` it reads the clock once and passes the same `now` to
each controller. A controller that fails is logged and ticked again next time; it never stops
the others.

Several processes may run a control loop on one store (one per `modelfleet up`); with a
`Leadership`, only the holder of the store's control-loop lease acts. It renews the lease at the
start of each tick and again before each controller, and stops the moment a renewal fails, so a
slow tick never acts after its lease lapsed. Controllers keep some state in memory, so a loop
builds them afresh, from the store, each time it becomes the leader.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from modelfleet.alerts.controller import AlertController
from modelfleet.capacity.controller import CapacityController
from modelfleet.clock import Clock
from modelfleet.errors import InvalidInput, StoreError
from modelfleet.incidents.controller import IncidentController
from modelfleet.monitors.controller import MonitorController
from modelfleet.monitors.streams import AnomalyController
from modelfleet.regions.retention import RetentionController
from modelfleet.registry.events import Event
from modelfleet.remediation.actions import Operations
from modelfleet.remediation.controller import RemediationController
from modelfleet.review import ReviewController
from modelfleet.review.queue import open_review
from modelfleet.rollouts.commands import roll_back_deployment
from modelfleet.rollouts.controller import RolloutController
from modelfleet.sla.controller import SLAController
from modelfleet.store import Store
from modelfleet.store.lease import acquire, new_holder, release, renew

CONTROL_LOOP_LEASE = "control-loop"

log = logging.getLogger(__name__)


class Controller(Protocol):
    def tick(self, now: datetime) -> list[Event]: ...


def controllers(
    store: Store, *, secrets: Mapping[str, str] | None = None, external_url: str | None = None
) -> list[Controller]:
    """Every controller of the control plane, on `store`, in the order one tick runs them:
    what changes traffic, then what watches it, then what alerts on it and acts on the alerts,
    and last the record of it all. `secrets` are what receivers refer to (SMTP passwords)."""
    operations = Operations(rollback=roll_back_deployment, open_review=open_review)
    return [
        RolloutController(store),
        MonitorController(store),
        AnomalyController(store),
        ReviewController(store),
        SLAController(store),
        AlertController(
            store, secrets=secrets, external_url=external_url or "http://localhost:8080"
        ),
        RemediationController(store, operations),
        IncidentController(store),
        CapacityController(store),
        RetentionController(store),
    ]


ControllerFactory = Callable[[], Sequence[Controller]]


@dataclass(frozen=True)
class Leadership:
    """The lease that elects one control loop, of all those sharing `store`, to act.

    `holder` names this process (host, pid, random); `ttl` is how long the lease lasts
    unrenewed, so how long the others wait before taking over from a leader that died.
    """

    store: Store
    holder: str = field(default_factory=new_holder)
    ttl: timedelta = timedelta(seconds=15)
    name: str = CONTROL_LOOP_LEASE


class ControlLoop:
    """Ticks `controllers` every `interval_s`; with a `lease`, only while it is the leader.

    `controllers` is a list, or a factory that builds them. A loop with a lease needs the
    factory: it calls it each time it becomes the leader, so that no state left in memory by an
    earlier term (when others may have acted) carries over.
    """

    def __init__(
        self,
        controllers: Sequence[Controller] | ControllerFactory,
        clock: Clock,
        *,
        interval_s: float = 5.0,
        lease: Leadership | None = None,
    ) -> None:
        if lease is not None:
            if not callable(controllers):
                raise TypeError("a control loop with a lease needs a factory of controllers")
            if lease.ttl.total_seconds() <= interval_s:
                raise InvalidInput(
                    f"the lease's ttl ({lease.ttl.total_seconds():g} s) must be longer than the"
                    f" interval between ticks ({interval_s:g} s): the leader renews it each tick"
                )
        self._factory = controllers if callable(controllers) else None
        self.controllers: list[Controller] = (
            []
            if lease is not None
            else list(controllers() if callable(controllers) else controllers)
        )
        self.clock = clock
        self.interval_s = interval_s
        self.lease = lease
        self._term: int | None = None  # the lease's term while this loop leads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def term(self) -> int | None:
        """The term of the lease this loop holds, or None while it is not the leader."""
        return self._term

    def tick(self) -> list[Event]:
        """Tick every controller once at the clock's now (if leader, with a lease)."""
        now = self.clock.now()
        if self.lease is not None and not self._lead(now):
            return []
        events: list[Event] = []
        for i, controller in enumerate(self.controllers):
            if i > 0 and self.lease is not None and not self._still_leading():
                break
            try:
                events += controller.tick(now)
            except Exception:
                log.exception("%s failed to tick", type(controller).__name__)
        for event in events:
            level = logging.WARNING if event.severity != "info" else logging.INFO
            log.log(level, "%s %s: %s", event.kind, event.subject, event.message)
        return events

    def _lead(self, now: datetime) -> bool:
        """Acquire or renew the lease; on a new term, build the controllers afresh."""
        lease, factory = self.lease, self._factory
        assert lease is not None and factory is not None
        try:
            with lease.store.begin(immediate=True) as conn:
                state = acquire(conn, lease.name, lease.holder, now, lease.ttl)
        except StoreError as exc:
            # Unknown, not lost: if the lease still stands once the store answers, the term
            # (and the controllers) carry on; if it lapsed meanwhile, the term will say so.
            log.warning("control loop %s skips a tick: %s", lease.holder, exc)
            return False
        if state is None:
            self._lose("another process holds the lease")
            return False
        if state.term != self._term:
            if self._term is not None:
                self._lose("its lease lapsed")
            try:
                self.controllers = list(factory())
            except Exception:
                log.exception("control loop %s cannot build its controllers", lease.holder)
                return False
            self._term = state.term
            log.info(
                "control loop %s is the leader (term %d, lease until %s)",
                lease.holder,
                state.term,
                state.expires_at.isoformat(),
            )
        return True

    def _still_leading(self) -> bool:
        """Renew the lease mid-tick; False (and no longer leader) when it lapsed or was taken."""
        lease = self.lease
        assert lease is not None and self._term is not None
        try:
            with lease.store.begin(immediate=True) as conn:
                state = renew(
                    conn, lease.name, lease.holder, self._term, self.clock.now(), lease.ttl
                )
        except StoreError as exc:
            log.warning("control loop %s stops this tick: %s", lease.holder, exc)
            return False
        if state is None:
            self._lose("its lease lapsed or was taken during a tick")
            return False
        return True

    def _lose(self, why: str) -> None:
        if self._term is not None and self.lease is not None:
            log.info(
                "control loop %s is no longer the leader (term %d): %s",
                self.lease.holder,
                self._term,
                why,
            )
        self._term = None
        self.controllers = []

    def start(self) -> None:
        """Tick every `interval_s` on a background thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="control-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the lease's store calls may fail; the next tick tries again
                log.exception("control loop tick failed")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop ticking; a leader then releases its lease, so another takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        lease = self.lease
        if lease is None or self._term is None:
            return
        try:
            with lease.store.begin(immediate=True) as conn:
                release(conn, lease.name, lease.holder, self.clock.now())
        except StoreError as exc:
            log.warning("control loop %s could not release its lease: %s", lease.holder, exc)
        self._lose("stopped, and released its lease")
