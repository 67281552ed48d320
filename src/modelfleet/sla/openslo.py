"""OpenSLO (v1) export and import of the `SLA` kind, so other SLO tools can read our contracts.

OpenSLO (github.com/OpenSLO/OpenSLO, README "Specification", `apiVersion: openslo/v1`) has
no contract, tenant or money in it, so each of an SLA's SLOs becomes one OpenSLO `SLO` plus
the `SLI` it names by `indicatorRef`, and whatever OpenSLO has no field for travels in the
SLO's `metadata.annotations` under `modelfleet.io/` keys. Importing what was exported gives
back the same SLA, field for field.

    modelfleet                  OpenSLO
    ──────────────────────────  ───────────────────────────────────────────────────────────
    SLA metadata.name           SLO spec.service, and annotation modelfleet.io/sla
    SLA metadata.labels         SLO metadata.labels
    SLOSpec (one per SLO)       SLO `<sla>-<slo>`, and SLI `<sla>-<slo>-sli` by indicatorRef;
                                annotations modelfleet.io/slo (name), modelfleet.io/slo-type
    objective                   spec.objectives[0].target
    calendar months, time_zone  spec.timeWindow: [{duration: 1M, isRolling: false,
                                calendar: {startTime: "2026-01-01 00:00:00", timeZone}}]
    availability                Occurrences; ratioMetric good "valid - 5xx" / total "valid"
    latency                     Occurrences; ratioMetric good "valid within <threshold>"
                                (metricSource spec.threshold, e.g. 500ms) / total "valid"
    uptime                      Timeslices; the same ratio per minute: timeSliceWindow 1m,
                                timeSliceTarget = 1 - minute_error_rate
    incident_response           Occurrences over incidents; ratioMetric good "critical
                                incidents acknowledged within <respond_within>" / total
                                "critical incidents"
    everything else             metadata.annotations["modelfleet.io/<field-with-dashes>"]:
                                tenants, tier, models, monthly-fee, currency, credits,
                                credit-cap, maintenance, budget-warning, burn-alerts (on
                                every SLO of the SLA), min-minute-requests, minute-error-rate,
                                respond-within (on the SLO they belong to)

Every `metricSource` has type `modelfleet` and a `query` naming rollup counts ("valid" is
requests neither 4xx nor quota-rejected). Annotation values are strings: names, the tier,
the currency and durations as they are, everything else as JSON. minute-error-rate repeats
`1 - timeSliceTarget` exactly, which floating point cannot; an edited `timeSliceTarget` wins.

An OpenSLO SLO without `modelfleet.io/sla` (one another tool wrote) imports as an SLA of its
own, named after it: an Occurrences ratio SLO is an availability SLO, a Timeslices one (1m
slices) an uptime SLO, with the first objective's target. OpenSLO names no customer, so such
a document must carry `modelfleet.io/tenants` (a JSON list or comma-separated names) or
`modelfleet.io/tier`; its monthly fee is 0 unless `modelfleet.io/monthly-fee` says otherwise.
Documents of other OpenSLO kinds (Service, DataSource, AlertPolicy, ...) are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from modelfleet.config.base import format_duration
from modelfleet.config.schema import SLA, Metadata
from modelfleet.config.sla import SLASpec, SLOSpec, SLOType
from modelfleet.errors import InvalidInput

API_VERSION: Final = "openslo/v1"
PREFIX: Final = "modelfleet.io/"
METRIC_SOURCE: Final = "modelfleet"
# OpenSLO wants a calendar window's start; any month's first midnight gives the same periods.
PERIOD_START: Final = "2026-01-01 00:00:00"

SLA_KEY: Final = PREFIX + "sla"
SLO_KEY: Final = PREFIX + "slo"
TYPE_KEY: Final = PREFIX + "slo-type"

# SLASpec fields carried as annotations: all but `slos` and `time_zone` (the time window's).
_SLA_FIELDS = (
    "tenants",
    "tier",
    "models",
    "monthly_fee",
    "currency",
    "credits",
    "credit_cap",
    "maintenance",
    "budget_warning",
    "burn_alerts",
)
# SLOSpec fields with no OpenSLO home, and the types they matter to.
_SLO_FIELDS = {
    "minute_error_rate": "uptime",
    "min_minute_requests": "uptime",
    "respond_within": "incident_response",
}
_PLAIN = {"tier", "currency", "respond_within"}  # annotated as they are, not as JSON
_NAME_LISTS = {"tenants", "models"}  # hand-written annotations may list them with commas
_BUDGETING = {"uptime": "Timeslices"}  # and Occurrences for the others
_SLICE_WINDOWS = ("1m", 1)  # OpenSLO: a bare number is minutes
_EXACT = 1e-12  # how far minute-error-rate may sit from 1 - timeSliceTarget and still be it

M = TypeVar("M", bound=BaseModel)


def annotation_key(field: str) -> str:
    """The annotation carrying a spec field: `credit_cap` → `modelfleet.io/credit-cap`."""
    return PREFIX + field.replace("_", "-")


# -- export -----------------------------------------------------------------------------------


def export_openslo(sla: SLA) -> list[dict[str, Any]]:
    """The OpenSLO documents of one SLA: for each of its SLOs, an `SLI` then the `SLO`."""
    spec = sla.spec.model_dump(mode="json")
    shared = {SLA_KEY: sla.name}
    for field in _SLA_FIELDS:
        if spec[field] not in (None, []):  # the defaults of tenants, tier and models
            shared[annotation_key(field)] = _encode(field, spec[field])
    documents: list[dict[str, Any]] = []
    for slo in sla.spec.slos:
        documents += [_sli_document(sla, slo), _slo_document(sla, slo, shared)]
    return documents


def export_yaml(slas: Iterable[SLA]) -> str:
    """The OpenSLO documents of every SLA, as one multi-document YAML text."""
    documents = [d for sla in slas for d in export_openslo(sla)]
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


def _encode(field: str, value: Any) -> str:
    return value if field in _PLAIN else json.dumps(value)


def _sli_document(sla: SLA, slo: SLOSpec) -> dict[str, Any]:
    if slo.type == "incident_response":
        within = format_duration(slo.respond_within)
        good = {"query": f"critical incidents acknowledged within {within}"}
        total = {"query": "critical incidents"}
    elif slo.type == "latency":
        assert slo.threshold is not None  # SLOSpec requires it
        threshold = format_duration(slo.threshold)
        good = {"query": f"valid within {threshold}", "threshold": threshold}
        total = {"query": "valid"}
    else:  # availability, and uptime per minute
        good, total = {"query": "valid - 5xx"}, {"query": "valid"}
    return {
        "apiVersion": API_VERSION,
        "kind": "SLI",
        "metadata": {"name": f"{sla.name}-{slo.name}-sli"},
        "spec": {
            "ratioMetric": {
                "counter": True,
                "good": {"metricSource": {"type": METRIC_SOURCE, "spec": good}},
                "total": {"metricSource": {"type": METRIC_SOURCE, "spec": total}},
            }
        },
    }


def _slo_document(sla: SLA, slo: SLOSpec, shared: Mapping[str, str]) -> dict[str, Any]:
    own = slo.model_dump(mode="json")
    changed = slo.model_dump(mode="json", exclude_defaults=True)
    annotations = {**shared, SLO_KEY: slo.name, TYPE_KEY: slo.type}
    for field, type_ in _SLO_FIELDS.items():
        if type_ == slo.type or field in changed:
            annotations[annotation_key(field)] = _encode(field, own[field])
    metadata: dict[str, Any] = {
        "name": f"{sla.name}-{slo.name}",
        "displayName": f"{slo.name} of {sla.name}",
    }
    if sla.metadata.labels:
        metadata["labels"] = dict(sla.metadata.labels)
    metadata["annotations"] = annotations
    objective: dict[str, Any] = {"displayName": slo.name, "target": slo.objective}
    if slo.type == "uptime":
        objective |= {"timeSliceTarget": 1.0 - slo.minute_error_rate, "timeSliceWindow": "1m"}
    return {
        "apiVersion": API_VERSION,
        "kind": "SLO",
        "metadata": metadata,
        "spec": {
            "description": _description(slo),
            "service": sla.name,
            "indicatorRef": f"{sla.name}-{slo.name}-sli",
            "timeWindow": [
                {
                    "duration": "1M",
                    "isRolling": False,
                    "calendar": {"startTime": PERIOD_START, "timeZone": sla.spec.time_zone},
                }
            ],
            "budgetingMethod": _BUDGETING.get(slo.type, "Occurrences"),
            "objectives": [objective],
        },
    }


def _description(slo: SLOSpec) -> str:
    if slo.type == "availability":
        what = "valid requests (4xx and quota rejections excluded) served without a 5xx"
    elif slo.type == "latency":
        assert slo.threshold is not None
        what = f"valid requests answered within {format_duration(slo.threshold)}"
    elif slo.type == "uptime":
        what = (
            f"minutes whose error rate is at most {slo.minute_error_rate:g} (minutes with "
            f"fewer than {slo.min_minute_requests} requests are up)"
        )
    else:
        what = (
            "critical incidents affecting the tenant acknowledged within "
            f"{format_duration(slo.respond_within)}"
        )
    return f"Share of {what} in each calendar month, maintenance windows excluded."


# -- import -----------------------------------------------------------------------------------


def import_yaml(text: str) -> list[SLA]:
    """The SLAs in a multi-document OpenSLO YAML text (see `import_openslo`)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidInput(f"OpenSLO YAML could not be read: {exc}") from exc
    return import_openslo(documents)


