"""The rollout controller: gates candidates, moves traffic step by step, promotes or rolls back.

Each `tick(now)` reads the store, decides, and writes its decisions back: traffic splits (which
the gateways publish within a second), rollout states, a timeline entry with the evidence of
every decision, and events for alerting. It never reads the wall clock, so a test drives a
whole canary on a virtual clock, against rollups the real gateway wrote.

A tick judges every running rollout on all the traffic since its phase began. A failing
critical metric rolls back at once, paused or not; passing moves on only once the phase's
interval has elapsed, and too little traffic holds the step and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection

from modelfleet.config.schema import (
    AnalysisSpec,
    BlueGreenStrategy,
    CanaryStrategy,
    Deployment,
    GateSpec,
    ModelVersion,
    ShadowStrategy,
    Strategy,
)
from modelfleet.gateway.routing import version_spec
from modelfleet.registry import load_state
from modelfleet.registry.events import Event, record_event
from modelfleet.registry.resources import FleetState
from modelfleet.registry.splits import (
    TrafficSplit,
    clear_split,
    set_serving_version,
    take_awaiting_rollout,
    write_split,
)
from modelfleet.rollouts.analysis import Judgement, judge
from modelfleet.rollouts.gate import GateReport, evaluate_gate
from modelfleet.rollouts.records import (
    Rollout,
    add_event,
    create_rollout,
    events_of,
    latest_rollout,
    list_rollouts,
    update_rollout,
)
from modelfleet.runtime import VersionSpec
from modelfleet.store import Store
from modelfleet.telemetry.rollup import Rollup, pooled
from modelfleet.telemetry.writer import read_rollups

log = logging.getLogger(__name__)

SOURCE = "rollouts"
STRATEGY: TypeAdapter[CanaryStrategy | BlueGreenStrategy | ShadowStrategy] = TypeAdapter(Strategy)
GateRunner = Callable[[VersionSpec, VersionSpec | None, str | None, GateSpec], GateReport]


def _run_gate(
    candidate: VersionSpec, stable: VersionSpec | None, data: str | None, spec: GateSpec
) -> GateReport:
    return evaluate_gate(candidate, stable, data, spec)


class RolloutController:
    """Drives every deployment's rollout; see the module docstring."""

    def __init__(
        self, store: Store, *, actor: str = "rollout-controller", gate: GateRunner = _run_gate
    ) -> None:
        self.store = store
        self.actor = actor
        self.gate = gate

    def tick(self, now: datetime) -> list[Event]:
        events: list[Event] = []
        with self.store.begin() as conn:
            events += self._start_declared(conn, load_state(conn), now)
            active = list_rollouts(conn, active=True, limit=1000)
        for rollout in sorted(active, key=lambda r: r.id):
            try:
                if rollout.state == "pending":
                    events += self._gate(rollout, now)
                else:
                    with self.store.begin() as conn:
                        events += self._advance(conn, rollout, now)
            except Exception:  # one broken rollout must not stop the others
                log.exception("rollout %s of %s: tick failed", rollout.id, rollout.deployment)
        return events

    # -- starting ----------------------------------------------------------------------------

    def _start_declared(self, conn: Connection, state: FleetState, now: datetime) -> list[Event]:
        """Start a rollout for each deployment whose declared version is not serving yet."""
        events: list[Event] = []
        for reg in state.of_kind(Deployment):
            deployment = reg.resource
            assert isinstance(deployment, Deployment)
            d = deployment.spec
            if not reg.awaiting_rollout or not take_awaiting_rollout(conn, deployment.name):
                continue  # a declaration is acted on once; a retry is an operator's decision
            if d.strategy is None or d.version == reg.serving_version:
                continue
            latest = latest_rollout(conn, deployment.name)
            if latest is not None and latest.active:
                events.append(
                    end_rollout(
                        conn,
                        latest,
                        "aborted",
                        now=now,
                        actor=self.actor,
                        reason=f"superseded: fleet.yaml now declares version {d.version}",
                    )
                )
            assert reg.serving_version is not None
            create_rollout(
                conn,
                deployment=deployment.name,
                model=d.model,
                spec=rollout_spec(deployment),
                stable_version=reg.serving_version,
                candidate_version=d.version,
                actor=self.actor,
                now=now,
                reason=f"fleet.yaml declares version {d.version}",
            )
        return events

    # -- the quality gate --------------------------------------------------------------------

    def _gate(self, rollout: Rollout, now: datetime) -> list[Event]:
        with self.store.begin() as conn:
            state = load_state(conn)
        candidate = version_spec(state, rollout.model, rollout.candidate_version)
        stable = version_spec(state, rollout.model, rollout.stable_version)
        registered = state.get(("ModelVersion", rollout.model, rollout.candidate_version))
        data = None
        if registered is not None:
            assert isinstance(registered.resource, ModelVersion)
            data = registered.resource.spec.evaluation_data
        if candidate is None:
            report = None
            reason = f"version {rollout.candidate_version} of {rollout.model} is not registered"
        else:
            # Outside any transaction: loading and timing two models takes seconds.
            report = self.gate(
                candidate, stable, data, GateSpec.model_validate(rollout.spec["gate"])
            )
            reason = report.summary()
        with self.store.begin() as conn:
            evidence = report.to_dict() if report is not None else None
            passed = report is not None and report.passed
            add_event(
                conn,
                rollout,
                "gate",
                now=now,
                reason=reason,
                outcome="pass" if passed else "fail",
                evidence=evidence,
            )
            if not passed:
                event = end_rollout(
                    conn,
                    rollout,
                    "refused",
                    now=now,
                    actor=self.actor,
                    reason=f"quality gate failed: {reason}",
                    evidence=evidence,
                )
                return [event]
            self._enter_first_phase(conn, rollout, now)
        return []

    def _enter_first_phase(self, conn: Connection, rollout: Rollout, now: datetime) -> None:
        strategy = strategy_of(rollout)
        if isinstance(strategy, CanaryStrategy):
            first = strategy.steps[0]
            baseline = _window(now - strategy.interval, now) if first == 100 else None
            rollout = update_rollout(
                conn,
                rollout,
                now=now,
                state="running",
                phase="canary",
                step=0,
                percent=first,
                phase_started_at=now,
                baseline=baseline,
            )
            self._split(conn, rollout, now, canary=first, shadow=strategy.shadow)
            add_event(conn, rollout, "step", now=now, reason=f"canary at {first:g}% of requests")
        elif isinstance(strategy, BlueGreenStrategy):
            rollout = update_rollout(
                conn, rollout, now=now, state="running", phase="warming", phase_started_at=now
            )
            self._split(conn, rollout, now, warm=(rollout.candidate_version,))
            add_event(
                conn,
                rollout,
                "warming",
                now=now,
                reason=f"{rollout.candidate_version} loads beside {rollout.stable_version}, "
                "without traffic",
            )
        else:
            rollout = update_rollout(
                conn, rollout, now=now, state="running", phase="shadowing", phase_started_at=now
            )
            self._split(conn, rollout, now, shadow=strategy.percent)
            add_event(
                conn,
                rollout,
                "shadowing",
                now=now,
                reason=f"{strategy.percent:g}% of requests mirrored to {rollout.candidate_version}",
            )

    # -- running -----------------------------------------------------------------------------

    def _advance(self, conn: Connection, rollout: Rollout, now: datetime) -> list[Event]:
        strategy = strategy_of(rollout)
        judgement = current_judgement(conn, rollout, now)
        elapsed = now - rollout.phase_started_at
        if judgement.outcome == "fail":
            _record_analysis(conn, rollout, judgement, now)
            if rollout.phase == "shadowing":
                return [self._finish_shadow(conn, rollout, judgement, now)]
            return [
                end_rollout(
                    conn,
                    rollout,
                    "rolled_back",
                    now=now,
                    actor=self.actor,
                    reason=f"analysis failed: {judgement.reason}",
                    evidence=judgement.to_dict(),
                )
            ]
        if rollout.paused:
            return []
        if isinstance(strategy, CanaryStrategy):
            if elapsed < strategy.interval:
                return []
            if judgement.outcome == "hold":
                self._hold(conn, rollout, judgement, now)
                return []
            return self._next_step(conn, rollout, strategy, judgement, now)
        if isinstance(strategy, BlueGreenStrategy):
            if rollout.phase == "warming" and elapsed >= strategy.warmup:
                self._switch(conn, rollout, now)
            elif rollout.phase == "switched" and elapsed >= strategy.rollback_window:
                return [promote(conn, rollout, now=now, actor=self.actor, evidence=judgement)]
            return []
        if elapsed >= strategy.duration:
            return [self._finish_shadow(conn, rollout, judgement, now)]
        return []

    def _next_step(
        self,
        conn: Connection,
        rollout: Rollout,
        strategy: CanaryStrategy,
        judgement: Judgement,
        now: datetime,
    ) -> list[Event]:
        if rollout.step + 1 >= len(strategy.steps):
            return [promote(conn, rollout, now=now, actor=self.actor, evidence=judgement)]
        percent = strategy.steps[rollout.step + 1]
        # With all traffic on the candidate, stable is judged by the window just ended.
        baseline = _window(rollout.phase_started_at, now) if percent == 100 else None
        _record_analysis(conn, rollout, judgement, now)
        rollout = update_rollout(
            conn,
            rollout,
            now=now,
            step=rollout.step + 1,
            percent=percent,
            phase_started_at=now,
            baseline=baseline,
        )
        self._split(conn, rollout, now, canary=percent, shadow=strategy.shadow)
        add_event(conn, rollout, "step", now=now, reason=f"canary at {percent:g}% of requests")
        return []

    def _hold(
        self, conn: Connection, rollout: Rollout, judgement: Judgement, now: datetime
    ) -> None:
        """Say once per step that it is held for want of traffic."""
        timeline = events_of(conn, rollout.id)
        last = timeline[-1] if timeline else None
        if last is not None and last.kind == "hold" and last.step == rollout.step:
            return
        add_event(
            conn,
            rollout,
            "hold",
            now=now,
            reason=judgement.reason,
            outcome="hold",
            evidence=judgement.to_dict(),
        )

    def _switch(self, conn: Connection, rollout: Rollout, now: datetime) -> None:
        baseline = _window(rollout.phase_started_at, now)
        rollout = update_rollout(
            conn,
            rollout,
            now=now,
            phase="switched",
            percent=100.0,
            phase_started_at=now,
            baseline=baseline,
        )
        self._split(conn, rollout, now, canary=100.0, warm=(rollout.stable_version,))
        add_event(
            conn,
            rollout,
            "switched",
            now=now,
            reason=f"all traffic to {rollout.candidate_version}; {rollout.stable_version} "
            "stays warm for the rollback window",
        )

    def _finish_shadow(
        self, conn: Connection, rollout: Rollout, judgement: Judgement, now: datetime
    ) -> Event:
        verdict = {"pass": "passed", "fail": "failed", "hold": "had too little traffic to judge"}
        return end_rollout(
            conn,
            rollout,
            "completed",
            now=now,
            actor=self.actor,
            reason=f"shadow {verdict[judgement.outcome]}: {judgement.reason}",
            evidence=judgement.to_dict(),
        )

    def _split(
        self,
        conn: Connection,
        rollout: Rollout,
        now: datetime,
        *,
        canary: float = 0.0,
        shadow: float = 0.0,
        warm: tuple[str, ...] = (),
    ) -> None:
        split = TrafficSplit(
            rollout.deployment, rollout.candidate_version, canary, shadow, warm, seed=rollout.id
        )
        write_split(conn, split, actor=self.actor, now=now)


