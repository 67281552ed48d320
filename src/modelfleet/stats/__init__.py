"""Pure statistics shared by every layer: sketches, histograms, and the tests built on them.

Nothing here does I/O or reads the clock: numbers in, numbers out.
"""

from modelfleet.stats.drift import (
    ChiSquare,
    RawDrift,
    chi_square,
    drift_raw,
    js_distance,
    ks_binned,
    learned_threshold,
    psi,
    wasserstein_binned,
)
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
    "ChiSquare",
    "Histogram",
    "LatencySketch",
    "MannWhitney",
    "Proportions",
    "RawDrift",
    "chi_square",
    "drift_raw",
    "fisher_exact_greater",
    "js_distance",
    "ks_binned",
    "learned_threshold",
    "mann_whitney_binned",
    "psi",
    "quantile_edges",
    "two_proportion_test",
    "wasserstein_binned",
]
