"""Reading the monitors' stored verdicts back: the latest per tenant, model, version."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from modelfleet.store.tables import monitor_results


@dataclass
class MonitorStatus:
    """The latest verdict of each monitor on one (tenant, model, version)."""

    tenant: str
    model: str
    version: str
    window_start: datetime
    window_end: datetime
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)  # monitor -> verdict

    def status(self, monitor: str) -> str | None:
        verdict = self.verdicts.get(monitor)
        return None if verdict is None else str(verdict["status"])

    def _detail(self, monitor: str, name: str) -> Any:
        return self.verdicts.get(monitor, {}).get("details", {}).get(name)

    @property
    def mean_confidence(self) -> float | None:
        return self._detail("output_quality", "mean_confidence")  # type: ignore[no-any-return]

    @property
    def accuracy(self) -> float | None:
        return self._detail("output_quality", "labelled_accuracy")  # type: ignore[no-any-return]

    @property
    def labelled(self) -> int:
        return int(self._detail("output_quality", "labelled_rows") or 0)

    @property
    def worst_feature(self) -> str | None:
        features = self._detail("drift", "features") or []
        if not features:
            return None
        top = features[0]
        return f"{top['name']} (PSI {top['psi']:.2f})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "model": self.model,
            "version": self.version,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "verdicts": self.verdicts,
        }


def latest_results(
    conn: Connection, *, model: str | None = None, tenant: str | None = None
) -> list[MonitorStatus]:
    """Each (tenant, model, version)'s latest verdict of every monitor, sorted."""
    t = monitor_results
    latest = select(func.max(t.c.id)).group_by(t.c.tenant, t.c.model, t.c.version, t.c.monitor)
    if model is not None:
        latest = latest.where(t.c.model == model)
    if tenant is not None:
        latest = latest.where(t.c.tenant == tenant)
    rows = conn.execute(select(t).where(t.c.id.in_(latest)).order_by(t.c.id))
    out: dict[tuple[str, str, str], MonitorStatus] = {}
    for row in rows:
        key = (row.tenant, row.model, row.version)
        status = out.get(key)
        if status is None:
            status = out[key] = MonitorStatus(*key, row.window_start, row.window_end)
        status.verdicts[row.monitor] = dict(row.payload)
        status.window_start, status.window_end = row.window_start, row.window_end
    return [out[k] for k in sorted(out)]