# -- shared with the operator's commands -------------------------------------------------------


def strategy_of(rollout: Rollout) -> CanaryStrategy | BlueGreenStrategy | ShadowStrategy:
    return STRATEGY.validate_python(rollout.spec["strategy"])


def rollout_spec(
    deployment: Deployment,
    strategy: CanaryStrategy | BlueGreenStrategy | ShadowStrategy | None = None,
) -> dict[str, Any]:
    """What a rollout keeps of its deployment's declaration, so later edits do not change it."""
    d = deployment.spec
    chosen = strategy or d.strategy
    assert chosen is not None
    return {
        "strategy": chosen.model_dump(mode="json"),
        "gate": d.gate.model_dump(mode="json"),
        "sticky_key": d.sticky_key,
    }


def current_judgement(conn: Connection, rollout: Rollout, now: datetime) -> Judgement:
    """Candidate against stable on the traffic of the phase so far (see the module docstring)."""
    analysis = AnalysisSpec.model_validate(rollout.spec["strategy"].get("analysis", {}))
    since = rollout.phase_started_at
    until = now + timedelta(minutes=1)
    shadow = _pooled(conn, rollout, rollout.candidate_version, since, until, shadow=True)
    if rollout.phase == "shadowing":
        stable = _pooled(conn, rollout, rollout.stable_version, since, until)
        return judge(stable, shadow, analysis, shadow=shadow)
    candidate = _pooled(conn, rollout, rollout.candidate_version, since, until)
    if rollout.baseline is not None:
        base_since = datetime.fromisoformat(rollout.baseline["since"])
        base_until = datetime.fromisoformat(rollout.baseline["until"])
        stable = _pooled(conn, rollout, rollout.stable_version, base_since, base_until)
    else:
        stable = _pooled(conn, rollout, rollout.stable_version, since, until)
    return judge(stable, candidate, analysis, shadow=shadow)


