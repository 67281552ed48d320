"""Labels and fingerprints: how alerts are named and told apart.

As in Prometheus Alertmanager: an alert *is* its label set; its fingerprint is a hash of the
sorted pairs, so the same alert raised twice, by any source, is one alert. The matchers that
select alerts are fleet.yaml's (config/matchers.py), re-exported here for the alert manager.
"""

from __future__ import annotations

import hashlib

from modelfleet.config.matchers import Labels, Matcher, matches_all, parse_matchers

__all__ = ["Labels", "Matcher", "fingerprint", "matches_all", "parse_matchers"]


def fingerprint(labels: Labels) -> str:
    """A stable 16-hex-digit hash of the label set, independent of order."""
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
