"""Service credits: the share of the monthly fee owed when a period's SLOs are missed.

For each SLO, the credit is the largest `credit` among its tiers whose `below` the period's
value is strictly under (a value equal to `below` earns nothing from that tier); an SLO
without such a tier earns nothing. The credits of all SLOs add up, and the sum is capped at the
SLA's `credit_cap`. The amount is that share of `monthly_fee`.

A lower value never earns a smaller credit: every tier a value is under, a lower value is under
too, and the sum and the cap are monotone.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelfleet.config.sla import SLASpec


def credit_share(spec: SLASpec, values: Mapping[str, float]) -> tuple[float, tuple[str, ...]]:
    """The share of the monthly fee owed for the period's SLO `values`, and why, one line each.

    `values` holds each SLO's period value by name; one missing for an SLO with credit tiers,
    or naming an SLO the SLA does not have, is a ValueError.
    """
    names = [slo.name for slo in spec.slos]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"values for SLOs the SLA does not have: {', '.join(unknown)}")
    total = 0.0
    reasons: list[str] = []
    for name in names:
        tiers = [tier for tier in spec.credits if tier.slo == name]
        if not tiers:
            continue
        if name not in values:
            raise ValueError(f"no value for SLO {name!r}, which has credit tiers")
        value = values[name]
        earned = [tier for tier in tiers if value < tier.below]
        if not earned:
            continue
        best = max(earned, key=lambda tier: tier.credit)
        total += best.credit
        reasons.append(
            f"{name} at {value:.4%} is below {best.below:.4%}: {best.credit:.4g} of the fee"
        )
    if total > spec.credit_cap:
        reasons.append(f"credits of {total:.4g} capped at {spec.credit_cap:.4g} of the fee")
        total = spec.credit_cap
    return total, tuple(reasons)


def credit_amount(spec: SLASpec, values: Mapping[str, float]) -> float:
    """The credit owed, in the SLA's currency: `credit_share` of `monthly_fee`."""
    share, _ = credit_share(spec, values)
    return share * spec.monthly_fee
