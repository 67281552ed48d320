"""Scenarios that show and prove the system: the demo now, traffic and faults later."""
