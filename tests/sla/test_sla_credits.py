"""Service credits: tiers per SLO, summed, capped, and never smaller for a worse month."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.config.sla import CreditTier, SLASpec, SLOSpec
from modelfleet.sla import credit_amount, credit_share

SPEC = SLASpec(
    tenants=["acme"],
    monthly_fee=2000.0,
    slos=[
        SLOSpec(name="availability", type="availability", objective=0.999),
        SLOSpec(name="uptime", type="uptime", objective=0.999),
        SLOSpec(name="response", type="incident_response", objective=0.9),
    ],
    credits=[
        CreditTier(slo="availability", below=0.999, credit=0.1),
        CreditTier(slo="availability", below=0.99, credit=0.25),
        CreditTier(slo="uptime", below=0.999, credit=0.1),
        CreditTier(slo="uptime", below=0.995, credit=0.2),
    ],
    credit_cap=0.3,
)


@pytest.mark.parametrize(
    ("availability", "uptime", "share"),
    [
        (0.9995, 0.9995, 0.0),
        (0.999, 0.999, 0.0),  # at the bound is not below it
        (0.998, 0.9995, 0.1),
        (0.98, 0.9995, 0.25),
        (0.998, 0.996, 0.2),
        (0.98, 0.99, 0.3),  # 0.25 + 0.2, capped
    ],
)
def test_each_slo_earns_its_largest_tier_and_the_sum_is_capped(
    availability: float, uptime: float, share: float
) -> None:
    values = {"availability": availability, "uptime": uptime}
    assert credit_share(SPEC, values)[0] == pytest.approx(share)
    assert credit_amount(SPEC, values) == pytest.approx(share * 2000.0)


def test_the_reasons_name_each_slo_missed_and_the_cap() -> None:
    _, reasons = credit_share(SPEC, {"availability": 0.98, "uptime": 0.99})
    assert [r.split(" ")[0] for r in reasons] == ["availability", "uptime", "credits"]


def test_a_missing_or_unknown_slo_value_is_refused() -> None:
    with pytest.raises(ValueError, match="uptime"):
        credit_share(SPEC, {"availability": 0.99})
    with pytest.raises(ValueError, match="latency"):
        credit_share(SPEC, {"availability": 0.99, "uptime": 0.99, "latency": 0.9})


value = st.floats(min_value=0.0, max_value=1.0)


@given(value, value, value, value)
def test_a_lower_sli_never_earns_a_smaller_credit(a: float, b: float, c: float, d: float) -> None:
    worse = {"availability": min(a, b), "uptime": min(c, d)}
    better = {"availability": max(a, b), "uptime": max(c, d)}
    assert credit_share(SPEC, worse)[0] >= credit_share(SPEC, better)[0]
    assert 0.0 <= credit_share(SPEC, worse)[0] <= SPEC.credit_cap


tiers = st.lists(
    st.builds(
        CreditTier,
        slo=st.sampled_from(["availability", "uptime"]),
        below=st.floats(min_value=0.01, max_value=0.99),
        credit=st.floats(min_value=0.01, max_value=1.0),
    ),
    max_size=6,
)


@given(tiers, st.floats(min_value=0.01, max_value=1.0), value, value, value, value)
def test_a_lower_sli_never_earns_a_smaller_credit_whatever_the_schedule(
    schedule: list[CreditTier], cap: float, a: float, b: float, c: float, d: float
) -> None:
    spec = SPEC.model_copy(update={"credits": schedule, "credit_cap": cap})
    worse = {"availability": min(a, b), "uptime": min(c, d)}
    better = {"availability": max(a, b), "uptime": max(c, d)}
    assert credit_share(spec, worse)[0] >= credit_share(spec, better)[0]
