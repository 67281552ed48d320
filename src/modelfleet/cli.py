"""The `modelfleet` command line: a thin Typer app over the packages below it.

Errors are turned into exit codes here and only here: 0 success, 1 failure, 2 invalid input.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import numpy as np
import typer
import yaml
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from modelfleet import __version__, incidents, monitors, review, rollouts
from modelfleet.alerts import commands as alert_commands
from modelfleet.alerts.alert import Alert
from modelfleet.alerts.groups import list_groups
from modelfleet.alerts.oncall import on_call, people_at, shifts
from modelfleet.alerts.records import list_alerts
from modelfleet.alerts.silences import Silence, create_silence, expire_silence, list_silences
from modelfleet.capacity.autoscaler import ScalingPolicy, predictive_replicas
from modelfleet.capacity.cost import MixPlan, allocate, plan_mix, right_size, smallest_fitting
from modelfleet.capacity.forecast import DemandForecaster, holdout_mase, two_sided
from modelfleet.capacity.online import OnlineForecaster
from modelfleet.capacity.replay import read_trace, replay
from modelfleet.capacity.usage import Usage, per_replica_capacity
from modelfleet.capacity.usage import usage as capacity_usage
from modelfleet.clock import SystemClock
from modelfleet.config import load_fleet
from modelfleet.config.base import format_duration, parse_duration
from modelfleet.config.schema import (
    SLA,
    CapacityPolicy,
    Deployment,
    EscalationPolicy,
    InstanceType,
    Model,
    ModelVersion,
    OnCallSchedule,
    Runbook,
    Tenant,
)
from modelfleet.control import CONTROL_LOOP_LEASE, ControlLoop, Leadership, controllers
from modelfleet.errors import FleetConfigError, InvalidInput, ModelfleetError, NotFound
from modelfleet.gateway.server import ServingThread, serve
from modelfleet.monitors import anomaly
from modelfleet.monitors.report import build_sections, render_report, summary_line
from modelfleet.regions import erasure
from modelfleet.regions import export as governance_export
from modelfleet.regions.global_view import global_rollups
from modelfleet.regions.retention import RetentionController
from modelfleet.regions.retention import retention_status as governed_tables
from modelfleet.regions.status import region_states, set_status_everywhere
from modelfleet.regions.stores import RegionStore, region_stores
from modelfleet.registry import (
    Action,
    Change,
    Registered,
    apply_fleet,
    create_key,
    latest,
    list_keys,
    load_state,
    revoke_key,
)
from modelfleet.registry.declarations import declared
from modelfleet.registry.events import recent_events
from modelfleet.registry.keys import KeyRecord, copy_key, key_exists
from modelfleet.remediation.controller import approve, list_runs
from modelfleet.settings import Settings
from modelfleet.sim.capacity import CapacityDrill, run_capacity_drill
from modelfleet.sim.demo import (
    DEMO_ROLLOUTS,
    DRIFTING_TENANT,
    EXAMPLE,
    demo_loads,
    drive_traffic,
    prepare_demo,
    recorded_stats,
    run_rollouts,
    start_demo_gateway,
    watch,
)
from modelfleet.sim.response import SCENARIOS, run_scenario
from modelfleet.sim.rollout import Round
from modelfleet.sim.traffic import Tally
from modelfleet.sla.openslo import export_yaml, import_yaml
from modelfleet.sla.periods import parse_period, period_of
from modelfleet.sla.report import render_html_all
from modelfleet.sla.status import (
    TenantStatus,
    counts_from,
    covered_tenants,
    ledger,
    tenant_status,
)
from modelfleet.store import Store, current_revision, head_revision, open_store, upgrade
from modelfleet.store.lease import current as current_lease
from modelfleet.store.tables import rollups as rollups_table
from modelfleet.telemetry.summary import Summary, summarize
from modelfleet.web.app import build_app
from modelfleet.web.ui.sessions import COOKIE as SESSION_COOKIE

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2
T = TypeVar("T")

app = typer.Typer(
    name="modelfleet",
    help="Serve models to many customers without breaking: gateway, rollouts, monitoring, SLAs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
keys_app = typer.Typer(help="Create, list and revoke tenants' API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True)
rollout_app = typer.Typer(
    help="Roll a new version out safely: quality gate, then canary, blue-green or shadow.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(rollout_app, name="rollout")
monitor_app = typer.Typer(
    help="What the monitors see per tenant: drift, data quality, output quality.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")
review_app = typer.Typer(
    help="Label what the model was unsure of: the review queue, and export to Label Studio.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages stay one line, for scripts and editors
clock = SystemClock()


class Output(StrEnum):
    table = "table"
    json = "json"


class Kind(StrEnum):
    tenants = "tenants"
    models = "models"
    versions = "versions"
    deployments = "deployments"


KIND_CLASSES: dict[Kind, type[Tenant] | type[Model] | type[ModelVersion] | type[Deployment]] = {
    Kind.tenants: Tenant,
    Kind.models: Model,
    Kind.versions: ModelVersion,
    Kind.deployments: Deployment,
}

OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for scripts")
]


def _settings() -> Settings:
    return Settings.from_env()


def _store() -> Store:
    return open_store(_settings().database_url)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@app.command()
def version() -> None:
    """Print modelfleet's version and the store schema it expects."""
    out.print(f"modelfleet {__version__} (store schema {head_revision()})")


