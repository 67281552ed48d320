"""Monitoring: reference profiles, and drift, data-quality and output-quality monitors per tenant."""

from modelfleet.monitors.controller import MonitorController
from modelfleet.monitors.results import MonitorStatus, latest_results

__all__ = ["MonitorController", "MonitorStatus", "latest_results"]
