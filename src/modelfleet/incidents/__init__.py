"""Incidents: records and timelines of what people responded to, MTTD/MTTR, postmortems."""

from modelfleet.incidents.controller import IncidentController
from modelfleet.incidents.postmortem import postmortem
from modelfleet.incidents.records import (
    Incident,
    Status,
    TimelineEntry,
    get_incident,
    list_incidents,
    summary,
    timeline,
)

__all__ = [
    "Incident",
    "IncidentController",
    "Status",
    "TimelineEntry",
    "get_incident",
    "list_incidents",
    "postmortem",
    "summary",
    "timeline",
]