@app.command("apply")
def apply_command(
    files: Annotated[
        list[Path], typer.Option("--filename", "-f", help="fleet file(s) to apply", exists=False)
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate and show the plan; write nothing")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Validate fleet files and apply all of them in one transaction, or none of them."""
    settings = _settings()
    fleet = load_fleet(files)
    store = open_store(settings.database_url)
    changes = apply_fleet(store, fleet, actor=settings.actor, now=clock.now(), dry_run=dry_run)
    if output is Output.json:
        _print_json(
            [
                {"action": c.action, "kind": c.kind, "name": c.name, "changed": c.changed_fields()}
                for c in changes
            ]
        )
        return
    _changes_table(changes, dry_run=dry_run)


def _changes_table(changes: list[Change], *, dry_run: bool) -> None:
    table = Table("KIND", "NAME", "ACTION", "CHANGED FIELDS", box=None)
    style = {Action.CREATED: "green", Action.CHANGED: "yellow", Action.UNCHANGED: "dim"}
    for c in changes:
        fields = ", ".join(c.changed_fields()) if c.action is Action.CHANGED else ""
        table.add_row(c.kind, c.name, f"[{style[c.action]}]{c.action}[/]", fields)
    out.print(table)
    counts = {a: sum(1 for c in changes if c.action is a) for a in Action}
    summary = ", ".join(f"{n} {a}" for a, n in counts.items())
    out.print(f"{summary}{' (dry run: nothing written)' if dry_run else ''}")


@app.command()
def get(
    kind: Annotated[Kind, typer.Argument(help="what to list")],
    name: Annotated[
        str | None, typer.Argument(help="only this one (for versions: the model)")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """List tenants, models, versions or deployments."""
    with _store().begin() as conn:
        state = load_state(conn)
    found = state.of_kind(KIND_CLASSES[kind])
    if name is not None:
        found = [r for r in found if _owner(r) == name]
        if not found:
            raise InvalidInput(f"no {kind.value} named {name!r}")
    if output is Output.json:
        _print_json([_document(r) for r in found])
        return
    out.print(_listing(kind, found, state.of_kind(ModelVersion)))


def _owner(r: Registered) -> str:
    res = r.resource
    return res.spec.model if isinstance(res, ModelVersion) else res.metadata.name


def _document(r: Registered) -> dict[str, Any]:
    doc = r.resource.model_dump(mode="json", by_alias=True)
    doc["status"] = {"created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}
    if r.artifact_sha256 is not None:
        doc["status"]["artifact_sha256"] = r.artifact_sha256
    return doc


def _listing(kind: Kind, found: list[Registered], versions: list[Registered]) -> Table:
    if kind is Kind.tenants:
        table = Table("NAME", "DISPLAY NAME", "TIER", "HOME REGION", "CONTACT", box=None)
        for r in found:
            assert isinstance(r.resource, Tenant)
            s = r.resource.spec
            table.add_row(
                r.resource.name, s.display_name, s.tier, s.home_region, str(s.contact_email)
            )
    elif kind is Kind.models:
        table = Table("NAME", "INPUTS", "OUTPUT", "VERSIONS", box=None)
        for r in found:
            assert isinstance(r.resource, Model)
            m = r.resource.spec
            inputs = ", ".join(f"{f.name} {f.dtype}{f.shape or ''}" for f in m.input.features)
            output = f"{len(m.output.labels)} labels" if m.output.labels else "values"
            n = sum(1 for v in versions if _owner(v) == r.resource.name)
            table.add_row(r.resource.name, inputs, output, str(n))
    elif kind is Kind.versions:
        table = Table("MODEL", "VERSION", "FORMAT", "SHA256", "REGISTERED", box=None)
        table.add_column("NOTES", overflow="ellipsis", no_wrap=True, max_width=40)
        for column in table.columns[:5]:
            column.no_wrap = True
        for r in found:
            assert isinstance(r.resource, ModelVersion)
            v = r.resource.spec
            sha = (r.artifact_sha256 or "")[:12]
            registered = r.created_at.strftime("%Y-%m-%d %H:%M")
            table.add_row(v.model, r.resource.name, v.format, sha, registered, v.notes)
    else:
        table = Table(
            "NAME", "MODEL", "TENANTS", "VERSION", "SERVING", "STRATEGY", "PINS", box=None
        )
        for r in found:
            assert isinstance(r.resource, Deployment)
            d = r.resource.spec
            tenants = d.tenants if d.tenants == "all" else ", ".join(d.tenants)
            strategy = d.strategy.type if d.strategy is not None else "immediate"
            pins = ", ".join(f"{t}={v}" for t, v in d.pins.items())
            serving = r.serving_version or ""
            style = "" if serving == d.version else "[yellow]"
            table.add_row(
                r.resource.name, d.model, tenants, d.version, f"{style}{serving}", strategy, pins
            )
    return table


def _sla_summary(status: TenantStatus) -> Table:
    spec = status.sla.spec
    table = Table(
        f"{status.tenant} ({status.sla.name}, {status.period})",
        "VALUE",
        "OBJECTIVE",
        "BUDGET LEFT",
        box=None,
    )
    for s in status.slos:
        colour = "green" if s.met else "red"
        table.add_row(
            s.slo.name,
            f"[{colour}]{s.sli.value:.3%}[/] ({s.sli.good}/{s.sli.total})",
            f"{s.slo.objective:.1%}",
            f"{s.budget_left:.0%}",
        )
    table.add_row(
        "credit so far",
        f"{status.credit_amount:.2f} {spec.currency}",
        "",
        "; ".join(status.reasons) or "none owed",
    )
    return table


def _seconds(value: timedelta | None) -> str:
    return "-" if value is None else f"{value.total_seconds():.0f} s"


def _when(t: Any) -> str:
    return "" if t is None else t.strftime("%Y-%m-%d %H:%M:%S")


@keys_app.command("create")
def keys_create(tenant: Annotated[str, typer.Argument(help="the tenant the key acts for")]) -> None:
    """Issue an API key for TENANT. The key is printed once and cannot be shown again."""
    settings = _settings()
    with _regions(every_region=True) as stores:
        home = stores[0].store
        # It reads (the tenant, free prefixes), then writes: take the write lock first, or a
        # control loop committing meanwhile fails it with "database is locked" (SQLite).
        with home.begin(immediate=True) as conn:
            issued = create_key(conn, tenant, actor=settings.actor, now=clock.now())
        # Every region's gateways must know whose request it is before they can send it on.
        for other in stores[1:]:
            with home.begin() as source, other.store.begin(immediate=True) as target:
                copy_key(source, target, issued.prefix, actor=settings.actor, now=clock.now())
    if len(stores) > 1:
        err.print(f"the key is known in every region: {', '.join(s.region for s in stores)}")
    err.print(
        f"API key for tenant {tenant!r} (prefix {issued.prefix}); store it now, it is shown only once:"
    )
    sys.stdout.write(issued.plaintext + "\n")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="only this tenant's keys")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """List API keys by prefix: tenant, created, last used, revoked."""
    with _store().begin() as conn:
        found = list_keys(conn, tenant)
    if output is Output.json:
        _print_json([_key_json(k) for k in found])
        return
    table = Table("PREFIX", "TENANT", "CREATED", "CREATED BY", "LAST USED", "STATUS", box=None)
    for k in found:
        status = "[green]active[/]" if k.active else f"[red]revoked {_when(k.revoked_at)}[/]"
        table.add_row(
            k.prefix,
            k.tenant,
            _when(k.created_at),
            k.created_by,
            _when(k.last_used_at) or "never",
            status,
        )
    out.print(table)


def _key_json(k: KeyRecord) -> dict[str, Any]:
    return {
        "prefix": k.prefix,
        "tenant": k.tenant,
        "created_at": k.created_at.isoformat(),
        "created_by": k.created_by,
        "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
    }


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="the key's prefix, as `keys list` shows it")],
) -> None:
    """Revoke an API key: requests with it are refused from then on."""
    settings = _settings()
    with _regions(every_region=True) as stores:
        with stores[0].store.begin(immediate=True) as conn:
            record = revoke_key(conn, prefix, actor=settings.actor, now=clock.now())
        for other in stores[1:]:  # a key revoked in one region must not work in another
            with other.store.begin(immediate=True) as conn:
                if key_exists(conn, record.prefix):
                    revoke_key(conn, record.prefix, actor=settings.actor, now=clock.now())
    out.print(f"revoked key {record.prefix} of tenant {record.tenant!r}")


@app.command()
def audit(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many changes")] = 20,
    kind: Annotated[
        str | None, typer.Option("--kind", help="only this kind, e.g. Tenant or ApiKey")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="only this resource")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Show the latest changes to the registry: what, by whom, when, old and new values."""
    with _store().begin() as conn:
        entries = latest(conn, limit=limit, kind=kind, name=name)
    if output is Output.json:
        _print_json([{**e.__dict__, "at": e.at.isoformat()} for e in entries])
        return
    table = Table("WHEN", "ACTOR", "ACTION", "KIND", "NAME", "CHANGED", box=None)
    for e in entries:
        table.add_row(_when(e.at), e.actor, e.action, e.kind, e.name, ", ".join(e.changed_fields()))
    out.print(table)


@app.command()
def up(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
    control: Annotated[
        bool,
        typer.Option(
            help="also run the control loop (rollouts, monitors, alerts, runbooks, incidents);"
            " of all the processes on one store, only the leader's acts"
        ),
    ] = True,
    tick: Annotated[float, typer.Option(min=0.1, help="seconds between control ticks")] = 5.0,
    lease_ttl: Annotated[
        float,
        typer.Option(
            min=1,
            help="seconds the control loop's leader lease lasts unrenewed: how soon another"
            " process takes over when the leader dies",
        ),
    ] = 15.0,
    backend: Annotated[
        BackendName | None,
        typer.Option(
            help="where model replicas run: threads of each gateway process (local), or a Ray"
            " cluster (ray); without it, MODELFLEET_BACKEND, else local"
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="the Ray cluster to join, e.g. auto or head:6379; without it,"
            " MODELFLEET_RAY_ADDRESS; with neither, --backend ray starts a local cluster"
        ),
    ] = None,
) -> None:
    """Serve the gateway on the store's fleet until SIGTERM or Ctrl-C (then exits 0)."""
    settings = _settings()
    store = open_store(settings.database_url)  # fail here, clearly, if the store is unusable
    if (backend.value if backend else settings.backend) == "ray":
        _join_ray(ray_address or settings.ray_address)
    loop = (
        ControlLoop(
            lambda: controllers(store, secrets=settings.secrets),
            clock,
            interval_s=tick,
            lease=Leadership(store, ttl=timedelta(seconds=lease_ttl)),
        )
        if control
        else None
    )
    if loop is not None:
        _log_to_stderr()
        loop.start()
    try:
        serve(host, port, workers, app="modelfleet.web.app:create_app")
    finally:
        if loop is not None:
            loop.stop()
        store.close()


class BackendName(StrEnum):
    local = "local"
    ray = "ray"


def _join_ray(address: str | None) -> None:
    """Join (or start) the Ray cluster here, and tell the gateway workers, which read their
    settings from the environment, to serve on it."""
    # Without this, a thread of Ray's that outlives `ray.shutdown()` at exit starts a new local
    # cluster to talk to; this process always joins its cluster explicitly.
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    try:
        from modelfleet.runtime.ray import join_cluster, start_serve
    except ImportError as exc:
        raise InvalidInput(
            f"the ray backend needs Ray: pip install 'modelfleet[ray]' ({exc})"
        ) from exc
    joined = join_cluster(address)
    start_serve()  # here, once, rather than racing in each worker
    err.print(f"model replicas run on the Ray cluster at {joined}")
    os.environ["MODELFLEET_BACKEND"] = "ray"
    os.environ["MODELFLEET_RAY_ADDRESS"] = joined


def _log_to_stderr() -> None:
    """modelfleet's own INFO lines (leadership, events, scaling) on stderr, beside uvicorn's."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger = logging.getLogger("modelfleet")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@app.command()
def leader(output: OutputOption = Output.table) -> None:
    """Which process's control loop leads on this store, in which term, and until when.

    Exits 1 when no control loop holds the lease now: none runs, or the leader stopped and the
    others have not taken over yet.
    """
    now = clock.now()
    store = _store()
    try:
        with store.begin() as conn:
            lease = current_lease(conn, CONTROL_LOOP_LEASE)
    finally:
        store.close()
    held = lease is not None and lease.held_at(now)
    if output is Output.json:
        _print_json(
            None
            if lease is None
            else {
                "holder": lease.holder,
                "term": lease.term,
                "held": held,
                "acquired_at": lease.acquired_at.isoformat(),
                "renewed_at": lease.renewed_at.isoformat(),
                "expires_at": lease.expires_at.isoformat(),
                "expires_in_s": (lease.expires_at - now).total_seconds(),
            }
        )
    elif lease is None:
        out.print("no control loop has led on this store yet")
    else:
        table = Table("HOLDER", "TERM", "LEADS SINCE", "RENEWED", "EXPIRES", "STATE", box=None)
        left = (lease.expires_at - now).total_seconds()
        state = f"[green]leading[/] ({left:.0f} s left)" if held else "[red]no leader[/]"
        table.add_row(
            escape(lease.holder),
            str(lease.term),
            _when(lease.acquired_at),
            _when(lease.renewed_at),
            _when(lease.expires_at),
            state,
        )
        out.print(table)
    if not held:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def stats(
    minutes: Annotated[int, typer.Option("--minutes", "-m", min=1, help="window, in minutes")] = 5,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="only this tenant")] = None,
    model: Annotated[str | None, typer.Option("--model", help="only this model")] = None,
    every_region: GlobalOption = False,
    output: OutputOption = Output.table,
) -> None:
    """Requests/s, errors and latency percentiles per tenant and model, from the rollups."""
    now = clock.now()
    since = (now - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    window_s = (now - since).total_seconds()
    with _regions(every_region) as stores:
        rollups = global_rollups(
            stores, since=since, until=now + timedelta(minutes=1), tenant=tenant, model=model
        )
    summaries = summarize(rollups.values())
    rows = [
        {
            "tenant": s.tenant,
            "model": s.model,
            "requests": s.requests,
            "requests_per_s": s.rate(window_s),
            "error_rate": s.error_rate,
            "client_errors": s.status["4xx"],
            "rejected": s.status["rejected"],
            **{f"p{int(q * 100)}_s": s.percentile(q) for q in (0.5, 0.95, 0.99)},
        }
        for s in summaries
    ]
    if output is Output.json:
        _print_json(rows)
        return
    out.print(_stats_table(summaries, window_s))
    out.print(f"since {since:%Y-%m-%d %H:%M} UTC ({window_s:.0f} s)")


GlobalOption = Annotated[
    bool,
    typer.Option(
        "--global",
        help="every region's figures, from their rollups (aggregates only: no raw record is"
        " read from another region's store); regions are the Region kinds of fleet.yaml",
    ),
]


@contextmanager
def _regions(every_region: bool) -> Iterator[list[RegionStore]]:
    """This process's store alone, or with every declared region's (--global)."""
    settings = _settings()
    store = open_store(settings.database_url)
    try:
        if not every_region:
            yield [RegionStore(settings.region, None, store)]
            return
        with region_stores(store, settings.region, settings.secrets) as stores:
            yield stores
    finally:
        store.close()


def _stats_table(summaries: list[Summary], window_s: float) -> Table:
    table = Table(box=None)
    table.add_column("TENANT", no_wrap=True)
    table.add_column("MODEL", overflow="ellipsis", no_wrap=True, max_width=20)
    for header in ("REQS", "REQ/S", "5XX%", "4XX", "429"):
        table.add_column(header, justify="right")
    for q in (50, 95, 99):
        table.add_column(f"P{q} ms", justify="right")
    for s in summaries:
        ms = [_millis(s.percentile(q)) for q in (0.5, 0.95, 0.99)]
        table.add_row(
            s.tenant,
            s.model,
            str(s.requests),
            f"{s.rate(window_s):.1f}",
            f"{s.error_rate * 100:.2f}",
            str(s.status["4xx"]),
            str(s.status["rejected"]),
            *ms,
        )
    return table


def _millis(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the store to the schema this version of modelfleet needs."""
    store = open_store(_settings().database_url, migrate=False)
    before = current_revision(store.engine)
    changed = upgrade(store.engine)
    after = current_revision(store.engine)
    what = f"migrated from {before or 'empty'} to {after}" if changed else f"already at {after}"
    out.print(f"store {store.url}: {what}")


@app.command()
def demo(
    stay: Annotated[
        bool, typer.Option("--stay", help="keep the gateway running afterwards, to explore")
    ] = False,
    seconds: Annotated[float, typer.Option(min=1, help="how long tenants send traffic")] = 8.0,
    example: Annotated[Path, typer.Option(help="the example to run")] = EXAMPLE,
) -> None:
    """Show modelfleet at work on the example fleet; prints a summary and exits 0."""
    settings = _settings()
    database = settings.home / "demo" / "fleet.db"
    out.rule("[bold]modelfleet demo: retail-vision")
    out.print(
        "A retailer's product-recognition model serves four shops (tenants) of different tiers\n"
        f"and regions. 1. Apply {example / 'fleet.yaml'} to a fresh store at {database}:\n"
    )
    started = clock.now()
    report = prepare_demo(example, database, actor=settings.actor, now=started)
    _changes_table(report.first_apply, dry_run=False)
    out.print("\nApplying the same file again changes nothing:")
    counts = {a: sum(1 for c in report.second_apply if c.action is a) for a in Action}
    out.print(", ".join(f"{n} {a}" for a, n in counts.items()))
    for kind, cls in KIND_CLASSES.items():
        out.print(f"\n[bold]{kind.value}[/]")
        out.print(_listing(kind, report.state.of_kind(cls), report.state.of_kind(ModelVersion)))
    out.print(
        "\n[bold]API keys[/] (one per tenant; the store keeps only a salted hash and the prefix)"
    )
    table = Table("PREFIX", "TENANT", box=None)
    for k in report.keys:
        table.add_row(k.prefix, k.tenant)
    out.print(table)

    out.rule("2. the gateway serves every tenant")
    serving = start_demo_gateway(settings, database, clock)
    url = f"{serving.url}"
    rates = ", ".join(f"{load.tenant} {load.rate:.0f}/s" for load in demo_loads(report, example))
    out.print(f"Gateway at {url}. Each tenant sends one-row requests over HTTP: {rates}.")
    out.print(
        "dune-foods is on the free tier (5 requests/s): the gateway answers its excess with 429.\n"
        f"{DRIFTING_TENANT} has just installed new shelf cameras: they overexpose every image.\n"
    )
    with Live(_traffic_table({}, 0.0), console=out, refresh_per_second=4) as live:
        tallies = drive_traffic(
            url,
            report,
            example,
            seconds=seconds,
            on_progress=lambda t, elapsed: live.update(_traffic_table(t, elapsed)),
        )
    serving.flush()
    out.print("(latency as the demo's clients saw it, sharing this process with the gateway)")
    out.print("\nWhat the gateway's telemetry recorded in the store (`modelfleet stats`):")
    summaries = recorded_stats(
        report.store,
        since=started.replace(second=0, microsecond=0),
        until=clock.now() + timedelta(minutes=1),
    )
    out.print(_stats_table(summaries, seconds))
    serving.stop()

    out.rule("3. monitoring")
    out.print(
        "The monitors compare each tenant's window of telemetry (per-pixel histograms, classes,\n"
        "confidences) with v1's reference profile; nothing stores the requests themselves.\n"
    )
    alerts, statuses = watch(report.store, clock.now() + timedelta(minutes=1))
    out.print(_monitor_table(statuses))
    for event in alerts:
        out.print(f"[red]{event.kind}[/] {escape(event.message)}")

    out.rule("4. safe rollouts")
    out.print(
        "The deployment rolls new versions out by canary: a quality gate on the evaluation set,\n"
        "then 5, 25, 50 and 100 % of requests, each step held a minute and judged against v1\n"
        "on the same minutes of real traffic. Minutes pass on a virtual clock: every 30 s\n"
        "acme-grocers and bayside-market send 300 requests over HTTP (5 % are blank frames from\n"
        "cameras that are switched off), then the control loop ticks.\n"
    )
    for version, why in DEMO_ROLLOUTS:
        out.print(f"  {version}: {why}")
    results = run_rollouts(
        settings,
        database,
        report,
        example,
        start=clock.now() + timedelta(minutes=1),
        on_round=_print_round,
    )
    for result in results:
        out.print()
        out.print(_rollouts_table([result.rollout]))
        out.print(_timeline_table(result.timeline))

    out.rule("5. an incident, fixed by a runbook")
    out.print(
        "Two gateways (eu-west, us-east) serve three shops over HTTP; the detectors learned two "
        "days of history. Then eu-west's replicas of v1 crash. The control loop ticks every 10 s "
        f"of virtual time with the example's {example / 'alerting.yaml'}: routes, on-call, "
        "runbooks. (`make bench-response` runs all six drills.)\n"
    )
    quiet = logging.getLogger("modelfleet")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the drill's own log lines would drown its timeline
    try:
        with out.status("running the replica-crash drill"):
            drill = run_scenario(example, SCENARIOS[0], workdir=database.parent / "drill")
    finally:
        quiet.setLevel(level)
    for incident in drill.incidents:
        out.print(
            f"incident {incident.id} ({incident.severity}): {escape(incident.title)}\n"
            f"  detected {_seconds(drill.mttd)} after the crash, resolved by "
            f"{incident.resolved_by} {_seconds(incident.mttr)} later; {incident.pages} page(s)"
        )
        table = Table("WHEN", "EVENT", "WHAT", box=None)
        table.columns[-1].overflow = "fold"
        for entry in drill.timelines.get(incident.id, []):
            table.add_row(_when(entry.at), entry.kind, escape(entry.message))
        out.print(table)

    out.rule("6. customer SLAs")
    out.print(
        f"Apply {example / 'sla.yaml'}: acme-grocers (enterprise) is promised 99.9 % availability "
        "and 99 % of answers within 500 ms, with service credits when that is missed; "
        "bayside-market (premium) 99.5 % uptime minutes. Measured on the traffic above:\n"
    )
    sla_file = example / "sla.yaml"
    at_risk: list[str] = []
    if sla_file.is_file():
        apply_fleet(report.store, load_fleet([sla_file]), actor=settings.actor, now=clock.now())
        with report.store.begin() as conn:
            # The rollouts' minutes ran on a virtual clock ahead of this one: measure up to them.
            last = conn.execute(select(func.max(rollups_table.c.minute))).scalar()
            measure_at = max(clock.now(), last + timedelta(minutes=1)) if last else clock.now()
            for contract in declared(conn, SLA):
                for tenant in covered_tenants(conn, contract):
                    status = tenant_status(conn, contract, tenant, measure_at)
                    out.print(_sla_summary(status))
                    low = [
                        s
                        for s in status.slos
                        if s.sli.total and s.budget_left < contract.spec.budget_warning
                    ]
                    if low or status.credit_share > 0:
                        budgets = ", ".join(
                            f"{s.slo.name} {s.budget_left:.0%} of its budget left" for s in low
                        )
                        at_risk.append(
                            f"{tenant} ({budgets}; provisional credit "
                            f"{status.credit_amount:.2f} {contract.spec.currency})"
                        )

    out.rule("7. capacity: replicas follow the load")
    capacity_file = example / "capacity.yaml"
    capacity: CapacityDrill | None = None
    if capacity_file.is_file():
        out.print(
            f"Apply {capacity_file} to a fresh store with three days of product-recognizer's "
            "traffic as history: the capacity controller measures what a replica serves within "
            "the latency objective and forecasts the demand. Then, one virtual minute at a time, "
            "the load jumps; replicas asked for serve two minutes later.\n"
        )
        with out.status("running the capacity drill"):
            capacity = run_capacity_drill(example, database.parent / "capacity")
        out.print(
            f"The load is {capacity.spike:g}x from minute {capacity.spike_from} to "
            f"{capacity.spike_until}; replicas between {capacity.min_replicas} and "
            f"{capacity.max_replicas}:"
        )
        out.print(_capacity_table(capacity))

    out.rule("8. the dashboard and the customer portal")
    token = secrets.token_urlsafe(18)  # this run's operator token; only its hash is served
    serving = _start_dashboard(settings, database, token)
    key = report.keys[0]
    out.print(
        f"The gateway now serves its web pages too, on the demo's store, at {serving.url}/ui/ "
        f"(operators) and {serving.url}/portal/ (customers). Signing in over HTTP as an "
        f"operator and as {key.tenant}:\n"
    )
    visits = _visit_dashboard(serving.url, token, key.plaintext)
    table = Table("PAGE", "STATUS", "TITLE", box=None)
    for path, code, title in visits:
        table.add_row(path, str(code), escape(title))
    out.print(table)
    if not stay:
        serving.stop()
        out.print("Run `modelfleet demo --stay` to keep it open and explore it in a browser.")

    out.rule("summary")
    served = sum(t.codes[200] for t in tallies.values())
    refused = sum(t.codes[429] for t in tallies.values())
    failed = sum(
        n for t in tallies.values() for code, n in t.codes.items() if code not in (200, 429)
    )
    states = {r.rollout.candidate_version: r.rollout.state for r in results}
    with report.store.begin() as conn:
        entries = latest(conn, limit=1000)
    out.print(
        f"{len(report.state.resources)} resources registered, {len(report.keys)} API keys, "
        f"{len(entries)} audit entries; {served} requests served, {refused} refused over quota, "
        f"{failed} failed.\nDrift: "
        + (
            ", ".join(sorted({str(e.tenant) for e in alerts if e.kind == "monitor.drift"}))
            or "none"
        )
        + ".\nRollouts: "
        + ", ".join(f"{v} {s.replace('_', ' ')}" for v, s in states.items())
        + ".\nSLAs at risk: "
        + (", ".join(at_risk) or "none")
        + f".\nIncident: {'fixed by a runbook' if drill.resolved_automatically else 'NOT fixed'}"
        f" in {_seconds(drill.mttr)}, {drill.pages} page(s)."
        + (
            f"\nCapacity: replicas followed the spike from {capacity.before} to {capacity.peak} "
            f"and back to {capacity.after}."
            if capacity is not None
            else f"\nCapacity: no {capacity_file}."
        )
        + f"\nExplore it: MODELFLEET_HOME={database.parent} modelfleet rollout status "
        f"product-recognizer; MODELFLEET_HOME={database.parent / 'drill'} modelfleet incidents list"
    )
    if stay:
        url = serving.url
        out.print(
            f"\n--stay: the dashboard is at {url}/ui/ (operator token: {token}), the portal "
            f"at {url}/portal/ ({key.tenant}'s API key: {key.plaintext}).\n"
            f"The gateway keeps serving at {url}. Try it as {key.tenant}:\n"
            f"  curl -s {url}/v1/models/product-recognizer/predict "
            f"-H 'Authorization: Bearer {key.plaintext}' "
            '-d \'{"instances": [[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,'
            "0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0]]}'\n"
            "Press Ctrl-C to stop."
        )
        ending = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, ending)
        signal.sigwait(ending)
        serving.stop()
    report.store.close()
    if failed:
        raise ModelfleetError(f"{failed} demo requests failed; see the log above")
    expected = {"v3": "refused", "v2": "promoted", "v4": "rolled_back"}
    if states != expected:
        raise ModelfleetError(f"the demo's rollouts ended {states}, expected {expected}")
    if not drill.resolved_automatically:
        raise ModelfleetError("the demo's replica crash was not fixed by a runbook; see above")
    if capacity is not None and not capacity.before < capacity.peak > capacity.after:
        raise ModelfleetError("the demo's replicas did not follow the load spike; see above")


DASHBOARD_PAGES = (
    "/ui/",
    "/ui/rollouts",
    "/ui/models/product-recognizer",
    "/ui/alerts",
    "/ui/incidents",
    "/ui/slas",
    "/ui/capacity",
)
PORTAL_PAGES = ("/portal/", "/portal/usage", "/portal/incidents", "/portal/credits")


def _start_dashboard(settings: Settings, database: Path, token: str) -> ServingThread:
    """The gateway with its web pages on the demo's store, opened to `token` only."""
    demo = replace(
        settings,
        database_url=f"sqlite:///{database}",
        admin_token_sha256=hashlib.sha256(token.encode()).hexdigest(),
    )
    fleet = build_app(demo, clock, flush_s=1.0)
    serving = ServingThread(fleet.gateway, asgi=fleet)
    serving.start()
    return serving


def _visit_dashboard(url: str, token: str, api_key: str) -> list[tuple[str, int, str]]:
    """Sign in as an operator and as a tenant, and open each page: (path, status, title)."""
    visits = []
    for login, secret, pages in (
        ("/ui/login", {"token": token}, DASHBOARD_PAGES),
        ("/portal/login", {"api_key": api_key}, PORTAL_PAGES),
    ):
        with httpx.Client(base_url=url, timeout=30.0) as client:
            signed_in = client.post(login, data=secret)
            # The cookie is Secure: an HTTP client keeps it off plain HTTP; a browser on
            # localhost does not. Carry it by hand.
            cookie = signed_in.cookies.get(SESSION_COOKIE) or ""
            for path in pages:
                page = client.get(path, headers={"cookie": f"{SESSION_COOKIE}={cookie}"})
                title = re.search(r"<title>(.*?)</title>", page.text, re.S)
                visits.append((path, page.status_code, title[1].strip() if title else ""))
    return visits


def _capacity_table(drill: CapacityDrill) -> Table:
    """Every fifth minute of the capacity drill, and every minute the replica count changed."""
    table = Table("MINUTE", "LOAD (rps)", "REPLICAS", "WHY", box=None)
    table.columns[-1].overflow = "fold"
    for m in drill.timeline:
        if m.reason is None and m.minute % 5 and m is not drill.timeline[-1]:
            continue
        spiking = drill.spike_from <= m.minute < drill.spike_until
        load = f"{m.load_rps:.1f}" + (" (spike)" if spiking else "")
        why = ""
        if m.reason is not None:  # "mode: verdict: why", with figures cut to one decimal
            why = re.sub(r"\d+\.\d+", lambda f: f"{float(f[0]):.1f}", m.reason.split(": ", 1)[-1])
        table.add_row(str(m.minute), load, str(m.replicas), escape(why))
    return table


def _print_round(rollout: rollouts.Rollout, round_: Round, now: datetime) -> None:
    answered = ", ".join(f"{v} {n}" for v, n in sorted(round_.answered.items()))
    errors = f", {round_.failed} failed" if round_.failed else ""
    where = f"{rollout.percent:g}%" if rollout.state == "running" else rollout.state
    out.print(
        f"  {now:%H:%M:%S} {rollout.candidate_version} {where:>11}: answered by {answered}{errors}"
    )


def _timeline_table(timeline: list[rollouts.RolloutEvent]) -> Table:
    table = Table("WHEN", "EVENT", "STEP", "%", "OUTCOME", "REASON", box=None)
    table.columns[-1].overflow = "fold"
    for e in timeline:
        table.add_row(
            _when(e.at),
            e.kind,
            str(e.step + 1),
            f"{e.percent:g}",
            e.outcome or "",
            escape(e.reason),
        )
    return table


def _traffic_table(tallies: Mapping[str, Tally], elapsed: float) -> Table:
    table = Table("TENANT", "SENT", "200", "429", "OTHER", "REQ/S", "P50 ms", "P99 ms", box=None)
    for t in tallies.values():
        other = t.sent - t.codes[200] - t.codes[429]
        rate = t.sent / elapsed if elapsed else 0.0
        p50, p99 = (_millis(t.latency.quantile(q)) for q in (0.5, 0.99))
        table.add_row(
            t.tenant,
            str(t.sent),
            str(t.codes[200]),
            str(t.codes[429]),
            str(other),
            f"{rate:.1f}",
            p50,
            p99,
        )
    table.caption = f"{elapsed:.1f} s"
    return table


DeploymentArgument = Annotated[
    str, typer.Argument(help="the deployment, as `get deployments` lists it")
]


@rollout_app.command("start")
def rollout_start(
    deployment: DeploymentArgument,
    version: Annotated[str, typer.Argument(help="the candidate version")],
    strategy: Annotated[
        str | None,
        typer.Option(help="canary, bluegreen or shadow; default: the deployment's strategy"),
    ] = None,
) -> None:
    """Start rolling VERSION out; its quality gate runs at the next control tick."""
    settings = _settings()
    with open_store(settings.database_url).begin() as conn:
        started = rollouts.start_rollout(
            conn, deployment, version, actor=settings.actor, now=clock.now(), strategy=strategy
        )
    out.print(
        f"rollout {started.id} of {deployment}: {started.stable_version} -> "
        f"{started.candidate_version} by {started.strategy}; the quality gate runs next"
    )


@rollout_app.command("status")
def rollout_status(
    deployment: Annotated[
        str | None, typer.Argument(help="this deployment's latest rollout; none: list them all")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """A rollout's state, the analysis so far, and its timeline of decisions with evidence."""
    with _store().begin() as conn:
        if deployment is None:
            found = rollouts.list_rollouts(conn, limit=50)
            if output is Output.json:
                _print_json([_rollout_json(r) for r in found])
                return
            out.print(_rollouts_table(found))
            return
        latest = rollouts.latest_rollout(conn, deployment)
        if latest is None:
            raise InvalidInput(f"{deployment} has had no rollout")
        timeline = rollouts.events_of(conn, latest.id)
        judgement = (
            rollouts.current_judgement(conn, latest, clock.now())
            if latest.state == "running"
            else None
        )
    if output is Output.json:
        _print_json(
            {
                **_rollout_json(latest),
                "analysis": judgement.to_dict() if judgement is not None else None,
                "timeline": [{**e.__dict__, "at": e.at.isoformat()} for e in timeline],
            }
        )
        return
    out.print(_rollouts_table([latest]))
    if judgement is not None:
        out.print(
            f"\n[bold]analysis of this step so far[/]: {judgement.outcome} - {escape(judgement.reason)}"
        )
        out.print(_judgement_table(judgement.metrics))
    out.print("\n[bold]timeline[/]")
    out.print(_timeline_table(timeline))


def _rollout_json(r: rollouts.Rollout) -> dict[str, Any]:
    data = dict(r.__dict__)
    for name in ("phase_started_at", "started_at", "updated_at", "ended_at"):
        data[name] = data[name].isoformat() if data[name] is not None else None
    return data


def _rollouts_table(found: list[rollouts.Rollout]) -> Table:
    table = Table(
        "ID",
        "DEPLOYMENT",
        "STRATEGY",
        "STABLE",
        "CANDIDATE",
        "STATE",
        "STEP",
        "%",
        "STARTED",
        box=None,
    )
    colours = {"promoted": "green", "running": "cyan", "pending": "cyan", "completed": "green"}
    for r in found:
        state = r.state + (" (paused)" if r.paused else "")
        colour = colours.get(r.state, "red" if r.state in ("rolled_back", "refused") else "yellow")
        table.add_row(
            str(r.id),
            r.deployment,
            r.strategy,
            r.stable_version,
            r.candidate_version,
            f"[{colour}]{state}[/]",
            str(r.step + 1) if r.strategy == "canary" else r.phase,
            f"{r.percent:g}",
            _when(r.started_at),
        )
    return table


def _judgement_table(metrics: Any) -> Table:
    table = Table(
        "METRIC", "CRITICAL", "STABLE", "CANDIDATE", "P-VALUE", "VERDICT", "WHY", box=None
    )
    colours = {"pass": "green", "marginal": "yellow", "fail": "red"}
    for m in metrics:
        table.add_row(
            m.name,
            "yes" if m.critical else "",
            _figure(m.stable),
            _figure(m.canary),
            "" if m.p_value is None else f"{m.p_value:.2g}",
            f"[{colours[m.verdict]}]{m.verdict}[/]",
            escape(m.reason),
        )
    return table


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _operate(command: Callable[..., T], deployment: str) -> T:
    """Run an operator's command on `deployment` in one transaction, as the configured actor."""
    settings = _settings()
    with open_store(settings.database_url).begin() as conn:
        return command(conn, deployment, actor=settings.actor, now=clock.now())


@rollout_app.command("pause")
def rollout_pause(deployment: DeploymentArgument) -> None:
    """Hold the rollout at its step; analysis still rolls a failing candidate back."""
    r = _operate(rollouts.pause, deployment)
    out.print(f"rollout {r.id} of {deployment} paused at {r.percent:g}%")


@rollout_app.command("resume")
def rollout_resume(deployment: DeploymentArgument) -> None:
    """Let a paused rollout move on again."""
    r = _operate(rollouts.resume, deployment)
    out.print(f"rollout {r.id} of {deployment} resumed")


@rollout_app.command("abort")
def rollout_abort(deployment: DeploymentArgument) -> None:
    """Stop the rollout: all traffic back to the stable version now."""
    out.print(_operate(rollouts.abort, deployment).message, markup=False, highlight=False)


@rollout_app.command("promote")
def rollout_promote(deployment: DeploymentArgument) -> None:
    """Skip the remaining steps: the candidate becomes the stable version now."""
    out.print(_operate(rollouts.promote_now, deployment).message, markup=False, highlight=False)


@app.command()
def rollback(deployment: DeploymentArgument) -> None:
    """Back to the last good version at once: ends a running rollout, or undoes the last promotion."""
    out.print(_operate(rollouts.rollback, deployment).message, markup=False, highlight=False)


@app.command()
def events(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many events")] = 20,
    output: OutputOption = Output.table,
) -> None:
    """The control plane's latest events: rollouts promoted, rolled back, refused."""
    with _store().begin() as conn:
        found = recent_events(conn, limit=limit)
    if output is Output.json:
        _print_json([{**e.__dict__, "at": e.at.isoformat()} for e in found])
        return
    table = Table("WHEN", "SEVERITY", "KIND", "SUBJECT", "MESSAGE", box=None)
    colours = {"info": "green", "warning": "yellow", "critical": "red"}
    for e in found:
        table.add_row(
            _when(e.at),
            f"[{colours[e.severity]}]{e.severity}[/]",
            e.kind,
            e.subject,
            escape(e.message),
        )
    out.print(table)


@monitor_app.command("status")
def monitor_status(
    model: Annotated[str | None, typer.Option("--model", help="only this model")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="only this tenant")] = None,
    output: OutputOption = Output.table,
) -> None:
    """The latest verdict of every monitor, one line per tenant, model and version."""
    with _store().begin() as conn:
        found = monitors.latest_results(conn, model=model, tenant=tenant)
    if output is Output.json:
        _print_json([r.to_dict() for r in found])
        return
    out.print(_monitor_table(found))


@monitor_app.command("report")
def monitor_report(
    model: Annotated[str, typer.Argument(help="the model to report on")],
    to: Annotated[Path, typer.Option("--to", help="the HTML file to write", dir_okay=False)],
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="only this tenant")] = None,
    window: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="how far back from the end, like 30m or 2h; default: the model's monitoring window",
        ),
    ] = None,
    at: Annotated[
        datetime | None, typer.Option("--at", help="the window's end, in UTC; default: now")
    ] = None,
) -> None:
    """Write one self-contained HTML page of MODEL's monitors per tenant and version: verdicts,
    every feature's drift with charts of the drifted ones, data and output quality."""
    now = clock.now() if at is None else at.replace(tzinfo=UTC)
    with _store().begin() as conn:
        sections = build_sections(conn, model, tenant=tenant, now=now, window=window)
    page = render_report(model, sections, generated_at=clock.now())
    try:
        to.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {to}: {exc.strerror}") from exc
    out.print(f"wrote {to}", markup=False, highlight=False)
    out.print(summary_line(sections), markup=False, highlight=False)


