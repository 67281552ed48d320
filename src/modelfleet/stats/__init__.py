"""Pure statistics shared by every layer: sketches, histograms, and the tests built on them.

Nothing here does I/O or reads the clock: numbers in, numbers out.
"""

from modelfleet.stats.histogram import Histogram, quantile_edges
from modelfleet.stats.significance import (
    MannWhitney,
    Proportions,
    fisher_exact_greater,
    mann_whitney_binned,
    two_proportion_test,
)
from modelfleet.stats.sketch import LatencySketch

__all__ = [
    "Histogram",
    "LatencySketch",
    "MannWhitney",
    "Proportions",
    "fisher_exact_greater",
    "mann_whitney_binned",
    "quantile_edges",
    "two_proportion_test",
]
