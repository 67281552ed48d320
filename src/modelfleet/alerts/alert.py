"""An alert as the alert manager holds it, and the signal a source sends to raise or clear one.

Sources (threshold rules, anomaly detectors, controller events) never write alerts directly:
they send `Signal`s, and the alert controller turns them into alerts by fingerprint, so the
same condition reported by two ticks or two sources is one alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelfleet.alerts.labels import fingerprint

State = Literal["firing", "resolved"]

# The labels every alert may carry, as routes, silences and runbooks expect them.
ALERTNAME = "alertname"
SEVERITY = "severity"


@dataclass(frozen=True)
class Alert:
    """One alert: its labels (identity), what people read (annotations), and its times."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: State
    starts_at: datetime  # when it was detected
    ends_at: datetime | None = None  # when it resolved
    anomaly_at: datetime | None = None  # the first anomalous point, where a detector knows it
    source: str = "rules"
    flaps: int = 0
    suppressed_by: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def name(self) -> str:
        return self.labels.get(ALERTNAME, "")

    @property
    def severity(self) -> str:
        return self.labels.get(SEVERITY, "warning")

    @property
    def firing(self) -> bool:
        return self.state == "firing"


@dataclass(frozen=True)
class Signal:
    """A source's word on an alert: it fires (again) or it resolved, at `at`.

    `expires_in_s`: a firing alert no source refreshes within this long resolves by itself
    (for one-off events, such as a rollback); None: it fires until a source resolves it.
    """

    labels: dict[str, str]
    state: State
    at: datetime
    source: str
    annotations: dict[str, str] = field(default_factory=dict)
    anomaly_at: datetime | None = None
    expires_in_s: float | None = None