def _monitor_table(found: list[monitors.MonitorStatus]) -> Table:
    table = Table(
        "TENANT",
        "MODEL",
        "VERSION",
        "DRIFT",
        "DATA QUALITY",
        "OUTPUT",
        "CONFIDENCE",
        "ACCURACY",
        "WORST FEATURE",
        "WINDOW",
        box=None,
    )
    colours = {"ok": "green", "warning": "yellow", "alert": "red", "insufficient": "dim"}
    for r in found:
        cells = [
            f"[{colours[s]}]{s}[/]" if s else "-"
            for s in (r.status("drift"), r.status("data_quality"), r.status("output_quality"))
        ]
        table.add_row(
            r.tenant,
            r.model,
            r.version,
            *cells,
            _figure(r.mean_confidence),
            "-" if r.accuracy is None else f"{r.accuracy:.1%} ({r.labelled})",
            escape(r.worst_feature or "-"),
            f"{r.window_start:%H:%M}-{r.window_end:%H:%M}",
        )
    return table


class ReviewStatus(StrEnum):
    open = "open"
    labelled = "labelled"
    all = "all"


ReviewTenantOption = Annotated[
    str | None, typer.Option("--tenant", "-t", help="only this tenant's items")
]
ReviewModelOption = Annotated[str | None, typer.Option("--model", help="only this model's items")]
ReviewStatusOption = Annotated[
    ReviewStatus, typer.Option("--status", help="open, labelled, or all items")
]


