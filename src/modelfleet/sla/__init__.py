"""The pure maths of customer SLAs: periods, indicators, error budgets, burn rates and credits.

No I/O and no clock: counts, specs and instants go in, numbers come out. The controller that
reads rollups and incidents from the store and records SLA reports builds on these.
"""

from modelfleet.sla.budget import budget_left, burn_rate, burning, firing, projected
from modelfleet.sla.credits import credit_amount, credit_share
from modelfleet.sla.periods import (
    Period,
    counted_minutes,
    excluded,
    excluded_minutes,
    maintenance_intervals,
    parse_period,
    period_bounds,
    period_of,
)
from modelfleet.sla.sli import (
    Incident,
    MinuteCounts,
    SLIValue,
    availability,
    counts_of,
    down,
    in_window,
    incident_response,
    latency,
    measure,
    measured,
    per_minute,
    uptime,
)

__all__ = [
    "Incident",
    "MinuteCounts",
    "Period",
    "SLIValue",
    "availability",
    "budget_left",
    "burn_rate",
    "burning",
    "counted_minutes",
    "counts_of",
    "credit_amount",
    "credit_share",
    "down",
    "excluded",
    "excluded_minutes",
    "firing",
    "in_window",
    "incident_response",
    "latency",
    "maintenance_intervals",
    "measure",
    "measured",
    "parse_period",
    "per_minute",
    "period_bounds",
    "period_of",
    "projected",
    "uptime",
]