def import_openslo(documents: Sequence[Any]) -> list[SLA]:
    """The SLAs that OpenSLO documents describe: their SLOs grouped by `modelfleet.io/sla`.

    Raises InvalidInput naming the document (index, kind, name) and the field at fault.
    """
    indicators: dict[str, _Document] = {}
    groups: dict[str | int, list[_Document]] = {}  # by SLA name, or a foreign SLO's index
    for index, raw in enumerate(documents):
        document = _Document.read(index, raw)
        if document.kind == "SLI":
            if document.name in indicators:
                raise document.refuse("metadata.name", "another SLI has this name")
            indicators[document.name] = document
        elif document.kind == "SLO":
            groups.setdefault(document.annotations.get(SLA_KEY, index), []).append(document)
    return [_sla(group, indicators) for group in groups.values()]


@dataclass(frozen=True)
class _Document:
    """One OpenSLO document, checked as far as any kind of it must be."""

    index: int
    kind: str
    name: str
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    annotations: Mapping[str, str]

    @classmethod
    def read(cls, index: int, raw: Any) -> _Document:
        where = f"OpenSLO document {index}"
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"{where}: is not a mapping")
        if raw.get("apiVersion") != API_VERSION:
            got = raw.get("apiVersion")
            raise InvalidInput(f"{where}: apiVersion: must be {API_VERSION}, got {got!r}")
        kind, metadata, spec = raw.get("kind"), raw.get("metadata"), raw.get("spec")
        if not isinstance(kind, str):
            raise InvalidInput(f"{where}: kind: required, a string")
        if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
            raise InvalidInput(f"{where} ({kind}): metadata.name: required, a string")
        document = cls(index, kind, metadata["name"], metadata, {}, {})
        if not isinstance(spec, Mapping):
            raise document.refuse("spec", "required, a mapping")
        annotations = metadata.get("annotations", {})
        if not isinstance(annotations, Mapping) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise document.refuse("metadata.annotations", "must map names to strings")
        return cls(index, kind, document.name, metadata, spec, annotations)

    def refuse(self, field: str, message: str) -> InvalidInput:
        """The error for `field` of this document."""
        where = f"OpenSLO document {self.index} ({self.kind} {self.name!r})"
        return InvalidInput(f"{where}: {field}: {message}")

    def get(self, path: str, expected: type | tuple[type, ...], default: Any = None) -> Any:
        """The value at a path under spec (`a.b[0].c`), or `default`; refused if not `expected`."""
        value = _at(self.spec, path)
        if value is None:
            return default
        types = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.refuse(f"spec.{path}", f"must be {_shown(types)}, got {value!r}")
        return value