@review_app.command("list")
def review_list(
    tenant: ReviewTenantOption = None,
    model: ReviewModelOption = None,
    status: ReviewStatusOption = ReviewStatus.open,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many items")] = 50,
    output: OutputOption = Output.table,
) -> None:
    """Review items in the order they are worked: low confidence first, then the oldest."""
    with _store().begin() as conn:
        found = review.list_items(
            conn, tenant=tenant, model=model, status=status.value, limit=limit
        )
    if output is Output.json:
        _print_json([item.to_dict() for item in found])
        return
    table = Table(
        "ID", "TENANT", "MODEL", "VERSION", "REASON", "PREDICTED", "CONF", "SAMPLED", box=None
    )
    for column in table.columns:
        column.no_wrap = True
    table.add_column("STATUS", overflow="fold")
    for item in found:
        state = item.status
        if item.label is not None:
            state += f": {item.label} by {item.labelled_by}"
        table.add_row(
            str(item.id),
            item.tenant,
            item.model,
            item.version,
            item.reason,
            escape(_answer(item.predicted)),
            _figure(item.confidence),
            _when(item.sampled_at),
            escape(state),
        )
    out.print(table)


def _answer(predicted: Any) -> str:
    return "-" if predicted is None else str(predicted)


@review_app.command("next")
def review_next(
    tenant: ReviewTenantOption = None,
    model: ReviewModelOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Show the item to label next: who and what it is about, what the model answered, and the
    request's inputs (its first row)."""
    with _store().begin() as conn:
        item = review.next_item(conn, tenant=tenant, model=model)
        inputs = review.sample_inputs(conn, [item]) if item is not None else {}
    if output is Output.json:
        _print_json(
            None if item is None else {**item.to_dict(), "inputs": inputs.get(item.sample, {})}
        )
        return
    if item is None:
        out.print("no open review items")
        return
    table = Table(box=None, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    confidence = "" if item.confidence is None else f" (confidence {item.confidence:.3f})"
    for name, value in [
        ("item", str(item.id)),
        ("tenant", item.tenant),
        ("model", f"{item.model} {item.version}"),
        ("reason", item.reason.replace("_", " ")),
        ("predicted", _answer(item.predicted) + confidence),
        ("request id", item.request_id),
        ("sampled", _when(item.sampled_at)),
        *(("input", line) for line in review.summarize_inputs(inputs.get(item.sample, {}))),
    ]:
        table.add_row(name, escape(value))
    out.print(table)
    out.print(f"label it: modelfleet review label {item.id} LABEL", markup=False, highlight=False)


@review_app.command("label")
def review_label(
    item: Annotated[int, typer.Argument(help="the item's id, as `review list` shows it")],
    label: Annotated[str, typer.Argument(help="the true label: one of the model's labels")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="act for this tenant: only its items")
    ] = None,
) -> None:
    """Label an item; the label is feedback on its request and counts in `modelfleet accuracy`."""
    settings = _settings()
    with open_store(settings.database_url).begin() as conn:
        done = review.label_item(
            conn, item, label, actor=settings.actor, now=clock.now(), tenant=tenant
        )
    out.print(
        f"review item {done.id} labelled {label!r} (request {done.request_id}, row 0)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@review_app.command("export")
def review_export(
    tenant: ReviewTenantOption = None,
    model: ReviewModelOption = None,
    status: ReviewStatusOption = ReviewStatus.open,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many items")] = 10_000,
    to: Annotated[
        Path | None, typer.Option("--to", help="write the tasks to this file; default: stdout")
    ] = None,
    from_name: Annotated[
        str, typer.Option(help="the Choices control of your Label Studio labeling config")
    ] = "label",
    to_name: Annotated[str, typer.Option(help="the object that control labels")] = "image",
) -> None:
    """Export items as Label Studio tasks (JSON), with the model's answer as a pre-annotation."""
    with _store().begin() as conn:
        items = review.list_items(
            conn, tenant=tenant, model=model, status=status.value, limit=limit
        )
        inputs = review.sample_inputs(conn, items)
    tasks = review.export_label_studio(items, inputs, from_name=from_name, to_name=to_name)
    text = json.dumps(tasks, indent=2) + "\n"
    if to is None:
        sys.stdout.write(text)
        return
    try:
        to.write_text(text)
    except OSError as exc:
        raise ModelfleetError(f"cannot write {to}: {exc.strerror or exc}") from exc
    err.print(f"{len(tasks)} Label Studio task(s) written to {to}", markup=False, highlight=False)


@app.command("accuracy")
def accuracy_command(
    model: Annotated[str | None, typer.Option("--model", help="only this model")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="only this tenant")] = None,
    days: Annotated[
        float | None, typer.Option("--days", min=0, help="only requests of the last DAYS days")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Accuracy per tenant and version, from customers' feedback and review labels."""
    since = clock.now() - timedelta(days=days) if days is not None else None
    with _store().begin() as conn:
        found = review.accuracy(conn, model=model, tenant=tenant, since=since)
    if output is Output.json:
        _print_json([row.to_dict() for row in found])
        return
    table = Table("TENANT", "MODEL", "VERSION", "LABELLED", "CORRECT", "ACCURACY", box=None)
    table.add_column("PER CLASS: ACCURACY (LABELLED)", overflow="fold")
    for row in found:
        classes = ", ".join(f"{c.label} {c.accuracy:.2f} ({c.labelled})" for c in row.classes)
        table.add_row(
            row.tenant,
            row.model,
            row.version,
            str(row.labelled),
            str(row.correct),
            f"{row.accuracy:.3f}",
            escape(classes),
        )
    out.print(table)
    if not found:
        out.print("no labels on logged predictions yet")


# -- anomaly detection, alerts, on-call, incidents, runbooks --------------------------------

anomaly_app = typer.Typer(
    help="Score a metric's time series for anomalies, offline.", no_args_is_help=True
)
app.add_typer(anomaly_app, name="anomaly")
alerts_app = typer.Typer(
    help="Alerts and their groups: list, acknowledge, resolve, silence.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")
oncall_app = typer.Typer(help="Who carries the pager, and who is paged next.", no_args_is_help=True)
app.add_typer(oncall_app, name="oncall")
incidents_app = typer.Typer(
    help="Incidents: what people responded to, MTTD/MTTR, postmortems.", no_args_is_help=True
)
app.add_typer(incidents_app, name="incidents")
runbooks_app = typer.Typer(
    help="Runbooks that fix alerts by themselves, and their runs.", no_args_is_help=True
)
app.add_typer(runbooks_app, name="runbooks")


class AnomalyDirection(StrEnum):
    up = "up"
    down = "down"
    both = "both"


class AlertState(StrEnum):
    firing = "firing"
    resolved = "resolved"


class IncidentStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


LABEL_COLUMNS = ("tenant", "model", "version", "region")


@anomaly_app.command("detect")
def anomaly_detect(
    source: Annotated[
        Path, typer.Argument(help="a CSV of timestamp,value rows (a header is optional)")
    ],
    to: Annotated[
        Path | None,
        typer.Option("--out", help="write the scored CSV here; default: stdout", dir_okay=False),
    ] = None,
    direction: Annotated[
        AnomalyDirection, typer.Option("--direction", help="which way is anomalous")
    ] = AnomalyDirection.both,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0, max=1, help="false-alarm rate per point")
    ] = 3e-5,
) -> None:
    """Score each row of FILE.csv; writes timestamp,value,score,alarm and a summary to stderr."""
    try:
        if to is None:
            found = anomaly.detect_csv(source, sys.stdout, direction=direction.value, alpha=alpha)
        else:
            with to.open("w", newline="", encoding="utf-8") as stream:
                found = anomaly.detect_csv(source, stream, direction=direction.value, alpha=alpha)
    except anomaly.CsvRowError as exc:
        raise InvalidInput(f"{source}: {exc}") from exc
    except OSError as exc:
        raise InvalidInput(f"{exc.filename or source}: {exc.strerror or exc}") from exc
    err.print(
        f"{source}: {found.rows} rows, {found.alarms} alarms, {found.missing} missing"
        + (f"; written to {to}" if to is not None else ""),
        markup=False,
        highlight=False,
    )


def _alert_json(a: Alert) -> dict[str, Any]:
    return {
        "fingerprint": a.fingerprint,
        "alertname": a.name,
        "severity": a.severity,
        "state": a.state,
        "labels": a.labels,
        "annotations": a.annotations,
        "starts_at": a.starts_at.isoformat(),
        "ends_at": a.ends_at.isoformat() if a.ends_at else None,
        "source": a.source,
        "flaps": a.flaps,
        "suppressed_by": a.suppressed_by,
    }


_SEVERITY_COLOURS = {"info": "green", "warning": "yellow", "critical": "red"}


@alerts_app.command("list")
def alerts_list(
    state: Annotated[
        AlertState | None, typer.Option("--state", help="only firing or resolved alerts")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Alerts, the most recently changed first."""
    with _store().begin() as conn:
        found = list_alerts(conn, state=state.value if state is not None else None)
    if output is Output.json:
        _print_json([_alert_json(a) for a in found])
        return
    table = Table(
        "FINGERPRINT",
        "ALERTNAME",
        "SEVERITY",
        "STATE",
        "LABELS",
        "SINCE",
        "SUPPRESSED BY",
        box=None,
    )
    for a in found:
        labels = " ".join(f"{k}={a.labels[k]}" for k in LABEL_COLUMNS if k in a.labels)
        colour = "red" if a.firing else "green"
        table.add_row(
            a.fingerprint,
            escape(a.name),
            f"[{_SEVERITY_COLOURS.get(a.severity, 'yellow')}]{escape(a.severity)}[/]",
            f"[{colour}]{a.state}[/]",
            escape(labels),
            _when(a.starts_at),
            escape(", ".join(a.suppressed_by)),
        )
    out.print(table)


@alerts_app.command("groups")
def alerts_groups(output: OutputOption = Output.table) -> None:
    """Alert groups, the newest first: receiver, grouped labels, acknowledgement, escalation."""
    with _store().begin() as conn:
        found = list_groups(conn)
    if output is Output.json:
        _print_json(
            [
                {
                    "id": g.id,
                    "receiver": g.receiver,
                    "labels": g.labels,
                    "state": g.state,
                    "opened_at": g.opened_at.isoformat(),
                    "closed_at": g.closed_at.isoformat() if g.closed_at else None,
                    "acknowledged_by": g.acknowledged_by,
                    "escalation_level": g.escalation_level,
                    "firing": g.notified_firing,
                }
                for g in found
            ]
        )
        return
    table = Table(
        "ID", "RECEIVER", "LABELS", "STATE", "OPENED", "ACKNOWLEDGED BY", "LEVEL", box=None
    )
    for g in found:
        table.add_row(
            str(g.id),
            g.receiver,
            escape(" ".join(f"{k}={v}" for k, v in g.labels.items())),
            g.state,
            _when(g.opened_at),
            escape(g.acknowledged_by or ""),
            str(g.escalation_level),
        )
    out.print(table)


AlertTarget = Annotated[str, typer.Argument(help="a group id (12 or g12) or an alert fingerprint")]


@alerts_app.command("ack")
def alerts_ack(target: AlertTarget) -> None:
    """Acknowledge the groups TARGET names: their escalation stops."""
    groups = _operate(alert_commands.acknowledge, target)
    ids = ", ".join(str(g.id) for g in groups)
    out.print(f"acknowledged group(s) {ids}", markup=False, highlight=False)


@alerts_app.command("resolve")
def alerts_resolve(target: AlertTarget) -> None:
    """Resolve by hand the firing alerts TARGET names."""
    done = _operate(alert_commands.resolve, target)
    out.print(f"resolved {len(done)} alert(s)", markup=False, highlight=False)


def _silence_json(s: Silence, now: datetime) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": [str(m) for m in s.matchers],
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "created_by": s.created_by,
        "comment": s.comment,
        "active": s.active(now),
    }


@alerts_app.command("silence")
def alerts_silence(
    matchers: Annotated[
        list[str], typer.Argument(help='matchers, like alertname="RegionDown" region=~"eu-.+"')
    ],
    duration: Annotated[
        timedelta,
        typer.Option(
            "--duration", parser=parse_duration, metavar="DURATION", help="how long, like 2h"
        ),
    ] = timedelta(hours=2),
    comment: Annotated[str, typer.Option("--comment", help="why: shown with the silence")] = "",
) -> None:
    """Mute the alerts every MATCHER matches, from now for DURATION."""
    settings = _settings()
    now = clock.now()
    with open_store(settings.database_url).begin() as conn:
        made = create_silence(
            conn,
            matchers=matchers,
            starts_at=now,
            ends_at=now + duration,
            created_by=settings.actor,
            comment=comment,
            now=now,
        )
    out.print(
        f"silence {made.id} until {_when(made.ends_at)}: {', '.join(str(m) for m in made.matchers)}",
        markup=False,
        highlight=False,
    )


@alerts_app.command("silences")
def alerts_silences(
    expired: Annotated[bool, typer.Option("--expired", help="list expired ones too")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Silences by id: pending and active ones (with --expired, every one)."""
    now = clock.now()
    with _store().begin() as conn:
        found = list_silences(conn, at=now, include_expired=expired)
    if output is Output.json:
        _print_json([_silence_json(s, now) for s in found])
        return
    table = Table("ID", "MATCHERS", "STARTS", "ENDS", "STATE", "BY", "COMMENT", box=None)
    for s in found:
        state = "active" if s.active(now) else "expired" if s.ends_at <= now else "pending"
        table.add_row(
            str(s.id),
            escape(" ".join(str(m) for m in s.matchers)),
            _when(s.starts_at),
            _when(s.ends_at),
            state,
            escape(s.created_by),
            escape(s.comment),
        )
    out.print(table)


@alerts_app.command("unsilence")
def alerts_unsilence(
    silence_id: Annotated[int, typer.Argument(help="the silence's id, as `alerts silences` lists")],
) -> None:
    """Expire a silence now: the alerts it muted notify again."""
    with _store().begin() as conn:
        done = expire_silence(conn, silence_id, clock.now())
    out.print(f"silence {done.id} expired at {_when(done.ends_at)}", markup=False, highlight=False)


def _iso_time(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    return value


@oncall_app.command("who")
def oncall_who(
    schedule: Annotated[
        str | None, typer.Option("--schedule", help="only this on-call schedule")
    ] = None,
    at: Annotated[
        datetime | None,
        typer.Option(
            "--at",
            parser=_iso_time,
            metavar="ISO",
            help="when, ISO 8601, in UTC unless it says; default: now",
        ),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Who is on call now (or --at), until when, and who each escalation level pages."""
    when = clock.now() if at is None else at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    with _store().begin() as conn:
        schedules = declared(conn, OnCallSchedule)
        policies = declared(conn, EscalationPolicy)
    specs = {s.name: s.spec for s in schedules}
    if schedule is not None:
        if schedule not in specs:
            raise NotFound("on-call schedule", schedule)
        schedules = [s for s in schedules if s.name == schedule]
    rows = []
    for s in schedules:
        horizon = when + 2 * s.spec.rotation.length
        current = shifts(s.spec, when, horizon)
        until = current[0].end if current and current[0].end < horizon else None
        person = on_call(s.spec, when)
        rows.append((s.name, person, until, bool(current and current[0].override)))
    levels = (
        [
            (p.name, i, people_at(p.spec, i, when, specs))
            for p in policies
            for i in range(len(p.spec.levels))
        ]
        if schedule is None
        else []
    )
    if output is Output.json:
        _print_json(
            {
                "at": when.isoformat(),
                "schedules": [
                    {
                        "schedule": name,
                        "name": person.name,
                        "email": str(person.email),
                        "until": until.isoformat() if until else None,
                        "override": override,
                    }
                    for name, person, until, override in rows
                ],
                "escalation": [
                    {
                        "policy": name,
                        "level": level,
                        "people": [{"name": p.name, "email": str(p.email)} for p in people],
                    }
                    for name, level, people in levels
                ],
            }
        )
        return
    table = Table("SCHEDULE", "ON CALL", "EMAIL", "UNTIL", box=None)
    for name, person, until, override in rows:
        who = escape(person.name) + (" (override)" if override else "")
        table.add_row(name, who, escape(str(person.email)), _when(until) or "-")
    out.print(table)
    if levels:
        out.print()
        policy_table = Table("POLICY", "LEVEL", "PAGES", box=None)
        for name, level, people in levels:
            policy_table.add_row(
                name, str(level), escape(", ".join(f"{p.name} <{p.email}>" for p in people))
            )
        out.print(policy_table)
    out.print(f"at {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC")


def _span(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _incident_json(i: incidents.Incident) -> dict[str, Any]:
    def seconds(value: timedelta | None) -> float | None:
        return None if value is None else value.total_seconds()

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": i.id,
        "title": i.title,
        "severity": i.severity,
        "status": i.status,
        "labels": i.labels,
        "tenants": list(i.tenants),
        "anomaly_at": iso(i.anomaly_at),
        "detected_at": i.detected_at.isoformat(),
        "acknowledged_at": iso(i.acknowledged_at),
        "resolved_at": iso(i.resolved_at),
        "resolved_by": i.resolved_by,
        "pages": i.pages,
        "mttd_s": seconds(i.mttd),
        "mtta_s": seconds(i.mtta),
        "mttr_s": seconds(i.mttr),
    }


def _incidents_table(found: list[incidents.Incident]) -> Table:
    table = Table(
        "ID",
        "SEVERITY",
        "STATUS",
        "TITLE",
        "TENANTS",
        "DETECTED",
        "MTTD",
        "MTTR",
        "RESOLVED BY",
        "PAGES",
        box=None,
    )
    for i in found:
        table.add_row(
            str(i.id),
            f"[{_SEVERITY_COLOURS.get(i.severity, 'yellow')}]{i.severity}[/]",
            i.status,
            escape(i.title),
            escape(", ".join(i.tenants)),
            _when(i.detected_at),
            _span(i.mttd),
            _span(i.mttr),
            escape(i.resolved_by or ""),
            str(i.pages),
        )
    return table


IncidentArgument = Annotated[int, typer.Argument(help="the incident's id")]


@incidents_app.command("list")
def incidents_list(
    status: Annotated[
        IncidentStatus | None, typer.Option("--status", help="only incidents in this status")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Incidents, the newest first, with their response times."""
    with _store().begin() as conn:
        found = incidents.list_incidents(conn, status=status.value if status else None)
    if output is Output.json:
        _print_json([_incident_json(i) for i in found])
        return
    out.print(_incidents_table(found))


@incidents_app.command("show")
def incidents_show(incident_id: IncidentArgument, output: OutputOption = Output.table) -> None:
    """One incident and its timeline."""
    with _store().begin() as conn:
        found = incidents.get_incident(conn, incident_id)
        entries = incidents.timeline(conn, incident_id)
    if output is Output.json:
        _print_json(
            {
                **_incident_json(found),
                "timeline": [
                    {
                        "at": e.at.isoformat(),
                        "kind": e.kind,
                        "message": e.message,
                        "details": e.details,
                    }
                    for e in entries
                ],
            }
        )
        return
    out.print(_incidents_table([found]))
    out.print("\n[bold]timeline[/]")
    table = Table("WHEN", "EVENT", "MESSAGE", box=None)
    table.columns[-1].overflow = "fold"
    for e in entries:
        table.add_row(_when(e.at), e.kind, escape(e.message))
    out.print(table)


@incidents_app.command("postmortem")
def incidents_postmortem(
    incident_id: IncidentArgument,
    to: Annotated[
        Path | None,
        typer.Option("--out", help="write the Markdown here; default: stdout", dir_okay=False),
    ] = None,
) -> None:
    """A Markdown postmortem draft of an incident, its timeline in full."""
    with _store().begin() as conn:
        found = incidents.get_incident(conn, incident_id)
        entries = incidents.timeline(conn, incident_id)
    _write_or_print(
        incidents.postmortem(found, entries), to, f"postmortem of incident {incident_id}"
    )


@runbooks_app.command("list")
def runbooks_list(output: OutputOption = Output.table) -> None:
    """Declared runbooks: what alerts they match, their actions and guards."""
    with _store().begin() as conn:
        found = declared(conn, Runbook)
    if output is Output.json:
        _print_json([r.model_dump(mode="json", by_alias=True) for r in found])
        return
    table = Table("NAME", "MATCH", "ACTIONS", "GUARDS", box=None)
    for r in found:
        g = r.spec.guards
        guards = f"{g.max_runs_per_hour}/h, cooldown {format_duration(g.cooldown)}"
        if g.dry_run:
            guards += ", dry run"
        actions = ", ".join(
            a.action + (" (approval)" if a.approval else "") for a in r.spec.actions
        )
        table.add_row(r.name, escape(" ".join(r.spec.match)), actions, guards)
    out.print(table)


@runbooks_app.command("runs")
def runbooks_runs(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many runs")] = 50,
    output: OutputOption = Output.table,
) -> None:
    """Runbook runs, the newest first."""
    with _store().begin() as conn:
        found = list_runs(conn, limit=limit)
    if output is Output.json:
        _print_json(
            [
                {
                    **r.__dict__,
                    "deadline": r.deadline.isoformat() if r.deadline else None,
                    "started_at": r.started_at.isoformat(),
                    "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                }
                for r in found
            ]
        )
        return
    table = Table(
        "ID", "RUNBOOK", "ALERT", "LABELS", "STATE", "STEP", "STARTED", "FINISHED", box=None
    )
    for r in found:
        labels = " ".join(f"{k}={r.labels[k]}" for k in LABEL_COLUMNS if k in r.labels)
        table.add_row(
            str(r.id),
            r.runbook,
            escape(r.labels.get("alertname", r.fingerprint)),
            escape(labels),
            r.state + (" (dry run)" if r.dry_run else ""),
            str(r.step + 1),
            _when(r.started_at),
            _when(r.finished_at),
        )
    out.print(table)


@runbooks_app.command("approve")
def runbooks_approve(
    run_id: Annotated[int, typer.Argument(help="the run's id, as `runbooks runs` lists it")],
) -> None:
    """Let a run's step that waits for approval go ahead (at the next control tick)."""
    settings = _settings()
    with open_store(settings.database_url).begin() as conn:
        run = approve(conn, run_id, actor=settings.actor, now=clock.now())
    out.print(
        f"run {run.id} of {run.runbook} approved: step {run.step + 1} runs next",
        markup=False,
        highlight=False,
    )


sla_app = typer.Typer(
    help="Customer SLAs: where each tenant stands, reports, the credits ledger, OpenSLO.",
    no_args_is_help=True,
)
app.add_typer(sla_app, name="sla")


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    html = "html"


def _pct(value: float) -> str:
    return f"{value * 100:.3f}%"


def _met(text: str, met: bool) -> str:
    return f"[{'green' if met else 'red'}]{escape(text)}[/]"


def _write_or_print(text: str, to: Path | None, what: str) -> None:
    if not text.endswith("\n"):
        text += "\n"
    if to is None:
        sys.stdout.write(text)
        return
    try:
        to.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {to}: {exc.strerror or exc}") from exc
    err.print(f"{what} written to {to}", markup=False, highlight=False)


@sla_app.command("status")
def sla_status(every_region: GlobalOption = False, output: OutputOption = Output.table) -> None:
    """Each tenant against each SLA covering it, this period: SLOs, budget left, credits."""
    now = clock.now()
    with _regions(every_region) as stores, stores[0].store.begin() as conn:
        found = []
        for contract in declared(conn, SLA):
            for tenant in covered_tenants(conn, contract):
                period = period_of(now, contract.spec.time_zone)
                counts = None
                if every_region:  # the tenant's minutes in every region, from rollups only
                    rollups = global_rollups(
                        stores, since=period.start, until=min(now, period.end), tenant=tenant
                    )
                    counts = counts_from(rollups.values(), contract.spec.models)
                found.append(tenant_status(conn, contract, tenant, now, counts=counts))
    if output is Output.json:
        _print_json([s.to_dict() for s in found])
        return
    table = Table(
        "SLA", "TENANT", "PERIOD", "SLOS", "BUDGET LEFT", "PROJECTED", "CREDIT", "AT RISK", box=None
    )
    for s in found:
        currency = s.sla.spec.currency
        table.add_row(
            escape(s.sla.name),
            escape(s.tenant),
            str(s.period),
            "\n".join(
                _met(f"{x.slo.name} {_pct(x.sli.value)}/{_pct(x.slo.objective)}", x.met)
                for x in s.slos
            ),
            "\n".join(_met(_pct(x.budget_left), x.budget_left >= 0) for x in s.slos),
            "\n".join(_met(_pct(x.projected), x.projected >= x.slo.objective) for x in s.slos),
            _met(f"{s.credit_amount:.2f} {currency}", s.credit_share == 0),
            _met(f"{s.credit_at_risk:.2f} {currency}", s.projected_credit_share == 0),
        )
    out.print(table)
    if not found:
        err.print("no SLA covers any tenant; declare one (kind: SLA) and apply it", style="yellow")


def _tenant_statuses(tenant: str, period: str | None) -> list[TenantStatus]:
    now = clock.now()
    with _store().begin() as conn:
        covering = [s for s in declared(conn, SLA) if tenant in covered_tenants(conn, s)]
        if not covering:
            raise InvalidInput(f"no SLA covers tenant {tenant!r}")
        found = []
        for s in covering:
            chosen = None
            if period is not None:
                try:
                    chosen = parse_period(period, s.spec.time_zone)
                except ValueError as exc:
                    raise InvalidInput(str(exc)) from exc
                if chosen.start > now:
                    raise InvalidInput(f"period {chosen} has not started yet")
            found.append(tenant_status(conn, s, tenant, now, chosen))
    return found


def _sla_csv(found: list[TenantStatus]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["date", "slo", "value"])
    several = len(found) > 1

    def name(s: TenantStatus, slo: str) -> str:
        return f"{s.sla.name}:{slo}" if several else slo

    for s in found:
        for slo, days in s.daily.items():
            for day, value in days.items():
                writer.writerow([day.isoformat(), name(s, slo), f"{value:.6f}"])
    for s in found:
        for x in s.slos:
            writer.writerow(["total", name(s, x.slo.name), f"{x.sli.value:.6f}"])
    return buffer.getvalue()


def _print_sla_report(s: TenantStatus) -> None:
    spec = s.sla.spec
    out.print(
        f"[bold]{escape(s.sla.name)}[/] for {escape(s.tenant)}, period {s.period}"
        f" ({escape(spec.time_zone)})"
    )
    table = Table(
        "SLO", "GOOD", "TOTAL", "VALUE", "OBJECTIVE", "BUDGET LEFT", "PROJECTED", box=None
    )
    for x in s.slos:
        table.add_row(
            escape(x.slo.name),
            str(x.sli.good),
            str(x.sli.total),
            _met(_pct(x.sli.value), x.met),
            _pct(x.slo.objective),
            _met(_pct(x.budget_left), x.budget_left >= 0),
            _pct(x.projected),
        )
    out.print(table)
    out.print(
        f"credit so far: {s.credit_amount:.2f} {spec.currency} ({_pct(s.credit_share)});"
        f" at risk: {s.credit_at_risk:.2f} {spec.currency} ({_pct(s.projected_credit_share)})",
        markup=False,
        highlight=False,
    )
    for reason in s.reasons:
        out.print(f"  - {reason}", markup=False, highlight=False)
    if s.incidents:
        incidents_table = Table("ID", "TITLE", "DETECTED", "ACKNOWLEDGED", "RESOLVED", box=None)
        for i in s.incidents:
            incidents_table.add_row(
                *(
                    escape("" if i.get(k) is None else str(i.get(k)))
                    for k in ("id", "title", "detected_at", "acknowledged_at", "resolved_at")
                )
            )
        out.print("[bold]incidents that counted[/]")
        out.print(incidents_table)
    else:
        out.print("no critical incident counted", style="dim")


@sla_app.command("report")
def sla_report(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="the tenant to report on")],
    period: Annotated[
        str | None,
        typer.Option("--period", metavar="YYYY-MM", help="a month, e.g. 2026-11; default: now"),
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="table, csv (daily series) or html")
    ] = ReportFormat.table,
    to: Annotated[
        Path | None,
        typer.Option("--out", help="write the report here; default: stdout", dir_okay=False),
    ] = None,
) -> None:
    """A tenant's SLA report for a period: SLOs, daily values, credit and incidents."""
    found = _tenant_statuses(tenant, period)
    if fmt is ReportFormat.csv:
        _write_or_print(_sla_csv(found), to, "SLA report")
    elif fmt is ReportFormat.html:
        _write_or_print(render_html_all(found), to, "SLA report")
    elif to is not None:
        raise InvalidInput("--out needs --format csv or html")
    else:
        for i, s in enumerate(found):
            if i:
                out.print()
            _print_sla_report(s)


@sla_app.command("ledger")
def sla_ledger(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="only this tenant")] = None,
    output: OutputOption = Output.table,
) -> None:
    """The service credits ledger, the newest period first."""
    with _store().begin() as conn:
        rows = ledger(conn, tenant=tenant)
    if output is Output.json:
        _print_json(
            [
                {
                    "period": r.period,
                    "sla": r.sla,
                    "tenant": r.tenant,
                    "state": r.state,
                    "share": r.share,
                    "amount": r.amount,
                    "currency": r.currency,
                    "reasons": r.reasons,
                    "computed_at": r.computed_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    table = Table(
        "PERIOD", "SLA", "TENANT", "STATE", "SHARE", "AMOUNT", "CURRENCY", "COMPUTED", box=None
    )
    for r in rows:
        table.add_row(
            r.period,
            escape(r.sla),
            escape(r.tenant),
            r.state,
            _pct(r.share),
            f"{r.amount:.2f}",
            r.currency,
            _when(r.computed_at),
        )
    out.print(table)


@sla_app.command("export")
def sla_export(
    to: Annotated[
        Path | None,
        typer.Option("--out", help="write the YAML here; default: stdout", dir_okay=False),
    ] = None,
) -> None:
    """Every stored SLA as OpenSLO v1 YAML (SLI and SLO documents)."""
    with _store().begin() as conn:
        found = declared(conn, SLA)
    _write_or_print(export_yaml(found), to, f"{len(found)} SLA(s) as OpenSLO")


@sla_app.command("import")
def sla_import(
    source: Annotated[Path, typer.Argument(help="an OpenSLO YAML file", dir_okay=False)],
    to: Annotated[
        Path | None,
        typer.Option(
            "--out", help="write the fleet YAML here, e.g. fleet-sla.yaml; default: stdout"
        ),
    ] = None,
) -> None:
    """Convert OpenSLO YAML to modelfleet SLA documents; writes nothing to the store.

    Apply the result with `modelfleet apply -f fleet-sla.yaml`.
    """
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}") from exc
    found = import_yaml(text)
    documents = [
        {
            "apiVersion": s.api_version,
            **s.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        }
        for s in found
    ]
    _write_or_print(
        yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True),
        to,
        f"{len(found)} SLA(s); apply with `modelfleet apply -f {to}`",
    )


capacity_app = typer.Typer(
    help="Capacity: replay demand through autoscaling policies, and what it costs.",
    no_args_is_help=True,
)
app.add_typer(capacity_app, name="capacity")


class ScalingMode(StrEnum):
    predictive = "predictive"
    reactive = "reactive"
    static = "static"


AUTO_REPLICAS_AT_P95 = 20  # without --per-replica-rps, the trace's busy hours need this many


@capacity_app.command("simulate")
def capacity_simulate(
    trace_file: Annotated[
        Path,
        typer.Option(
            "--trace", metavar="FILE.csv", help="timestamp,requests per interval (header optional)"
        ),
    ],
    policy: Annotated[
        ScalingMode, typer.Option("--policy", help="how replicas follow demand")
    ] = ScalingMode.predictive,
    per_replica_rps: Annotated[
        float | None,
        typer.Option(
            "--per-replica-rps",
            min=0,
            help="requests/s one replica serves (default: the trace's 95th percentile rate / "
            f"{AUTO_REPLICAS_AT_P95})",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        timedelta | None,
        typer.Option(
            "--interval",
            parser=parse_duration,
            metavar="DURATION",
            help="one trace row's span (default: the trace's median step)",
            show_default=False,
        ),
    ] = None,
    startup_delay: Annotated[
        timedelta,
        typer.Option(
            "--startup-delay",
            parser=parse_duration,
            metavar="DURATION",
            help="from asking for a replica until it serves",
            show_default="5m",
        ),
    ] = timedelta(minutes=5),
    min_replicas: Annotated[int, typer.Option("--min", min=1, help="fewest replicas")] = 1,
    max_replicas: Annotated[int, typer.Option("--max", min=1, help="most replicas")] = 1000,
    static_replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            min=1,
            help="static: replicas kept (default: the trace's peak at the target utilization)",
            show_default=False,
        ),
    ] = None,
    target_utilization: Annotated[
        float,
        typer.Option(
            "--target-utilization", min=0, max=1, help="HPA's target, on the load observed"
        ),
    ] = 0.75,
    forecast_utilization: Annotated[
        float,
        typer.Option(
            "--forecast-utilization",
            min=0,
            max=1,
            help="predictive: how full the forecast's upper bound may make replicas",
        ),
    ] = 0.9,
    level: Annotated[
        float,
        typer.Option("--level", min=0.5, max=0.999, help="predictive: the upper bound's quantile"),
    ] = 0.9,
    price: Annotated[
        float, typer.Option("--price", min=0, help="price of one replica-hour")
    ] = 0.10,
    output: OutputOption = Output.table,
) -> None:
    """Replay FILE.csv through a scaling policy: under-provisioned share, utilization, cost.

    Every interval the policy decides from the load of the one before (and, predictive, from
    a forecast refitted daily on the trace so far); replicas asked for serve after the
    start-up delay. Compare policies by running it once with each."""
    try:
        trace = read_trace(trace_file)
        if len(trace) < 2:
            raise ValueError("the trace needs at least two rows")
        steps = np.diff([t for t, _ in trace])
        interval_s = interval.total_seconds() if interval else float(np.median(steps))
        if not interval_s > 0:
            raise ValueError("timestamps must increase")
        rates = np.array([r for _, r in trace]) / interval_s
        if per_replica_rps is None:
            busy = float(np.quantile(rates, 0.95))
            per_replica_rps = busy / AUTO_REPLICAS_AT_P95 if busy > 0 else 1.0
            err.print(
                f"--per-replica-rps not given: {per_replica_rps:.4g} requests/s per replica "
                f"(the trace's 95th percentile rate / {AUTO_REPLICAS_AT_P95})",
                markup=False,
                highlight=False,
            )
        scaling = ScalingPolicy(
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            per_replica_rps=per_replica_rps,
            startup_lead=startup_delay.total_seconds(),
            target_utilization=target_utilization,
            forecast_utilization=forecast_utilization,
        )
    except OSError as exc:
        raise InvalidInput(f"{exc.filename or trace_file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InvalidInput(f"{trace_file}: {exc}") from exc
    if policy is ScalingMode.static and static_replicas is None:
        static_replicas = scaling.clamp(
            math.ceil(float(np.max(rates)) / (per_replica_rps * target_utilization))
        )
    forecaster = (
        OnlineForecaster(interval_s, level=level) if policy is ScalingMode.predictive else None
    )
    with Progress(console=err, transient=True, disable=forecaster is None) as progress:
        task = progress.add_task("replaying", total=len(trace))

        def forecast(history: np.ndarray, h: int) -> np.ndarray:
            progress.advance(task)
            assert forecaster is not None  # only called in predictive mode
            return forecaster(history, h)

        try:
            result = replay(
                trace,
                scaling,
                policy.value,
                interval_s=interval_s,
                startup_delay_s=startup_delay.total_seconds(),
                forecaster=forecast,
                price_per_replica_hour=price,
                static_replicas=static_replicas,
            )
        except ValueError as exc:
            raise InvalidInput(f"{trace_file}: {exc}") from exc
    figures = {
        "policy": policy.value,
        "intervals": len(trace),
        "interval_s": interval_s,
        "per_replica_rps": per_replica_rps,
        "under_provisioned_intervals": int(np.sum(result.demand > result.capacity)),
        "under_provisioned_share": result.under_provisioned_share,
        "mean_utilization": result.mean_utilization,
        "replica_hours": result.replica_hours,
        "cost": result.cost,
    }
    if output is Output.json:
        _print_json(figures)
        return
    table = Table("POLICY", "INTERVALS", "UNDER-PROVISIONED", "MEAN UTILIZATION", box=None)
    table.add_column("REPLICA-HOURS", justify="right")
    table.add_column("COST", justify="right")
    table.add_row(
        policy.value,
        str(len(trace)),
        f"{figures['under_provisioned_intervals']} ({result.under_provisioned_share:.1%})",
        f"{result.mean_utilization:.1%}",
        f"{result.replica_hours:,.1f}",
        f"{result.cost:,.2f}",
    )
    out.print(table)


PLAN_HISTORY = timedelta(weeks=4)
PLAN_MIN_HISTORY_H = 48  # two daily cycles, the least a daily season is learnt from


@capacity_app.command("plan")
def capacity_plan(
    model: Annotated[str, typer.Option("--model", help="the model to plan for")],
    days: Annotated[int, typer.Option("--days", min=1, max=56, help="days ahead to plan")] = 7,
    per_replica_rps: Annotated[
        float | None,
        typer.Option(
            "--per-replica-rps",
            min=0,
            help="requests/s one replica serves; default: as the capacity controller measured",
        ),
    ] = None,
    hourly: Annotated[
        bool, typer.Option("--hourly", help="list every hour's replicas, not each day's range")
    ] = False,
    every_region: GlobalOption = False,
    output: OutputOption = Output.table,
) -> None:
    """Forecast MODEL's next days from 4 weeks of rollups, size replicas for the forecast's
    upper bound at the measured per-replica capacity (or --per-replica-rps), and price the
    cheapest reserved/on-demand/spot mix against all on demand."""
    now = clock.now()
    until = now.replace(minute=0, second=0, microsecond=0)
    since = until - PLAN_HISTORY
    with _store().begin() as conn:
        policy = next(
            (p.spec for p in declared(conn, CapacityPolicy) if p.spec.model == model), None
        )
        if policy is None:
            raise InvalidInput(f"model {model!r} has no CapacityPolicy: declare one to plan")
        instance = next(
            (i.spec for i in declared(conn, InstanceType) if i.name == policy.instance_type), None
        )
        if instance is None:
            raise InvalidInput(
                f"CapacityPolicy of {model!r} names instance type "
                f"{policy.instance_type!r}, which is not declared"
            )
        if per_replica_rps is None:
            per_replica_rps = per_replica_capacity(conn, policy, now)
        if not per_replica_rps and policy.mode != "static":
            raise InvalidInput(
                f"model {model!r} has no measured per-replica capacity: pass --per-replica-rps, "
                "or let the capacity controller measure it first"
            )
    # --global: the demand of every region, from their rollups alone.
    with _regions(every_region) as stores:
        rollups = global_rollups(stores, since=since, until=until, model=model)
    hours = int(PLAN_HISTORY / timedelta(hours=1))
    served = np.zeros(hours)
    for key, r in rollups.items():
        served[int((key.minute - since) / timedelta(hours=1))] += r.requests - r.status["rejected"]
    seen = np.flatnonzero(served)
    history = served[seen[0] :] / 3600.0 if seen.size else served[:0]
    if history.size < PLAN_MIN_HISTORY_H:
        raise InvalidInput(
            f"model {model!r} has {history.size} hour(s) of request history; "
            f"planning needs at least {PLAN_MIN_HISTORY_H}"
        )
    horizon = days * 24
    if policy.mode == "static":
        replicas = [policy.static_replicas or policy.max_replicas] * horizon
    else:
        level = two_sided(policy.forecast_level)
        upper = DemandForecaster(level=level).fit(history).predict(horizon).upper
        assert per_replica_rps  # refused above when missing, outside static mode
        scaling = ScalingPolicy(
            min_replicas=policy.min_replicas,
            max_replicas=policy.max_replicas,
            per_replica_rps=per_replica_rps,
            target_utilization=policy.target_utilization,
            forecast_utilization=policy.forecast_utilization,
        )
        replicas = [predictive_replicas(float(u), scaling) for u in upper]
    plan = plan_mix(
        replicas,
        instance,
        replicas_per_instance=policy.replicas_per_instance,
        interruptible=policy.interruptible,
    )
    start = until
    scored = holdout_mase(history)
    accuracy = {"mase": scored[0], "held_out_hours": scored[1]} if scored is not None else None
    per_day = [
        {
            "day": (start + timedelta(days=d)).date().isoformat(),
            "min_replicas": min(replicas[d * 24 : (d + 1) * 24]),
            "max_replicas": max(replicas[d * 24 : (d + 1) * 24]),
        }
        for d in range(days)
    ]
    if output is Output.json:
        _print_json(
            {
                "model": model,
                "instance_type": policy.instance_type,
                "per_replica_rps": per_replica_rps,
                "from": start.isoformat(),
                "forecast_accuracy": accuracy,
                "days": per_day,
                "hours": [
                    {"hour": (start + timedelta(hours=h)).isoformat(), "replicas": count}
                    for h, count in enumerate(replicas)
                ],
                "mix": _mix_json(plan),
            }
        )
        return
    if hourly:
        table = Table("HOUR", box=None)
        table.add_column("REPLICAS", justify="right")
        for h, count in enumerate(replicas):
            table.add_row(f"{start + timedelta(hours=h):%Y-%m-%d %H:%M}", str(count))
    else:
        table = Table("DAY", box=None)
        table.add_column("MIN REPLICAS", justify="right")
        table.add_column("MAX REPLICAS", justify="right")
        for d in per_day:
            table.add_row(str(d["day"]), str(d["min_replicas"]), str(d["max_replicas"]))
    out.print(table)
    if scored is not None and policy.mode != "static":
        out.print(
            f"forecast accuracy: MASE {scored[0]:.2f} on the last {scored[1]} hours held out "
            "(below 1 beats the seasonal-naive forecast)",
            markup=False,
            highlight=False,
        )
    excess = "spot" if plan.excess == "spot" else "on demand"
    peak = max((h.instances - h.reserved for h in plan.hours), default=0)
    out.print(
        f"{policy.instance_type}: reserve {plan.reserved}, up to {peak} more {excess}; "
        f"{plan.total_cost:,.2f} {plan.currency} against {plan.on_demand_only_cost:,.2f} all on "
        f"demand (saves {plan.saving:,.2f})",
        markup=False,
        highlight=False,
    )


def _mix_json(plan: MixPlan) -> dict[str, Any]:
    return {
        "currency": plan.currency,
        "reserved_instances": plan.reserved,
        "excess_on": plan.excess,
        "peak_excess_instances": max((h.instances - h.reserved for h in plan.hours), default=0),
        "reserved_cost": plan.reserved_cost,
        "on_demand_cost": plan.on_demand_cost,
        "spot_cost": plan.spot_cost,
        "total_cost": plan.total_cost,
        "on_demand_only_cost": plan.on_demand_only_cost,
        "saving": plan.saving,
    }


ModelFilterOption = Annotated[
    str | None, typer.Option("--model", help="only this model; default: every one")
]
SinceOption = Annotated[
    timedelta,
    typer.Option(
        "--since",
        parser=parse_duration,
        metavar="DURATION",
        help="how far back, like 7d or 12h (default: 7d)",
        show_default=False,
    ),
]


def _usages(model: str | None, since: timedelta) -> tuple[list[Usage], datetime, datetime]:
    """Usage of MODEL (or of every model with a CapacityPolicy) over the last `since`; models
    whose per-replica capacity is not measured yet are left out, with a note on stderr."""
    minutes = int(since / timedelta(minutes=1))
    if minutes < 1:
        raise InvalidInput(f"--since must be at least a minute, got {format_duration(since)}")
    until = clock.now().replace(second=0, microsecond=0)
    start = until - timedelta(minutes=minutes)
    found: list[Usage] = []
    with _store().begin() as conn:
        policies = [p.spec for p in declared(conn, CapacityPolicy)]
        if model is not None:
            policies = [p for p in policies if p.model == model]
            if not policies:
                raise InvalidInput(f"model {model!r} has no CapacityPolicy: declare one first")
        if not policies:
            raise InvalidInput("no CapacityPolicy is declared: declare one per model first")
        instances = {i.name: i.spec for i in declared(conn, InstanceType)}
        for policy in policies:
            instance = instances.get(policy.instance_type)
            if instance is None:
                raise InvalidInput(
                    f"CapacityPolicy of {policy.model!r} names instance type "
                    f"{policy.instance_type!r}, which is not declared"
                )
            found.append(capacity_usage(conn, policy, instance, since=start, until=until))
    measured = [u for u in found if u.per_replica_rps]
    for u in found:
        if not u.per_replica_rps:
            message = (
                f"model {u.model!r} has no measured per-replica capacity yet: "
                "let the capacity controller measure it first"
            )
            if model is not None:
                raise InvalidInput(message)
            err.print(f"note: {message}; left out", markup=False, highlight=False)
    return measured, start, until


@capacity_app.command("cost")
def capacity_cost(
    model: ModelFilterOption = None,
    since: SinceOption = timedelta(days=7),
    output: OutputOption = Output.table,
) -> None:
    """Cost per tenant over the last DURATION: each hour's on-demand cost times its utilization
    shared by the requests each tenant was served, the rest shown as idle (as OpenCost does)."""
    usages, start, until = _usages(model, since)
    currencies = {u.currency for u in usages}
    if len(currencies) > 1:
        raise InvalidInput(
            f"the instance types are priced in {', '.join(sorted(currencies))}: "
            "pass --model to see one model at a time"
        )
    # Every model's hours side by side, one interval each; a tenant absent from a model's
    # traffic served nothing in its hours.
    tenants = sorted({t for u in usages for t in u.served})
    costs: list[float] = []
    utilization: list[float] = []
    requests: dict[str, list[int]] = {t: [] for t in tenants}
    for u in usages:
        costs += u.cost
        utilization += u.utilization()
        for t in tenants:
            requests[t] += u.served.get(t, (0,) * len(u.cost))
    split = allocate(costs, requests, utilization)
    currency = currencies.pop() if currencies else "USD"
    rows = [
        {
            "tenant": t,
            "requests": sum(requests[t]),
            "cost": split.by_tenant[t],
            "share": split.by_tenant[t] / split.total if split.total else 0.0,
        }
        for t in tenants
    ]
    idle_share = split.idle / split.total if split.total else 0.0
    if output is Output.json:
        _print_json(
            {
                "since": start.isoformat(),
                "until": until.isoformat(),
                "models": [u.model for u in usages],
                "currency": currency,
                "tenants": rows,
                "idle": {"cost": split.idle, "share": idle_share},
                "total": split.total,
            }
        )
        return
    table = Table("TENANT", box=None)
    table.add_column("REQUESTS", justify="right")
    table.add_column(f"COST ({currency})", justify="right")
    table.add_column("SHARE", justify="right")
    for row in rows:
        table.add_row(
            str(row["tenant"]), f"{row['requests']:,}", f"{row['cost']:,.2f}", f"{row['share']:.1%}"
        )
    table.add_row("(idle)", "", f"{split.idle:,.2f}", f"{idle_share:.1%}")
    table.add_row(
        "total",
        f"{sum(sum(r) for r in requests.values()):,}",
        f"{split.total:,.2f}",
        "100.0%" if split.total else "-",
    )
    out.print(table)


@capacity_app.command("rightsize")
def capacity_rightsize(
    model: ModelFilterOption = None,
    since: SinceOption = timedelta(days=7),
    output: OutputOption = Output.table,
) -> None:
    """Right-size each model's replicas from the last DURATION: the p95 of the hourly
    utilization its replicas now would have had, against the policy's target utilization."""
    usages, start, until = _usages(model, since)
    with _store().begin() as conn:
        policies = {p.spec.model: p.spec for p in declared(conn, CapacityPolicy)}
        instances = {i.name: i.spec for i in declared(conn, InstanceType)}
    rows = []
    for u in usages:
        policy = policies[u.model]
        advice = right_size(
            u.utilization_at(u.replicas_now), u.replicas_now, target=policy.target_utilization
        )
        now_type = instances[policy.instance_type]
        cheapest = (
            smallest_fitting(
                instances, cpus=now_type.cpus, memory_gib=now_type.memory_gib, gpus=now_type.gpus
            )
            if len(instances) > 1
            else None
        )
        rows.append(
            {
                "model": u.model,
                "replicas": advice.replicas,
                "p95_utilization": advice.utilization_p,
                "target_utilization": advice.target,
                "recommended": advice.recommended,
                "change": advice.change,
                "instance_type": policy.instance_type,
                "cheapest_fitting_type": cheapest,
            }
        )
    if output is Output.json:
        _print_json({"since": start.isoformat(), "until": until.isoformat(), "models": rows})
        return
    table = Table("MODEL", box=None)
    table.add_column("REPLICAS", justify="right")
    table.add_column("P95 UTILIZATION", justify="right")
    table.add_column("TARGET", justify="right")
    table.add_column("RECOMMENDED", justify="right")
    table.add_column("CHANGE")
    table.add_column("INSTANCE TYPE")
    for row in rows:
        kind = str(row["instance_type"])
        if row["cheapest_fitting_type"] not in (None, kind):
            kind += f" (cheaper: {row['cheapest_fitting_type']})"
        table.add_row(
            str(row["model"]),
            str(row["replicas"]),
            f"{row['p95_utilization']:.1%}",
            f"{row['target_utilization']:.0%}",
            str(row["recommended"]),
            str(row["change"]),
            kind,
        )
    out.print(table)


region_app = typer.Typer(
    help="Regions: their status, and failing one over to another.", no_args_is_help=True
)
app.add_typer(region_app, name="region")


@region_app.command("list")
def region_list(output: OutputOption = Output.table) -> None:
    """Declared regions, their jurisdiction and URL, and whether each is up or failed over."""
    with _store().begin() as conn:
        found = region_states(conn)
    if output is Output.json:
        _print_json([{**r.__dict__, "updated_at": _when(r.updated_at) or None} for r in found])
        return
    table = Table("REGION", "JURISDICTION", "URL", "STATUS", "FAILOVER TO", "REASON", "SINCE")
    table.box = None
    for r in found:
        style = "red" if r.status == "down" else "green"
        table.add_row(
            r.region,
            r.jurisdiction,
            r.url,
            f"[{style}]{r.status}[/]",
            r.failover_to or "",
            escape(r.reason or ""),
            _when(r.updated_at),
        )
    out.print(table)


@region_app.command("down")
def region_down(
    region: Annotated[str, typer.Argument(help="the region to declare down")],
    to: Annotated[
        str | None,
        typer.Option("--to", help="where its tenants go; default: the Region's failover_to"),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="why, for the audit log")] = "",
) -> None:
    """Declare REGION down: gateways send its tenants to the failover region where their
    residency allows, and refuse the others with a 503 (written to every region's store)."""
    _region_status(region, down=True, to=to, reason=reason)


@region_app.command("up")
def region_up(
    region: Annotated[str, typer.Argument(help="the region to declare up again")],
    reason: Annotated[str, typer.Option("--reason", help="why, for the audit log")] = "",
) -> None:
    """Declare REGION up again: its tenants are served at home from the next refresh."""
    _region_status(region, down=False, to=None, reason=reason)


def _region_status(region: str, *, down: bool, to: str | None, reason: str) -> None:
    settings = _settings()
    store = _store()
    try:
        written = set_status_everywhere(
            store,
            settings.region,
            settings.secrets,
            region,
            down=down,
            failover_to=to,
            reason=reason or f"declared {'down' if down else 'up'} by {settings.actor}",
            actor=settings.actor,
            now=clock.now(),
        )
    finally:
        store.close()
    for w in written:
        if w.error is not None:
            err.print(f"{w.store_region}: not written: {w.error}", markup=False)
        else:
            done = "written" if w.changed else "unchanged"
            out.print(f"{w.store_region}: {done}", markup=False)
    if any(w.error is not None for w in written):
        raise typer.Exit(EXIT_FAILURE)


tenant_app = typer.Typer(
    help="A tenant's data in every region: export it all, or erase it.", no_args_is_help=True
)
app.add_typer(tenant_app, name="tenant")
TenantArgument = Annotated[str, typer.Argument(help="the tenant, as fleet.yaml names it")]


@tenant_app.command("export")
def tenant_export(
    tenant: TenantArgument,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="the archive to write; default: TENANT-export-TIME.tar.gz here"),
    ] = None,
) -> None:
    """Export everything the fleet holds about TENANT, in every region, as one archive.

    Writes a tar.gz of JSON-lines files with a manifest (see docs/data-governance.md) and prints
    its SHA-256, which every region's audit log records.
    """
    now = clock.now()
    path = to or Path(f"{tenant}-export-{now:%Y%m%dT%H%M%SZ}.tar.gz")
    settings = _settings()
    with _regions(every_region=True) as stores:
        err.print(f"exporting {tenant!r} from {len(stores)} region(s)", markup=False)
        summary = governance_export.export_tenant(
            stores, tenant, path, actor=settings.actor, now=now, version=__version__
        )
    err.print(f"{summary.rows} row(s) written to {path}", markup=False, highlight=False)
    sys.stdout.write(summary.sha256 + "\n")