def _pooled(
    conn: Connection,
    rollout: Rollout,
    version: str,
    since: datetime,
    until: datetime,
    *,
    shadow: bool = False,
) -> Rollup | None:
    # Rollups are per minute: the window starts with the minute it began in.
    start = since.replace(second=0, microsecond=0)
    found = read_rollups(
        conn, since=start, until=until, model=rollout.model, version=version, shadow=shadow
    )
    return pooled(found.values())


def _record_analysis(
    conn: Connection, rollout: Rollout, judgement: Judgement, now: datetime
) -> None:
    add_event(
        conn,
        rollout,
        "analysis",
        now=now,
        reason=judgement.reason,
        outcome=judgement.outcome,
        evidence=judgement.to_dict(),
    )


def _window(since: datetime, until: datetime) -> dict[str, str]:
    return {"since": since.isoformat(), "until": until.isoformat()}


def promote(
    conn: Connection,
    rollout: Rollout,
    *,
    now: datetime,
    actor: str,
    evidence: Judgement | None = None,
    reason: str | None = None,
) -> Event:
    """Make the candidate the stable version and send it all traffic."""
    set_serving_version(conn, rollout.deployment, rollout.candidate_version, actor=actor, now=now)
    return end_rollout(
        conn,
        rollout,
        "promoted",
        now=now,
        actor=actor,
        reason=reason or f"{rollout.candidate_version} passed every step",
        evidence=evidence.to_dict() if evidence is not None else None,
    )