def _at(value: Any, path: str) -> Any:
    """The value at a dotted path (`[0]` is a list's first item), None where there is none."""
    for part in path.replace("[0]", ".0").split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part == "0" and value:
            value = value[0]
        else:
            return None
    return value


def _shown(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def _sla(group: list[_Document], indicators: Mapping[str, _Document]) -> SLA:
    first = group[0]
    shared = _shared_annotations(first)
    for document in group[1:]:
        theirs = _shared_annotations(document)
        for key in sorted(shared.keys() | theirs.keys()):
            if theirs.get(key) != shared.get(key):
                raise document.refuse(
                    _annotation_field(key) if key.startswith(PREFIX) else key,
                    f"differs from document {first.index}'s, of the same SLA",
                )
    slos = [_slo(document, indicators) for document in group]
    if annotation_key("tenants") not in shared and annotation_key("tier") not in shared:
        raise first.refuse(
            _annotation_field(annotation_key("tenants")),
            "required: OpenSLO names no customer; give the tenants (or modelfleet.io/tier) "
            "the SLA applies to",
        )
    fields: dict[str, Any] = {"monthly_fee": 0.0, "slos": slos, "time_zone": _time_zone(first)}
    sources = {"time_zone": "spec.timeWindow[0].calendar.timeZone", "slos": "spec"}
    for field in _SLA_FIELDS:
        key = annotation_key(field)
        if key in shared:
            fields[field] = _decode(first, field, shared[key])
            sources[field] = _annotation_field(key)
    spec = _validated(first, SLASpec, fields, sources, "metadata.annotations")
    name = first.annotations.get(SLA_KEY, first.name)
    labels = _labels(first)
    name_field = _annotation_field(SLA_KEY) if SLA_KEY in first.annotations else "metadata.name"
    metadata = _validated(
        first,
        Metadata,
        {"name": name, "labels": labels},
        {"name": name_field, "labels": "metadata.labels"},
        "metadata",
    )
    return SLA(kind="SLA", metadata=metadata, spec=spec)


def _shared_annotations(document: _Document) -> dict[str, Any]:
    """What every SLO of one SLA repeats: the SLA's annotations, labels and time window."""
    shared: dict[str, Any] = {
        key: document.annotations[key]
        for key in map(annotation_key, _SLA_FIELDS)
        if key in document.annotations
    }
    shared["metadata.labels"] = _labels(document)
    shared["spec.timeWindow"] = document.spec.get("timeWindow")
    return shared


def _annotation_field(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def _decode(document: _Document, field: str, text: str) -> Any:
    if field in _PLAIN:
        return text
    try:
        return json.loads(text)
    except ValueError:
        if field in _NAME_LISTS:
            return [name.strip() for name in text.split(",") if name.strip()]
        raise document.refuse(
            _annotation_field(annotation_key(field)), f"is not JSON: {text!r}"
        ) from None


def _labels(document: _Document) -> dict[str, str]:
    labels = document.metadata.get("labels", {})
    if not isinstance(labels, Mapping):
        raise document.refuse("metadata.labels", "must be a mapping")
    result: dict[str, str] = {}
    for key, value in labels.items():
        # OpenSLO allows a list of strings as a label's value; modelfleet labels are strings.
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(key, str) or not isinstance(value, str):
            raise document.refuse(f"metadata.labels.{key}", "must be a string")
        result[key] = value
    return result


def _time_zone(document: _Document) -> str:
    """The zone of the SLO's calendar months; refused unless its window is one of those."""
    windows = document.spec.get("timeWindow")
    if windows is None:
        return "UTC"
    if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], Mapping):
        raise document.refuse("spec.timeWindow", "must be a list of exactly one window")
    months = "modelfleet measures SLAs over calendar months: duration 1M, isRolling false"
    if document.get("timeWindow[0].duration", str) != "1M":
        raise document.refuse("spec.timeWindow[0].duration", months)
    if document.get("timeWindow[0].isRolling", bool, False):
        raise document.refuse("spec.timeWindow[0].isRolling", months)
    if document.get("timeWindow[0].calendar", Mapping) is None:
        raise document.refuse("spec.timeWindow[0].calendar", months)
    start = document.get("timeWindow[0].calendar.startTime", (str, date))
    if start is not None:
        try:
            moment = datetime.fromisoformat(str(start))
        except ValueError:
            moment = None
        if moment is None or (moment.day, moment.time()) != (1, datetime.min.time()):
            raise document.refuse(
                "spec.timeWindow[0].calendar.startTime",
                f"must be a month's first midnight, like {PERIOD_START!r}; got {start!r}",
            )
    zone: str = document.get("timeWindow[0].calendar.timeZone", str, "UTC")
    return zone


