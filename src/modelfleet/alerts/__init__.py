"""Alert manager: fingerprints, grouping, inhibition, silences, routing, on-call, notifiers."""
