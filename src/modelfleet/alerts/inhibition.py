"""Inhibition: while a cause fires, the alerts it explains are muted.

Prometheus Alertmanager's semantics (`inhibit/inhibit.go`): a rule mutes a target alert when
the target matches the rule's `target_matchers` and some *firing* alert matches its
`source_matchers` with the same value for every label in `equal` (a label an alert lacks has
the empty value, so a label missing on both sides is equal). When the target matches the
source side of the rule too, alerts that also match both sides are not counted as sources:
otherwise two such alerts would mute each other, or one would mute itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelfleet.alerts.alert import Alert
from modelfleet.alerts.labels import Matcher, matches_all
from modelfleet.config.alerting import InhibitRule


def inhibitors(target: Alert, firing: Sequence[Alert], rules: Sequence[InhibitRule]) -> list[str]:
    """Fingerprints of the alerts in `firing` that inhibit `target`, each once, in order.

    Alerts in `firing` that have resolved are ignored; an alert never inhibits itself.
    """
    found: dict[str, None] = {}
    for rule in rules:
        sources = [Matcher.parse(m) for m in rule.source_matchers]
        targets = [Matcher.parse(m) for m in rule.target_matchers]
        if not matches_all(targets, target.labels):
            continue
        two_sided = matches_all(sources, target.labels)
        for source in firing:
            if (
                source.firing
                and source.fingerprint != target.fingerprint
                and matches_all(sources, source.labels)
                and all(source.labels.get(n, "") == target.labels.get(n, "") for n in rule.equal)
                and not (two_sided and matches_all(targets, source.labels))
            ):
                found[source.fingerprint] = None
    return list(found)