def _slo(document: _Document, indicators: Mapping[str, _Document]) -> SLOSpec:
    indicator, indicator_field = _indicator(document, indicators)
    method = document.get("budgetingMethod", str)
    if method is None:
        raise document.refuse("spec.budgetingMethod", "required")
    if TYPE_KEY in document.annotations:
        type_ = document.annotations[TYPE_KEY]
        if type_ not in get_args(SLOType):
            raise document.refuse(
                _annotation_field(TYPE_KEY), f"must be one of {', '.join(get_args(SLOType))}"
            )
        if method != _BUDGETING.get(type_, "Occurrences"):
            want = _BUDGETING.get(type_, "Occurrences")
            raise document.refuse("spec.budgetingMethod", f"a {type_} SLO is {want}")
    elif method in ("Occurrences", "Timeslices"):
        type_ = "uptime" if method == "Timeslices" else "availability"
    else:
        raise document.refuse(
            "spec.budgetingMethod",
            f"{method!r} has no modelfleet SLO: Occurrences is availability, Timeslices uptime",
        )
    if not isinstance(indicator.get("ratioMetric"), Mapping):
        raise document.refuse(
            f"{indicator_field}.ratioMetric", "required: modelfleet SLOs are ratios of counts"
        )

    fields: dict[str, Any] = {"type": type_}
    sources: dict[str, str] = {"type": _annotation_field(TYPE_KEY)}
    if SLO_KEY in document.annotations:
        fields["name"], sources["name"] = document.annotations[SLO_KEY], _annotation_field(SLO_KEY)
    else:
        fields["name"], sources["name"] = document.name, "metadata.name"
    target = document.get("objectives[0].target", (int, float))
    percent = document.get("objectives[0].targetPercent", (int, float))
    if target is None and percent is None:
        raise document.refuse("spec.objectives[0].target", "required")
    fields["objective"] = target if target is not None else percent / 100
    sources["objective"] = "spec.objectives[0].target"
    for field in _SLO_FIELDS:
        key = annotation_key(field)
        if key in document.annotations:
            fields[field] = _decode(document, field, document.annotations[key])
            sources[field] = _annotation_field(key)
    if type_ == "uptime":
        _minute_slices(document, fields, sources)
    if type_ == "latency":
        path = "ratioMetric.good.metricSource.spec.threshold"
        if _at(indicator, path) is not None:
            fields["threshold"] = _at(indicator, path)
        sources["threshold"] = f"{indicator_field}.{path}"
    # SLOSpec's only whole-model checks are about the latency threshold.
    whole = sources.get("threshold", "spec")
    return _validated(document, SLOSpec, fields, sources, whole)


