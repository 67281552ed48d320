"""The control loop: ticks every controller of the control plane, one after another.

Controllers never call each other; they read the store and write their decisions back, so the
loop's only job is time: every `interval_s` it reads the clock once and passes the same `now` to
each controller. A controller that fails is logged and ticked again next time; it never stops
the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from modelfleet.alerts.controller import AlertController
from modelfleet.capacity.controller import CapacityController
from modelfleet.clock import Clock
from modelfleet.incidents.controller import IncidentController
from modelfleet.monitors.controller import MonitorController
from modelfleet.monitors.streams import AnomalyController
from modelfleet.registry.events import Event
from modelfleet.remediation.actions import Operations
from modelfleet.remediation.controller import RemediationController
from modelfleet.review import ReviewController
from modelfleet.review.queue import open_review
from modelfleet.rollouts.commands import roll_back_deployment
from modelfleet.rollouts.controller import RolloutController
from modelfleet.sla.controller import SLAController
from modelfleet.store import Store

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
    ]


class ControlLoop:
    def __init__(
        self, controllers: Sequence[Controller], clock: Clock, *, interval_s: float = 5.0
    ) -> None:
        self.controllers = list(controllers)
        self.clock = clock
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[Event]:
        """Tick every controller once at the clock's now."""
        now = self.clock.now()
        events: list[Event] = []
        for controller in self.controllers:
            try:
                events += controller.tick(now)
            except Exception:
                log.exception("%s failed to tick", type(controller).__name__)
        for event in events:
            level = logging.WARNING if event.severity != "info" else logging.INFO
            log.log(level, "%s %s: %s", event.kind, event.subject, event.message)
        return events

    def start(self) -> None:
        """Tick every `interval_s` on a background thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="control-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
