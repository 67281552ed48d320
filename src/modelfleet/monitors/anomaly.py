"""Streaming anomaly detection on metric streams: the contract, the detector, a CSV front end.

Role: the `Detector` of the monitors (DESIGN.md, "Contracts"): one point at a time,
`update(t, x) -> score` in [0, 1], with `alarm_` saying whether that point raised an alarm,
and a state that serializes to JSON (`state()`, `from_state(...)`) so that a restart loses
nothing. `SeasonalDetector` is the one implementation (its model in
`modelfleet.monitors.seasonal`): a robust daily and weekly forecast, a spike test and a
level-shift test on its residuals, each point's p-value from the stream's own tail.

- `update(t, x) -> float`: the score; `alarm_` is then the alarm rule's answer. t is a
  datetime (naive means UTC) or epoch seconds; x None or NaN is a missing point (score 0,
  nothing learned).
- `step(t, x) -> Verdict`: the same, with the expected value, the band outside which a point
  alarms on its own, z and the p-value.
- `peek(t, x) -> Verdict`: judges a provisional point (a minute still filling) without
  learning from it.

The alarm rule: a point alarms when its p-value (the smallest of the tests in the `direction`
that is bad for the metric, times their number) is below `alpha`, the chance that a normal
point alarms; its score is -ln p / (-ln p - ln alpha): 0.5 at the threshold, 1 as p -> 0.
Nothing alarms during the first `warm_up` points (score 0), and level shifts not before the
first day is learned. A weekly pattern is known once a week has been seen: before that, the
first weekend can alarm. So the warm-up of a stream with a daily cycle is a day, with a
weekly one a week; a stream with neither is judged by its level after `warm_up` points.

    >>> from datetime import UTC, datetime, timedelta
    >>> detector = SeasonalDetector(direction="up")
    >>> start = datetime(2026, 11, 2, tzinfo=UTC)
    >>> for minute in range(600):  # ten quiet hours: 100 requests a minute, give or take
    ...     score = detector.update(start + timedelta(minutes=minute), 100.0 + minute % 7)
    >>> detector.alarm_
    False
    >>> verdict = detector.step(start + timedelta(minutes=600), 180.0)
    >>> verdict.alarm, verdict.score > 0.5, round(verdict.expected)
    (True, True, 103)
    >>> detector.step(start + timedelta(minutes=601), 40.0).alarm  # a drop: not bad for "up"
    False
    >>> import json
    >>> restored = SeasonalDetector.from_state(json.loads(json.dumps(detector.state())))
    >>> t = start + timedelta(minutes=602)
    >>> restored.update(t, 150.0) == detector.update(t, 150.0)
    True

`detect_csv` runs a detector over a `timestamp,value` file and writes each row's score and
alarm: the CLI's `modelfleet anomaly detect FILE.csv`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol, Self, TextIO

from modelfleet.monitors.seasonal import JSON, Direction, SeasonalDetector, Timestamp, Verdict

__all__ = [
    "BAD_DIRECTION",
    "JSON",
    "CsvRowError",
    "DetectionSummary",
    "Detector",
    "Direction",
    "SeasonalDetector",
    "Timestamp",
    "Verdict",
    "detect_csv",
    "parse_timestamp",
]

BAD_DIRECTION: Final[dict[str, Direction]] = {
    "request_rate": "both",  # a drop to zero is an outage, a spike is load
    "error_rate": "up",
    "latency_p50": "up",
    "latency_p99": "up",
    "confidence": "down",
    "drift_score": "up",
}


class Detector(Protocol):
    """A streaming detector: scores one point at a time; its state survives a restart."""

    @property
    def alarm_(self) -> bool:
        """Whether the last point given to `update` raised an alarm."""
        ...

    def update(self, t: Timestamp, x: float | None) -> float:
        """Score the point (t, x) in [0, 1] and learn from it."""
        ...

    def state(self) -> dict[str, JSON]:
        """Settings and learned state, as JSON-serializable data."""
        ...

    @classmethod
    def from_state(cls, state: Mapping[str, JSON]) -> Self:
        """The detector whose `state()` this was, to go on exactly where it stopped."""
        ...


class CsvRowError(ValueError):
    """A row of a metric CSV that cannot be read: which line, and what is wrong with it."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class DetectionSummary:
    """What `detect_csv` read and found."""

    rows: int  # data rows, missing values included
    alarms: int
    missing: int  # rows whose value was empty or NaN


_MISSING: Final = frozenset({"", "nan", "null", "none", "na"})


def parse_timestamp(text: str) -> datetime | float:
    """An ISO 8601 time (naive means UTC) or epoch seconds; ValueError when it is neither."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        return datetime.fromisoformat(text)
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a time")
    return seconds


def detect_csv(
    source: Path | TextIO,
    out: TextIO,
    *,
    direction: Direction = "both",
    alpha: float = 3e-5,
    warm_up: int = 100,
    min_scale: float = 0.0,
) -> DetectionSummary:
    """Score the `timestamp,value` rows of source in order; write `timestamp,value,score,alarm`.

    A header row is optional; columns after the second are ignored. Timestamps are ISO 8601
    or epoch seconds; an empty or NaN value is a missing point (score 0). A row that cannot be
    read raises `CsvRowError` with its line number.
    """
    if isinstance(source, Path):
        with source.open(newline="", encoding="utf-8-sig") as stream:
            return detect_csv(
                stream, out, direction=direction, alpha=alpha, warm_up=warm_up, min_scale=min_scale
            )
    detector = SeasonalDetector(direction, alpha=alpha, warm_up=warm_up, min_scale=min_scale)
    reader = csv.reader(source)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "score", "alarm"])
    rows = alarms = missing = 0
    first = True
    for row in reader:
        if not any(field.strip() for field in row):
            continue
        line = reader.line_num
        if len(row) < 2:
            raise CsvRowError(line, "expected timestamp,value but found one field")
        stamp, text = row[0].strip(), row[1].strip()
        try:
            t = parse_timestamp(stamp)
        except ValueError:
            if first and not _is_number(text):
                first = False
                continue  # the header
            raise CsvRowError(
                line, f"timestamp {stamp!r} is neither ISO 8601 nor epoch seconds"
            ) from None
        first = False
        value: float | None = None
        if text.lower() in _MISSING:
            missing += 1
        else:
            try:
                value = float(text)
            except ValueError:
                raise CsvRowError(line, f"value {text!r} is not a number") from None
            if math.isinf(value):
                raise CsvRowError(line, f"value {text!r} is not finite")
        score = detector.update(t, value)
        rows += 1
        alarms += detector.alarm_
        writer.writerow([stamp, text, f"{score:.6f}", int(detector.alarm_)])
    return DetectionSummary(rows, alarms, missing)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
