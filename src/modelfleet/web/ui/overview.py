"""What the fleet overview shows: each deployment, its versions and how each one is doing now.

Figures come from the store only: traffic from the rollups of the last few minutes, drift from
the monitors' latest verdicts (as `modelfleet monitor status`), the rollout from its record (as
`modelfleet rollout status`), and each served tenant's SLA standing this period (as
`modelfleet sla status`: missed when an SLO is below its objective, at risk when its budget is
under `SLA_AT_RISK` or a credit is projected, met otherwise). Each figure carries a tone, ok, warn or bad, that the page shows
in colour and in words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from modelfleet.config.schema import Deployment, ModelVersion
from modelfleet.monitors import latest_results
from modelfleet.registry import load_state
from modelfleet.registry.splits import read_splits
from modelfleet.rollouts import Rollout, latest_rollout
from modelfleet.telemetry.rollup import Rollup, RollupKey, pooled
from modelfleet.telemetry.writer import read_rollups
from modelfleet.web.ui.boards import TenantSLARow, sla_board

WINDOW = timedelta(minutes=5)
SLA_AT_RISK = 0.25  # share of the error budget left
ERROR_WARN, ERROR_BAD = 0.01, 0.05  # share of requests answered 5xx
DRIFT_TONES = {"ok": "ok", "warning": "warn", "alert": "bad", "insufficient": "none"}
ROLLOUT_TONES = {
    "pending": "warn",
    "running": "warn",
    "promoted": "ok",
    "completed": "ok",
    "aborted": "warn",
    "rolled_back": "bad",
    "refused": "bad",
}


@dataclass(frozen=True)
class VersionRow:
    name: str
    role: str  # stable, canary, shadow, warm, or "" for a version without traffic
    percent: float  # of the deployment's client requests
    requests_per_s: float
    error_rate: float | None
    p99_ms: float | None
    drift: str  # the worst drift verdict over tenants, or "no verdict"

    @property
    def error_tone(self) -> str:
        if self.error_rate is None:
            return "none"
        if self.error_rate >= ERROR_BAD:
            return "bad"
        return "warn" if self.error_rate >= ERROR_WARN else "ok"

    @property
    def drift_tone(self) -> str:
        return DRIFT_TONES.get(self.drift, "none")


@dataclass(frozen=True)
class SLAStanding:
    tenant: str
    sla: str
    state: str  # met, at risk, missed

    @property
    def tone(self) -> str:
        return {"met": "ok", "at risk": "warn"}.get(self.state, "bad")


@dataclass(frozen=True)
class DeploymentRow:
    name: str
    model: str
    serving: str
    rollout: Rollout | None
    versions: list[VersionRow] = field(default_factory=list)
    slas: list[SLAStanding] = field(default_factory=list)

    @property
    def rollout_state(self) -> str:
        if self.rollout is None:
            return "none"
        return self.rollout.state + (" (paused)" if self.rollout.paused else "")

    @property
    def rollout_tone(self) -> str:
        if self.rollout is None:
            return "none"
        return ROLLOUT_TONES.get(self.rollout.state, "warn")


_DRIFT_ORDER = ["no verdict", "insufficient", "ok", "warning", "alert"]  # monitors/judge.py


def _worse(a: str, b: str) -> str:
    rank = {name: i for i, name in enumerate(_DRIFT_ORDER)}
    return a if rank.get(a, 1) >= rank.get(b, 1) else b


RollupReader = Callable[[datetime, datetime, str], Mapping[RollupKey, Rollup]]


def fleet_overview(
    conn: Connection, now: datetime, read: RollupReader | None = None
) -> list[DeploymentRow]:
    """Every deployment, with each of its model's versions and their last minutes' figures.

    `read(since, until, model)` gives the figures' rollups: by default this store's; the
    dashboard passes every region's (the global view)."""
    state = load_state(conn)
    splits = read_splits(conn)
    standings = [_standing(row) for row in sla_board(conn, now)]
    out: list[DeploymentRow] = []
    for registered in state.of_kind(Deployment):
        deployment = registered.resource
        assert isinstance(deployment, Deployment)
        name, model = deployment.metadata.name, deployment.spec.model
        serving = registered.serving_version or ""
        split = splits.get(name)
        drift: dict[str, str] = {}
        for result in latest_results(conn, model=model):
            verdict = result.status("drift") or "no verdict"
            drift[result.version] = _worse(drift.get(result.version, "no verdict"), verdict)
        rollups = (
            read(now - WINDOW, now, model)
            if read is not None
            else read_rollups(conn, since=now - WINDOW, until=now, model=model)
        )
        versions = sorted(
            v.resource.metadata.name
            for v in state.of_kind(ModelVersion)
            if isinstance(v.resource, ModelVersion) and v.resource.spec.model == model
        )
        rows = []
        for version in versions:
            role, percent = "", 0.0
            if version == serving:
                role, percent = "stable", 100.0 - (split.canary_percent if split else 0.0)
            elif split is not None and version == split.candidate:
                role = "canary" if split.canary_percent > 0 else "shadow"
                percent = split.canary_percent
            elif split is not None and version in split.warm:
                role = "warm"
            merged = pooled(r for k, r in rollups.items() if k.version == version)
            requests = merged.requests if merged is not None else 0
            errors = merged.status["5xx"] if merged is not None else 0
            p99 = merged.latency.quantile(0.99) if merged is not None else None
            rows.append(
                VersionRow(
                    name=version,
                    role=role,
                    percent=percent,
                    requests_per_s=requests / WINDOW.total_seconds(),
                    error_rate=errors / requests if requests else None,
                    p99_ms=None if p99 is None else p99 * 1000,
                    drift=drift.get(version, "no verdict"),
                )
            )
        served = deployment.spec.tenants
        slas = [s for s in standings if served == "all" or s.tenant in served]
        out.append(DeploymentRow(name, model, serving, latest_rollout(conn, name), rows, slas))
    return out


def _standing(row: TenantSLARow) -> SLAStanding:
    if any(slo.total and not slo.met for slo in row.slos):
        state = "missed"
    elif row.credit_at_risk > 0 or any(
        slo.total and slo.budget_left < SLA_AT_RISK for slo in row.slos
    ):
        state = "at risk"
    else:
        state = "met"
    return SLAStanding(row.tenant, row.sla, state)