_ENDINGS: dict[str, tuple[str, str]] = {
    # state: (event kind, severity)
    "promoted": ("rollout.promoted", "info"),
    "rolled_back": ("rollout.rolled_back", "critical"),
    "refused": ("rollout.refused", "warning"),
    "aborted": ("rollout.aborted", "warning"),
    "completed": ("rollout.completed", "info"),
}


def end_rollout(
    conn: Connection,
    rollout: Rollout,
    state: str,
    *,
    now: datetime,
    actor: str,
    reason: str,
    evidence: dict[str, Any] | None = None,
) -> Event:
    """End a rollout in `state`: all traffic to the (possibly new) stable version, the decision
    on its timeline, and an event for alerting."""
    clear_split(conn, rollout.deployment, actor=actor, now=now)
    ended = update_rollout(
        conn, rollout, now=now, state=state, phase="done", ended_at=now, reason=reason
    )
    add_event(conn, ended, state, now=now, reason=reason, evidence=evidence)
    kind, severity = _ENDINGS[state]
    event = Event(
        at=now,
        source=SOURCE,
        kind=kind,
        severity=severity,  # type: ignore[arg-type]
        subject=rollout.deployment,
        message=f"rollout {rollout.id} of {rollout.deployment} "
        f"({rollout.stable_version} -> {rollout.candidate_version}) {state.replace('_', ' ')}: "
        f"{reason}",
        details={
            "rollout": rollout.id,
            "stable": rollout.stable_version,
            "candidate": rollout.candidate_version,
            "step": rollout.step,
            "percent": rollout.percent,
            "evidence": evidence,
        },
    )
    record_event(conn, event)
    return event
