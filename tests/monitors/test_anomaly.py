"""The streaming anomaly detector: quiet on normal seasonal traffic, quick on anomalies, and
exactly resumable from its JSON state; and its CSV front end."""

from __future__ import annotations

import doctest
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.monitors import anomaly, seasonal, tail
from modelfleet.monitors.anomaly import (
    BAD_DIRECTION,
    CsvRowError,
    Detector,
    SeasonalDetector,
    detect_csv,
)

MONDAY = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
MINUTE, DAY = 60.0, 86400.0


def seasonal_minutes(
    days: int, rng: np.random.Generator, *, noise: str = "gaussian", weekend: float = 0.35
) -> tuple[list[float], list[float]]:
    """Minute request counts from Monday 00:00: a daily cycle peaking at 14:00, weekends lower
    by `weekend`, Gaussian noise (sd 5) or Poisson counts."""
    t = MONDAY + np.arange(days * 1440) * MINUTE
    hour = (t % DAY) / 3600
    daily = np.cos(2 * math.pi * (hour - 14) / 24)
    is_weekend = ((t - MONDAY) // DAY) % 7 >= 5
    rate = 150 * (1 + 0.6 * daily) * np.where(is_weekend, 1 - weekend, 1.0)
    poisson = noise == "poisson"
    x = rng.poisson(rate).astype(float) if poisson else rate + rng.normal(0, 5, t.size)
    return t.tolist(), x.tolist()


def run(detector: SeasonalDetector, t: list[float], x: list[float | None]) -> list[bool]:
    alarms = []
    for ti, xi in zip(t, x, strict=True):
        detector.update(ti, xi)
        alarms.append(detector.alarm_)
    return alarms


def noisy_level(n: int, seed: int = 1, level: float = 100.0, sd: float = 2.0) -> list[float]:
    return (level + np.random.default_rng(seed).normal(0, sd, n)).tolist()


def minutes(n: int, start: float = MONDAY) -> list[float]:
    return [start + i * MINUTE for i in range(n)]


def test_the_module_examples_run() -> None:
    for module in (anomaly, seasonal, tail):
        assert doctest.testmod(module, raise_on_error=True).attempted > 0


def test_the_seasonal_detector_is_a_detector() -> None:
    detector: Detector = SeasonalDetector()
    assert detector.update(MONDAY, 1.0) == 0.0
    assert detector.alarm_ is False


@pytest.mark.parametrize("noise", ["gaussian", "poisson"])
def test_a_fault_free_week_with_daily_and_weekly_seasons_raises_no_alarm(noise: str) -> None:
    """The project's goal. The warm-up is one week: the first weekend is the first time the
    detector sees a weekend. Quiet from then on, for a whole week, with both directions bad."""
    t, x = seasonal_minutes(14, np.random.default_rng(11), noise=noise)
    alarms = run(SeasonalDetector("both"), t, x)
    assert not any(alarms[7 * 1440 :])


def test_without_a_weekly_pattern_it_is_quiet_from_its_second_day() -> None:
    t, x = seasonal_minutes(7, np.random.default_rng(12), noise="poisson", weekend=0.0)
    alarms = run(SeasonalDetector("both"), t, x)
    assert not any(alarms[1440:])


def test_a_spike_alarms_on_its_first_point() -> None:
    t, x = seasonal_minutes(3, np.random.default_rng(13))
    detector = SeasonalDetector("up")
    run(detector, t[:-1], x[:-1])
    verdict = detector.step(t[-1], x[-1] + 60)  # 12 standard deviations
    assert verdict.alarm and detector.alarm_
    assert verdict.score > 0.5 > detector.peek(t[-1] + MINUTE, x[-1]).score


def test_a_level_shift_in_the_bad_direction_alarms_within_a_few_points() -> None:
    t, x = seasonal_minutes(9, np.random.default_rng(14))
    detector = SeasonalDetector("up")
    run(detector, t[:-30], x[:-30])
    shifted = [v + 15 for v in x[-30:]]  # 3 standard deviations: few points are spikes alone
    alarms = run(detector, t[-30:], shifted)
    assert any(alarms[:10])


def test_a_deviation_in_the_good_direction_does_not_alarm() -> None:
    """Errors falling to zero for five hours is good news for direction 'up'."""
    errors = np.random.default_rng(15).poisson(5.0, 9 * 1440).astype(float).tolist()
    quiet = slice(8 * 1440, 8 * 1440 + 300)
    errors[quiet] = [0.0] * 300
    t = minutes(9 * 1440)
    assert not any(run(SeasonalDetector("up"), t, errors)[quiet])
    assert any(run(SeasonalDetector("down"), t, errors)[quiet])


def test_spikes_in_the_history_do_not_inflate_the_scale() -> None:
    x = noisy_level(2000)
    for i in (600, 900, 1200, 1500):
        x[i] += 200.0  # 100 standard deviations
    detector = SeasonalDetector("up")
    run(detector, minutes(1999), x[:1999])
    expected = detector.peek(minutes(2000)[-1], 100.0).expected
    assert detector.peek(minutes(2000)[-1], 100.0).upper - expected < 7 * 2.0
    assert detector.step(minutes(2000)[-1], expected + 8 * 2.0).alarm  # 8 sd: still an anomaly


def test_a_value_normal_at_noon_alarms_at_midnight() -> None:
    t, x = seasonal_minutes(4, np.random.default_rng(16), weekend=0.0)
    detector = SeasonalDetector("up")
    run(detector, t, x)
    noon = MONDAY + 4 * DAY + 14 * 3600
    midnight = MONDAY + 4 * DAY + 24 * 3600
    busy = 240.0  # the afternoon's peak
    assert not detector.peek(noon, busy).alarm
    assert detector.peek(midnight, busy).alarm


def test_a_restored_detector_scores_exactly_as_one_that_never_stopped() -> None:
    t, x = seasonal_minutes(9, np.random.default_rng(17), noise="poisson")
    x[3000] = None  # type: ignore[call-overload]
    x[9000] += 400
    x[10000:10100] = [v - 120 for v in x[10000:10100]]
    reference = SeasonalDetector("both")
    scores = [reference.update(ti, xi) for ti, xi in zip(t, x, strict=True)]
    for cut in (5, 700, 1440, 8200, 10050):
        first = SeasonalDetector("both")
        for ti, xi in zip(t[:cut], x[:cut], strict=True):
            first.update(ti, xi)
        resumed = SeasonalDetector.from_state(json.loads(json.dumps(first.state())))
        assert [resumed.update(ti, xi) for ti, xi in zip(t[cut:], x[cut:], strict=True)] == (
            scores[cut:]
        )


values = st.one_of(st.none(), st.just(math.nan), st.floats(min_value=-1e9, max_value=1e9))


@given(
    st.lists(st.tuples(st.floats(min_value=0.0, max_value=7200.0), values), max_size=150),
    st.integers(min_value=0, max_value=150),
    st.sampled_from(["up", "down", "both"]),
)
def test_scores_are_in_the_unit_interval_and_the_state_round_trips(
    points: list[tuple[float, float | None]], cut: int, direction: str
) -> None:
    t = MONDAY
    detector = SeasonalDetector(direction, warm_up=5)  # type: ignore[arg-type]
    copy = None
    for i, (gap, value) in enumerate(points):
        if i == cut:
            copy = SeasonalDetector.from_state(json.loads(json.dumps(detector.state())))
        t += gap
        score = detector.update(t, value)
        assert 0.0 <= score <= 1.0
        if copy is not None:
            assert copy.update(t, value) == score
    json.dumps(detector.state(), allow_nan=False)


@given(st.floats(min_value=-1e6, max_value=1e6), st.integers(min_value=0, max_value=2))
def test_a_constant_series_never_alarms_until_it_changes(level: float, decimals: int) -> None:
    level = round(level, decimals)
    detector = SeasonalDetector("both", warm_up=10)
    scores = [detector.update(t, level) for t in minutes(300)]
    assert not detector.alarm_ and max(scores) == 0.0
    changed = level + max(1.0, abs(level) * 0.1)
    assert detector.step(MONDAY + 300 * MINUTE, changed).alarm


def test_a_missing_point_scores_zero_and_teaches_nothing() -> None:
    detector = SeasonalDetector()
    run(detector, minutes(200), noisy_level(200))
    before = json.dumps(detector.state())
    assert detector.update(MONDAY + 200 * MINUTE, None) == 0.0
    assert detector.update(MONDAY + 201 * MINUTE, math.nan) == 0.0
    assert json.dumps(detector.state()) == before


def test_peek_learns_nothing() -> None:
    detector = SeasonalDetector()
    run(detector, minutes(200), noisy_level(200))
    before = json.dumps(detector.state())
    detector.peek(MONDAY + 200 * MINUTE, 1000.0)
    assert json.dumps(detector.state()) == before


def test_a_series_shorter_than_a_day_is_judged_by_its_level() -> None:
    x = noisy_level(300, seed=3)
    x[250] += 30.0  # 15 standard deviations
    alarms = run(SeasonalDetector("both"), minutes(300), x)
    assert alarms[250] and sum(alarms) == 1


def test_a_long_change_stops_alarming_and_its_end_is_no_news() -> None:
    x = noisy_level(9 * 1440, seed=4)
    start = 8 * 1440
    x[start : start + 200] = [v + 40.0 for v in x[start : start + 200]]  # 20 sd, 200 minutes
    alarms = run(SeasonalDetector("both", relearn_after=30), minutes(9 * 1440), x)
    assert alarms[start] and not any(alarms[start + 40 : start + 200])
    assert not any(alarms[start + 200 :])  # back to where it was: the episode is over


def test_naive_datetimes_are_utc_and_aware_ones_are_seasonal_in_their_own_wall_time() -> None:
    t, x = seasonal_minutes(2, np.random.default_rng(18), weekend=0.0)
    as_epoch, as_naive = SeasonalDetector(), SeasonalDetector()
    naive = [datetime.fromtimestamp(s, UTC).replace(tzinfo=None) for s in t]
    assert [as_epoch.update(a, v) for a, v in zip(t, x, strict=True)] == [
        as_naive.update(b, v) for b, v in zip(naive, x, strict=True)
    ]
    east = timezone(timedelta(hours=6))
    local = SeasonalDetector()
    for s, v in zip(t, x, strict=True):  # the same cycle, peaking at 14:00 local time
        local.update(datetime.fromtimestamp(s - 6 * 3600, east), v)
    assert local.daily_ == pytest.approx(as_epoch.daily_)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="direction"):
        SeasonalDetector("sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        SeasonalDetector(alpha=0.0)
    with pytest.raises(ValueError, match="not the state"):
        SeasonalDetector.from_state({"kind": "other"})


def test_each_metric_has_its_bad_direction() -> None:
    assert BAD_DIRECTION == {
        "request_rate": "both",
        "error_rate": "up",
        "latency_p50": "up",
        "latency_p99": "up",
        "confidence": "down",
        "drift_score": "up",
    }


def test_detect_csv_writes_a_score_and_an_alarm_for_each_row(tmp_path: Path) -> None:
    x = noisy_level(400, seed=5)
    x[300] += 50.0
    rows = [
        f"{datetime.fromtimestamp(t, UTC).isoformat()},{v}"
        for t, v in zip(minutes(400), x, strict=True)
    ]
    rows[100] = f"{MONDAY + 100 * MINUTE},"  # epoch seconds, and a missing value
    path = tmp_path / "latency.csv"
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    out = io.StringIO()
    summary = detect_csv(path, out, direction="up")
    lines = out.getvalue().splitlines()
    assert lines[0] == "timestamp,value,score,alarm"
    assert len(lines) == 401 and summary.rows == 400 and summary.missing == 1
    fields = [line.split(",") for line in lines[1:]]
    assert [f[0] for f in fields] == [r.split(",")[0] for r in rows]
    assert all(0.0 <= float(f[2]) <= 1.0 for f in fields)
    alarmed = [i for i, f in enumerate(fields) if f[3] == "1"]
    assert alarmed == [300] and summary.alarms == 1
    without_header = io.StringIO()
    detect_csv(io.StringIO("\n".join(rows)), without_header, direction="up")
    assert without_header.getvalue() == out.getvalue()


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("2026-01-05T00:00:00,1\n2026-01-05T00:01:00,abc\n", 2, "value 'abc' is not a number"),
        ("timestamp,value\n2026-01-05T00:00:00,1\nyesterday,2\n", 3, "timestamp 'yesterday'"),
        ("2026-01-05T00:00:00,1\n\n2026-01-05T00:02:00\n", 3, "expected timestamp,value"),
        ("2026-01-05T00:00:00,inf\n", 1, "value .inf. is not finite"),
    ],
)
def test_a_bad_row_names_its_line(body: str, line: int, problem: str) -> None:
    with pytest.raises(CsvRowError, match=f"line {line}: {problem}") as error:
        detect_csv(io.StringIO(body), io.StringIO())
    assert error.value.line == line