@tenant_app.command("erase")
def tenant_erase(
    tenant: TenantArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="erase without asking")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="write the erasure report here; default: stdout")
    ] = None,
) -> None:
    """Erase TENANT's raw records and rollups in every region, with a verifiable report.

    Deletes every raw record and rollup of TENANT, revokes and deletes its keys and sessions,
    keeps its SLA history and the audit log, and writes an erasure report (JSON) whose SHA-256
    every region's audit log records. Exits 1 if any erased record is still found afterwards.
    """
    if not yes:
        if not sys.stdin.isatty():
            err.print(f"refusing to erase {tenant!r} without confirmation: pass --yes")
            raise typer.Exit(EXIT_INVALID)
        typer.confirm(
            f"Erase every raw record of tenant {tenant!r} in every region? This cannot be undone",
            abort=True,
            err=True,
        )
    settings = _settings()
    with _regions(every_region=True) as stores:
        err.print(f"erasing {tenant!r} in {len(stores)} region(s)", markup=False)
        done = erasure.erase_tenant(
            stores, tenant, actor=settings.actor, now=clock.now(), version=__version__
        )
    _write_or_print(json.dumps(done, indent=2, sort_keys=True), report, "erasure report")
    deleted = sum(n for r in done["regions"].values() for n in r["deleted"].values())
    err.print(f"{deleted} row(s) deleted; report SHA-256 {done['sha256']}", markup=False)
    if not done["complete"]:
        err.print(f"{tenant!r} still has records after the erasure: see the report", style="red")
        raise typer.Exit(EXIT_FAILURE)