def _indicator(
    document: _Document, indicators: Mapping[str, _Document]
) -> tuple[Mapping[str, Any], str]:
    """The spec of the SLO's SLI, inline or referenced, and where errors in it are shown."""
    inline = document.get("indicator", Mapping)
    if inline is not None:
        spec = inline.get("spec")
        if not isinstance(spec, Mapping):
            raise document.refuse("spec.indicator.spec", "required, a mapping")
        return spec, "spec.indicator.spec"
    ref = document.get("indicatorRef", str)
    if ref is None:
        raise document.refuse("spec.indicatorRef", "required when spec.indicator is not given")
    if ref not in indicators:
        raise document.refuse("spec.indicatorRef", f"no SLI named {ref!r} among the documents")
    return indicators[ref].spec, f"SLI {ref!r} (document {indicators[ref].index}) spec"


def _minute_slices(document: _Document, fields: dict[str, Any], sources: dict[str, str]) -> None:
    """An uptime SLO's minute error rate, from its time slices."""
    window = document.get("objectives[0].timeSliceWindow", (str, int))
    if window not in _SLICE_WINDOWS:
        raise document.refuse(
            "spec.objectives[0].timeSliceWindow",
            f"uptime is measured in minutes: must be 1m, got {window!r}",
        )
    slice_target = document.get("objectives[0].timeSliceTarget", (int, float))
    if slice_target is None:
        raise document.refuse("spec.objectives[0].timeSliceTarget", "required with Timeslices")
    rate = 1.0 - slice_target
    annotated = fields.get("minute_error_rate")
    if not isinstance(annotated, int | float) or abs(annotated - rate) > _EXACT:
        fields["minute_error_rate"] = rate
        sources["minute_error_rate"] = "spec.objectives[0].timeSliceTarget"


def _validated(
    document: _Document,
    model: type[M],
    fields: Mapping[str, Any],
    sources: Mapping[str, str],
    whole: str,
) -> M:
    """`model` built from fields, its errors named by the document fields they came from."""
    try:
        return model.model_validate(dict(fields))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error["loc"]
        field = sources.get(str(loc[0]), whole) if loc else whole
        rest = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
        raise document.refuse(field + rest, error["msg"]) from exc
