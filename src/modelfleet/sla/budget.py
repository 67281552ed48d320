"""Error budgets and burn rates of an SLO (Google SRE workbook, ch. 2 and 5).

With objective o, the error budget is the share 1 - o of events allowed to be bad.

- budget left = 1 - (1 - sli) / (1 - o) = (sli - o) / (1 - o): 1 with nothing spent, 0 spent
  exactly at the objective, negative once overspent (-1: twice the budget spent).
- burn rate over a window = (bad / total) / (1 - o): 1 spends the budget exactly over the
  period, 14.4 spends 2 % of a 30-day budget in one hour. No events burn nothing (0).
- a multiwindow alert burns when both its long and its short window burn at its rate or
  faster; a window without events does not burn. Rates are compared with a relative
  tolerance of 1e-9, so that a burn equal in decimals to the alert's rate (14.4) fires in spite
  of binary rounding (1 - 0.999 is not 0.001 in floating point).
- projection: the period ends at the value so far, weighted by the elapsed share of the period,
  and the objective for the rest: as if from now on the service exactly meets its SLO. It
  weighs by time, so it assumes even traffic over the period.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime

from modelfleet.config.sla import BurnAlert
from modelfleet.sla.sli import SLIValue

_RATE_TOLERANCE = 1e-9


def budget_left(sli: float, objective: float) -> float:
    """The share of the error budget left: 1 untouched, 0 spent, negative overspent."""
    _check_objective(objective)
    return (sli - objective) / (1.0 - objective)


def burn_rate(bad: int, total: int, objective: float) -> float:
    """How many times faster than allowed the budget burns: (bad / total) / (1 - objective)."""
    _check_objective(objective)
    if not 0 <= bad <= total:
        raise ValueError(f"bad events must lie in [0, total], got {bad} of {total}")
    if total == 0:
        return 0.0
    return (bad / total) / (1.0 - objective)


def burning(alert: BurnAlert, long: SLIValue, short: SLIValue, objective: float) -> bool:
    """Whether `alert` fires: both windows have events and burn at `alert.rate` or faster."""
    if long.total == 0 or short.total == 0:
        return False
    return all(_at_least(burn_rate(w.bad, w.total, objective), alert.rate) for w in (long, short))


def firing(
    alerts: Iterable[BurnAlert],
    measure: Callable[[datetime, datetime], SLIValue],
    now: datetime,
    objective: float,
) -> list[BurnAlert]:
    """The alerts that fire at `now`; `measure(start, end)` is the SLI over [start, end)."""
    return [
        alert
        for alert in alerts
        if burning(
            alert, measure(now - alert.long, now), measure(now - alert.short, now), objective
        )
    ]


def projected(sli_so_far: float, elapsed_fraction: float, objective: float) -> float:
    """The period's end value if the rest of it exactly meets `objective` (time-weighted)."""
    _check_objective(objective)
    if not 0.0 <= elapsed_fraction <= 1.0:
        raise ValueError(f"the elapsed share of a period lies in [0, 1], got {elapsed_fraction}")
    return elapsed_fraction * sli_so_far + (1.0 - elapsed_fraction) * objective


def _at_least(rate: float, threshold: float) -> bool:
    return rate >= threshold or math.isclose(rate, threshold, rel_tol=_RATE_TOLERANCE)


def _check_objective(objective: float) -> None:
    if not 0.0 < objective < 1.0:
        raise ValueError(f"an objective lies strictly between 0 and 1, got {objective}")