retention_app = typer.Typer(
    help="Retention: raw records, minute and hourly rollups kept as each tier's policy says.",
    no_args_is_help=True,
)
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(
    at: Annotated[
        datetime | None,
        typer.Option(
            "--now",
            parser=_iso_time,
            metavar="ISO",
            help="apply the policies as of this time (UTC if no offset); default: now",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Delete, archive and compact everything due now, until nothing is left (the control
    loop does the same in small steps)."""
    now = clock.now() if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC))
    controller = RetentionController(_store())
    due = controller.backlog(now)
    deleted = compacted = archived = 0
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("retention", total=due or None)
        while True:
            done = controller.run_once(now)
            deleted += done.rows - done.compacted_rows
            compacted += done.compacted_hours
            archived += done.archived
            progress.advance(task, done.rows)
            if done.done:
                break
    out.print(
        f"{deleted} row(s) deleted, {compacted} hour(s) compacted, {archived} row(s) archived",
        markup=False,
        highlight=False,
    )


@retention_app.command("status")
def retention_status(output: OutputOption = Output.table) -> None:
    """Per table retention governs: its rows, and the time of its oldest."""
    with _store().begin() as conn:
        tables = governed_tables(conn)
    if output is Output.json:
        _print_json(
            [
                {
                    "table": t.table,
                    "rows": t.rows,
                    "oldest": t.oldest.isoformat() if t.oldest else None,
                }
                for t in tables
            ]
        )
        return
    table = Table("TABLE", "ROWS", "OLDEST", box=None)
    for t in tables:
        table.add_row(t.table, str(t.rows), _when(t.oldest) or "-")
    out.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and maps modelfleet's errors to exit codes in one place."""
    try:
        app(args=argv, prog_name="modelfleet")
    except FleetConfigError as exc:
        for issue in exc.issues:
            err.print(str(issue), markup=False, highlight=False)
        err.print(f"refused: {len(exc.issues)} error(s); nothing was applied", style="red")
        sys.exit(EXIT_INVALID)
    except InvalidInput as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(EXIT_INVALID)
    except ModelfleetError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(EXIT_FAILURE)
