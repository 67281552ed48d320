"""A latency sketch: quantiles within a fixed relative error, merged exactly by addition.

The sketch is DDSketch (Masson, Rim, Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch
with Relative-Error Guarantees", VLDB 2019). For a relative accuracy alpha, let

    gamma = (1 + alpha) / (1 - alpha)

A value x > 0 is counted in bucket i = ceil(log_gamma(x)), which covers (gamma^(i-1), gamma^i],
and every value in bucket i is estimated by

    x_hat = 2 * gamma^i / (gamma + 1)

so |x_hat - x| <= alpha * x for every x in the bucket. A quantile is estimated by the bucket
holding the value of that rank, and inherits the bound. A sketch is only counts per bucket, so
sketches merge by adding counts: merging gives exactly the sketch of all the values, whatever
the order or grouping of the merges, which is what lets any number of gateway workers combine.

Conventions:

- `quantile(q)` estimates the lower q-quantile: the value at 0-based rank floor(q * (n - 1)) of
  the values sorted ascending. q=0 and q=1 give the exact minimum and maximum.
- Values at or below `min_value` (1e-9 s, far below any latency a network round trip allows)
  are counted as zeros, estimated by 0 clamped to the exact minimum.
- An empty sketch has no quantiles, minimum or maximum: they are None.
- The sum is kept as an integer number of 2^-64 s, so it is the same bit for bit however the
  sketches were merged; a float sum would change in its last bits with the order of additions.

>>> sketch = LatencySketch()
>>> for latency_s in (0.010, 0.020, 0.030, 0.040, 1.000):
...     sketch.add(latency_s)
>>> sketch.count, sketch.min, sketch.max
(5, 0.01, 1.0)
>>> median = sketch.quantile(0.5)
>>> abs(median - 0.030) <= 0.01 * 0.030
True
>>> other = LatencySketch()
>>> other.add(0.030, count=2)
>>> sketch.merge(other)
>>> sketch.count, round(sketch.sum, 6)
(7, 1.16)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

DEFAULT_ALPHA = 0.01
DEFAULT_MIN_VALUE = 1e-9

_SUM_SCALE_BITS = 64
_SUM_SCALE = float(2**_SUM_SCALE_BITS)
# The largest value whose scaled sum term is still a finite float.
_MAX_VALUE = math.ldexp(1.0, 1023 - _SUM_SCALE_BITS)


class LatencySketch:
    """Counts of non-negative values (seconds) in log-spaced buckets, with exact count, sum, min, max."""

    __slots__ = (
        "_buckets",
        "_count",
        "_gamma",
        "_inverse_log_gamma",
        "_max",
        "_min",
        "_sum_units",
        "_zero_count",
        "alpha",
        "min_value",
    )

    def __init__(
        self, alpha: float = DEFAULT_ALPHA, *, min_value: float = DEFAULT_MIN_VALUE
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"relative accuracy alpha must be in (0, 1), got {alpha!r}")
        if not 0.0 < min_value < 1.0:
            raise ValueError(f"min_value must be in (0, 1), got {min_value!r}")
        self.alpha = alpha
        self.min_value = min_value
        self._gamma = (1.0 + alpha) / (1.0 - alpha)
        self._inverse_log_gamma = 1.0 / math.log(self._gamma)
        self._buckets: dict[int, int] = {}
        self._zero_count = 0
        self._count = 0
        self._sum_units = 0
        self._min = math.inf
        self._max = -math.inf

    def add(self, value: float, count: int = 1) -> None:
        """Count `value` (seconds, finite, >= 0) `count` times."""
        if not 0.0 <= value <= _MAX_VALUE:  # also refuses NaN, which fails every comparison
            raise ValueError(f"a latency must be a finite number of seconds >= 0, got {value!r}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count!r}")
        if value > self.min_value:
            index = math.ceil(math.log(value) * self._inverse_log_gamma)
            buckets = self._buckets
            buckets[index] = buckets.get(index, 0) + count
        else:
            self._zero_count += count
        self._count += count
        self._sum_units += int(value * _SUM_SCALE) * count
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value

    def merge(self, other: LatencySketch) -> None:
        """Add `other`'s counts into this sketch; both must have the same alpha and min_value."""
        if (self.alpha, self.min_value) != (other.alpha, other.min_value):
            raise ValueError(
                "cannot merge sketches with different accuracy: "
                f"alpha {self.alpha} and {other.alpha}, "
                f"min_value {self.min_value} and {other.min_value}"
            )
        buckets = self._buckets
        for index, count in other._buckets.items():
            buckets[index] = buckets.get(index, 0) + count
        self._zero_count += other._zero_count
        self._count += other._count
        self._sum_units += other._sum_units
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def quantile(self, q: float) -> float | None:
        """The lower `q`-quantile within relative error alpha, or None if the sketch is empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q!r}")
        if self._count == 0:
            return None
        rank = math.floor(q * (self._count - 1))
        if rank == 0:
            return self._min
        if rank == self._count - 1:
            return self._max
        if rank < self._zero_count:
            return self._min  # the estimate 0, clamped to the values actually seen
        seen = self._zero_count
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen > rank:
                break
        estimate = 2.0 * self._gamma**index / (self._gamma + 1.0)
        # Clamping can only move the estimate towards the true value, which lies in [min, max].
        return min(max(estimate, self._min), self._max)

    @property
    def count(self) -> int:
        """How many values were added."""
        return self._count

    @property
    def sum(self) -> float:
        """The sum of the values added, in seconds (exact to 2^-64 s, then rounded once)."""
        return self._sum_units / (1 << _SUM_SCALE_BITS)

    @property
    def min(self) -> float | None:
        """The smallest value added, exactly; None if empty."""
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        """The largest value added, exactly; None if empty."""
        return self._max if self._count else None

    def bucket_counts(self) -> dict[float, int]:
        """Counts per bucket, keyed by the bucket's position in the order of values.

        Bucket i has key i and the zero bucket key -inf, so the keys sort as the values do and
        two sketches of the same alpha compare bin by bin (as a rank test on them does).
        Empty buckets are left out; the keys come in ascending order.
        """
        counts: dict[float, int] = {-math.inf: self._zero_count} if self._zero_count else {}
        for index in sorted(self._buckets):
            counts[index] = self._buckets[index]
        return counts

    def copy(self) -> LatencySketch:
        """An independent sketch with the same counts."""
        twin = LatencySketch(self.alpha, min_value=self.min_value)
        twin.merge(self)
        return twin

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: buckets as two parallel lists, indexes ascending."""
        indexes = sorted(self._buckets)
        return {
            "alpha": self.alpha,
            "min_value": self.min_value,
            "zero_count": self._zero_count,
            "indexes": indexes,
            "counts": [self._buckets[i] for i in indexes],
            # A decimal string: the sum passes 2**64 units after a few seconds of latency, and
            # JSON integers that large are not portable (orjson, JavaScript refuse them).
            "sum_units": str(self._sum_units),
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencySketch:
        """The sketch that `to_dict` wrote; ValueError if `data` is not such a dict."""
        try:
            sketch = cls(float(data["alpha"]), min_value=float(data["min_value"]))
            indexes, counts = list(data["indexes"]), list(data["counts"])
            zero_count, sum_text = data["zero_count"], data["sum_units"]
            low, high = data["min"], data["max"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a latency sketch: {exc}") from exc
        if not (isinstance(sum_text, str) and sum_text.isdigit()):
            raise ValueError("not a latency sketch: sum_units must be a string of digits")
        sum_units = int(sum_text)
        integers = [zero_count, sum_units, *indexes, *counts]
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in integers):
            raise ValueError("not a latency sketch: indexes, counts and sums must be integers")
        if len(indexes) != len(counts) or len(set(indexes)) != len(indexes):
            raise ValueError("not a latency sketch: indexes must be unique, one count each")
        if zero_count < 0 or sum_units < 0 or any(c < 1 for c in counts):
            raise ValueError("not a latency sketch: counts must be positive")
        sketch._buckets = dict(zip(indexes, counts, strict=True))
        sketch._zero_count = zero_count
        sketch._count = zero_count + sum(counts)
        sketch._sum_units = sum_units
        if sketch._count:
            if low is None or high is None:
                raise ValueError("not a latency sketch: a non-empty sketch needs min and max")
            sketch._min, sketch._max = float(low), float(high)
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencySketch):
            return NotImplemented
        return (
            self.alpha == other.alpha
            and self.min_value == other.min_value
            and self._zero_count == other._zero_count
            and self._sum_units == other._sum_units
            and self.min == other.min
            and self.max == other.max
            and self._buckets == other._buckets
        )

    def __repr__(self) -> str:
        return (
            f"LatencySketch(alpha={self.alpha}, count={self._count}, "
            f"min={self.min}, max={self.max}, buckets={len(self._buckets)})"
        )
