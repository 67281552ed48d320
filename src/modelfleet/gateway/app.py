"""The gateway's ASGI application: auth -> quota -> route -> batch -> runtime, with telemetry.

A plain ASGI callable with a hand-written router: the hot path does the least work that is
correct. Every inference request reads one immutable route table, takes one quota decision,
waits on one micro-batch and records one rollup entry; it never touches the store. A request
with an id (and every one kept as a sample) also leaves a row in the prediction log, buffered
and flushed with the rollups, so that feedback on it can be scored.

Feedback (`POST /v1/feedback`) is the one route that writes before answering: a client told
its labels were accepted must be able to rely on it, so they are stored first, through the
writer the server injects (this module knows no SQL).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

import httpx
import orjson

from modelfleet import __version__
from modelfleet.clock import Clock
from modelfleet.errors import InvalidInput, ServingError, StoreError
from modelfleet.gateway import protocol
from modelfleet.gateway.errors import HTTPError, not_found, overloaded, too_many, unauthorized
from modelfleet.gateway.quotas import TIER_QUOTAS, Admission, Quota, QuotaStore
from modelfleet.gateway.residency import PassOn, Refuse, decide
from modelfleet.gateway.routing import Route, RouteTable
from modelfleet.registry.keys import prefix_of_key
from modelfleet.runtime import Backend, MicroBatcher, Outputs, VersionRef, VersionSpec
from modelfleet.telemetry.edges import categorical_columns, feature_columns, reference_edges
from modelfleet.telemetry.feedback import Feedback, check_label
from modelfleet.telemetry.metrics import CONTENT_TYPE, GatewayMetrics
from modelfleet.telemetry.rollup import RollupBuffer

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = [(b"content-type", b"application/json")]

# Set on a request one gateway forwards to another region's; such a request is not forwarded on.
FORWARDED_FROM = b"x-modelfleet-forwarded-from"
_HOP_BY_HOP = frozenset(
    {b"host", b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
# What of the serving region's answer reaches the client, besides status and body.
_PASSED_BACK = frozenset(
    {b"content-type", b"x-request-id", b"retry-after", b"location", b"www-authenticate", b"allow"}
)

# Stores feedback durably before the gateway acknowledges it; raises StoreError when it cannot.
FeedbackWriter = Callable[[Sequence[Feedback]], object]

# Under overload a tier is shed once this worker's requests in flight pass this share of
# `max_in_flight`: free customers wait first, enterprise customers last.
SHED_AT: Mapping[str, float] = {"free": 0.5, "standard": 0.7, "premium": 0.85, "enterprise": 1.0}


@dataclass(frozen=True)
class GatewaySettings:
    """How one gateway worker serves: region, limits, batching and telemetry."""

    region: str = "local"
    max_body_bytes: int = 1 << 20
    max_batch_size: int = 32
    max_wait_s: float = 0.002
    replicas: int = 1
    max_in_flight: int = 512
    telemetry: bool = True
    sample_rate: float = 0.01  # share of requests kept whole, for review and debugging
    low_confidence: float | None = None  # None: each model's `quality.low_confidence`
    max_samples: int = 1000  # kept between two flushes at most
    max_predictions: int = 10_000  # prediction-log rows kept between two flushes at most
    shadow_timeout_s: float = 5.0  # a shadow answer later than this counts as a timeout
    max_shadow_in_flight: int = 64  # more are dropped: shadows never queue without bound
    tier_quotas: Mapping[str, Quota] = field(default_factory=lambda: dict(TIER_QUOTAS))
    forward_timeout_s: float = 30.0  # a request forwarded to the tenant's region, all told


class Gateway:
    """One worker's gateway: the ASGI app plus the state the control side publishes into it."""

    def __init__(
        self,
        backend: Backend,
        quotas: QuotaStore,
        clock: Clock,
        settings: GatewaySettings | None = None,
        *,
        timer: Callable[[], float] = time.perf_counter,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.quotas = quotas
        self.clock = clock
        self.settings = settings or GatewaySettings()
        self.timer = timer
        self.table = RouteTable()
        self.ready = False
        self.metrics = GatewayMetrics()
        self._edges: dict[VersionRef, dict[str, tuple[float, ...]]] = {}
        self.telemetry: RollupBuffer | None = (
            RollupBuffer(self._edges_for) if self.settings.telemetry else None
        )
        self.key_uses: dict[str, datetime] = {}  # prefix -> last use, flushed with telemetry
        self.samples: list[dict[str, Any]] = []  # flushed with telemetry
        self.predictions: list[dict[str, Any]] = []  # the prediction log, flushed with telemetry
        self.feedback_writer: FeedbackWriter | None = None  # the server's; None: no feedback
        self._rng = rng or random.Random()
        self._batchers: dict[VersionRef, MicroBatcher] = {}
        self._restarts: dict[VersionRef, int] = {}  # restart counters already carried out
        self._version_in_flight: dict[VersionRef, int] = {}
        self._in_flight = 0
        self._shadows: set[asyncio.Task[None]] = set()

    # -- publishing routes (called by the refresher, off the hot path) ----------------------

    async def publish(self, table: RouteTable) -> dict[str, tuple[str, str | None]]:
        """Serve `table`. New versions are loaded before any route points at them; a route
        whose version fails to load keeps its previous version. Returns each deployment's
        (state, reason): "serving" or "failed"."""
        failed: dict[VersionRef, str] = {}
        for ref, spec in sorted(table.versions().items()):
            version = VersionRef(*ref)
            if version in self._batchers:
                continue
            replicas = table.replicas.get(ref, self.settings.replicas)
            try:
                await asyncio.to_thread(self.backend.deploy, spec, replicas)
            except ServingError as exc:
                failed[version] = str(exc)
                log.warning("version %s failed to load: %s", version, exc)
                continue
            if spec.reference_data is not None and self.settings.telemetry:
                self._edges[version] = await self._reference_edges(spec)
            self._batchers[version] = MicroBatcher(
                partial(self.backend.infer, version),
                self.settings.max_batch_size,
                self.settings.max_wait_s,
                concurrency=_concurrency(spec, replicas),
            )
        await self._apply_replicas(table)
        routes: dict[tuple[str, str], Route] = {}
        status: dict[str, tuple[str, str | None]] = {}
        for key, route in table.routes.items():
            version = route.version.ref
            if version not in self._batchers:
                status[route.deployment] = ("failed", f"{version}: {failed.get(version)}")
                previous = self.table.routes.get(key)
                if previous is not None and previous.version.ref in self._batchers:
                    routes[key] = _without_candidate(previous)  # traffic stays where it was
                continue
            candidate = route.canary or route.shadow
            if candidate is not None and candidate.ref not in self._batchers:
                # The stable version keeps all the traffic rather than fail any request.
                status[route.deployment] = (
                    "failed",
                    f"{candidate.ref}: {failed.get(candidate.ref)}",
                )
                route = _without_candidate(route)
            routes[key] = route
            status.setdefault(route.deployment, ("serving", None))
        self.table = replace(table, routes=routes)
        self.ready = True
        self.collect_unused()
        return status

    async def _apply_replicas(self, table: RouteTable) -> None:
        """Scale and restart versions as remediation asked (replica targets in the store)."""
        for ref, spec in sorted(table.versions().items()):
            version = VersionRef(*ref)
            if version not in self._batchers:
                continue
            restarts = table.restarts.get(ref, 0)
            seen = self._restarts.setdefault(version, restarts)
            replicas = table.replicas.get(ref, self.settings.replicas)
            try:
                if restarts > seen:
                    await asyncio.to_thread(self.backend.deploy, spec, replicas)
                    log.info("restarted %s on %d replica(s)", version, replicas)
                elif self.backend.health(version).replicas != replicas:
                    await asyncio.to_thread(self.backend.scale, version, replicas)
                    log.info("scaled %s to %d replica(s)", version, replicas)
            except ServingError as exc:
                log.warning("could not restart or scale %s: %s", version, exc)
                continue
            self._restarts[version] = restarts
            # As many batches in flight as there are replicas to run them.
            self._batchers[version].concurrency = _concurrency(spec, replicas)

    async def _reference_edges(self, spec: VersionSpec) -> dict[str, tuple[float, ...]]:
        assert spec.reference_data is not None
        try:
            return await asyncio.to_thread(reference_edges, spec.reference_data, spec.features)
        except (OSError, ValueError, KeyError) as exc:
            # Serving does not depend on it: the version is served, without feature histograms.
            log.warning("no feature histograms for %s: %s", spec.ref, exc)
            return {}

    def _edges_for(self, model: str, version: str) -> Mapping[str, tuple[float, ...]]:
        return self._edges.get(VersionRef(model, version), {})

    def collect_unused(self) -> None:
        """Undeploy versions no route uses (nor keeps warm) once their last request finished."""
        used = {VersionRef(*ref) for ref in self.table.versions()}
        for version in list(self._batchers):
            if version not in used and not self._version_in_flight.get(version):
                del self._batchers[version]
                self._edges.pop(version, None)
                self.backend.undeploy(version)

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            status, headers, body = await self._dispatch(scope, receive)
        except HTTPError as exc:
            status, headers, body = exc.status, JSON + exc.headers, _error(exc.message)
        except InvalidInput as exc:
            status, headers, body = 400, JSON, _error(str(exc))
        except ServingError as exc:
            # The model's failure, not the gateway's: one line in the log, no stack trace, and
            # nothing of the model's internals in the response.
            log.warning("%s %s: %s", scope["method"], scope["path"], exc)
            status, headers, body = 500, JSON, _error("the model failed to answer this request")
        except Exception:
            log.exception("unexpected error serving %s %s", scope["method"], scope["path"])
            status, headers, body = 500, JSON, _error("internal error")
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _dispatch(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        method, path = scope["method"], scope["path"]
        parts = path.strip("/").split("/")
        if parts[:2] == ["v2", "models"] and len(parts) >= 3:
            return await self._model_route(method, parts[2:], scope, receive)
        if parts[:2] == ["v1", "models"] and len(parts) == 4 and parts[3] == "predict":
            _allow(method, "POST")
            return await self._infer(scope, receive, parts[2], None, v1=True)
        if path == "/v1/feedback":
            _allow(method, "POST")
            return await self._feedback(scope, receive)
        if path in ("/v2", "/v2/"):
            _allow(method, "GET")
            server = {"name": "modelfleet", "version": __version__, "extensions": []}
            return 200, JSON, orjson.dumps(server)
        if path == "/v2/health/live":
            _allow(method, "GET")
            return 200, JSON, b'{"live":true}'
        if path == "/v2/health/ready":
            _allow(method, "GET")
            return (200 if self.ready else 503), JSON, orjson.dumps({"ready": self.ready})
        if path == "/metrics":
            _allow(method, "GET")
            self.metrics.observe_quotas(self.quotas.shared, self.quotas.fallbacks)
            return 200, [(b"content-type", CONTENT_TYPE.encode())], self.metrics.exposition()
        raise not_found(f"path {path!r}")

    async def _model_route(
        self, method: str, parts: list[str], scope: Scope, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        model, rest = parts[0], parts[1:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        if rest == ["infer"]:
            _allow(method, "POST")
            return await self._infer(scope, receive, model, version, v1=False)
        if rest in ([], ["ready"]):
            _allow(method, "GET")
            tenant, _ = self._authenticate(scope)
            elsewhere = await self._elsewhere(scope, receive, tenant)
            if elsewhere is not None:
                return elsewhere
            route = self._route(tenant, model)
            spec = self._version(route, scope, version)
            if rest == ["ready"]:
                ready = self.backend.health(spec.ref).serving
                return (200 if ready else 503), JSON, orjson.dumps({"name": model, "ready": ready})
            meta = protocol.metadata_v2(
                model, [spec.version], spec.format, spec.features, spec.labels
            )
            return 200, JSON, orjson.dumps(meta)
        raise not_found(f"path {scope['path']!r}")

    def _authenticate(self, scope: Scope) -> tuple[str, str]:
        header = _header(scope, b"authorization")
        if header is None or not header.startswith(b"Bearer "):
            self.metrics.rejections.labels("unauthorized").inc()
            raise unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        key = header[7:].strip().decode("latin-1")
        prefix = prefix_of_key(key)
        stored = self.table.keys.get(prefix) if prefix is not None else None
        if stored is None or not stored.matches(key):
            self.metrics.rejections.labels("unauthorized").inc()
            raise unauthorized("unknown or revoked API key")
        return stored.tenant, stored.prefix

    async def _elsewhere(
        self, scope: Scope, receive: Receive, tenant: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """None when this region serves `tenant` now; otherwise the answer of the region that
        does (forwarded), a 307 to it, or HTTPError 503 when no region may serve it."""
        decision = decide(self.table.regions, self.settings.region, tenant)
        if isinstance(decision, Refuse):
            self.metrics.rejections.labels("region_down").inc()
            raise HTTPError(
                503,
                f"tenant {tenant!r} cannot be served now: {decision.reason}",
                [(b"retry-after", str(decision.retry_after).encode())],
            )
        if not isinstance(decision, PassOn):
            return None
        target = decision.url.rstrip("/") + scope["path"]
        if scope.get("query_string"):
            target += "?" + bytes(scope["query_string"]).decode("latin-1")
        # A forwarded request is never forwarded again: tables that disagree for a moment
        # while regions reload cannot bounce it between gateways.
        if decision.forward and _header(scope, FORWARDED_FROM) is None:
            return await self._forward(scope, receive, decision, target)
        self.metrics.rejections.labels("redirected").inc()
        message = {"error": f"tenant {tenant!r} is served by region {decision.region!r}"}
        return 307, [*JSON, (b"location", target.encode())], orjson.dumps(message)

    async def _forward(
        self, scope: Scope, receive: Receive, decision: PassOn, target: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send the request as it came (path, query, body, key) to the region serving its
        tenant, and pass its answer back; nothing of it is recorded in this region."""
        body = await read_body(scope, receive, self.settings.max_body_bytes)
        headers = [(key, value) for key, value in scope["headers"] if key not in _HOP_BY_HOP] + [
            (FORWARDED_FROM, self.settings.region.encode())
        ]
        try:
            async with httpx.AsyncClient(timeout=self.settings.forward_timeout_s) as client:
                answer = await client.request(
                    scope["method"], target, content=body, headers=headers
                )
        except httpx.HTTPError as exc:
            log.warning("forwarding to region %s failed: %s", decision.region, exc)
            raise HTTPError(
                502,
                f"region {decision.region!r}, which serves this tenant, did not answer",
                [(b"retry-after", b"1")],
            ) from exc
        passed = [
            (key.lower().encode(), value.encode("latin-1"))
            for key, value in answer.headers.items()
            if key.lower().encode() in _PASSED_BACK
        ]
        return answer.status_code, passed, answer.content

    def _route(self, tenant: str, model: str) -> Route:
        route = self.table.route(tenant, model)
        if route is None:
            self.metrics.rejections.labels("not_found").inc()
            raise not_found(f"model {model!r}")
        return route

    def _version(self, route: Route, scope: Scope, version: str | None) -> VersionSpec:
        """The version answering this request: the route's sticky assignment. A request that
        names a version gets it if it is the stable one or the one assigned to it."""
        assigned = route.version
        if route.canary is not None:
            sticky = None if route.sticky_header is None else _header(scope, route.sticky_header)
            assigned = route.assign(sticky)
        if version is None or version == assigned.version:
            return assigned
        if version == route.version.version:
            return route.version
        self.metrics.rejections.labels("not_found").inc()
        raise not_found(f"model {route.version.model!r} version {version!r}")

    async def _infer(
        self, scope: Scope, receive: Receive, model: str, version: str | None, *, v1: bool
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        start = self.timer()
        tenant, prefix = self._authenticate(scope)
        # Before anything is read or recorded: a request answered elsewhere leaves nothing here.
        elsewhere = await self._elsewhere(scope, receive, tenant)
        if elsewhere is not None:
            return elsewhere
        route = self._route(tenant, model)
        spec = self._version(route, scope, version)
        ref = spec.ref
        now = self.clock.now()
        self.key_uses[prefix] = now
        # Counted in flight before the first await, so a route change that lands meanwhile
        # cannot undeploy the version this request was routed to.
        self._enter(ref)
        status, rows = 500, 1
        confidences: Any = None
        classes: Any = None
        columns: dict[str, Any] | None = None
        categories: dict[str, list[str]] | None = None
        admission: Admission | None = None
        try:
            others = self._in_flight - 1
            if others >= self.settings.max_in_flight * SHED_AT.get(route.tier, 1.0):
                self.metrics.rejections.labels("shed").inc()
                raise overloaded()
            quota = route.quota or self.settings.tier_quotas[route.tier]
            admission = await self.quotas.acquire(tenant, quota, now.timestamp())
            if not admission.admitted:
                self.metrics.rejections.labels(admission.reason).inc()
                raise too_many(
                    f"quota exceeded ({admission.reason}) for tenant {tenant!r}",
                    admission.retry_after,
                )
            header_id = protocol.request_id_header(_header(scope, b"x-request-id"))
            body = await read_body(scope, receive, self.settings.max_body_bytes)
            payload = parse_json(body)
            parse = protocol.parse_v1 if v1 else protocol.parse_v2
            request = parse(payload, spec.features)
            # The body's id (Open Inference Protocol) wins over the header's.
            request_id = request.id if request.id is not None else header_id
            outputs = await self._batchers[ref].submit(request.inputs)
            if v1:
                response = protocol.render_v1(model, spec.version, outputs, spec.labels)
            else:
                response = protocol.render_v2(
                    payload, request, model, spec.version, outputs, spec.labels
                )
            if request_id is not None:
                response.setdefault("id", request_id)
            rows, confidences = request.rows, outputs.confidences
            if spec.labels is not None:
                classes = outputs.predictions
            if self.telemetry is not None and ref in self._edges:
                columns = feature_columns(request.inputs, spec.features)
                if spec.categorical:
                    categories = categorical_columns(request.inputs, spec.features)
            kept = self._sample(
                tenant, spec, now, request.inputs, response, confidences, request_id
            )
            if request_id is None:
                request_id = kept  # a sample's generated id: feedback can name it too
            headers = JSON
            if request_id is not None:
                self._log_prediction(tenant, ref, now, request_id, outputs, spec.labels)
                headers = [*JSON, (b"x-request-id", request_id.encode())]
            if route.shadow is not None and spec is route.version:
                self._mirror(tenant, route.shadow, route.shadow_percent, now, request, outputs)
            status = 200
            return 200, headers, orjson.dumps(response)
        except HTTPError as exc:
            status = exc.status
            raise
        except InvalidInput:
            status = 400
            raise
        finally:
            if admission is not None and admission.admitted:
                await self.quotas.release(tenant, admission.ticket)
            self._leave(ref)
            self._record(
                tenant,
                ref,
                now,
                status,
                self.timer() - start,
                confidences,
                columns,
                rows,
                classes,
                categories,
            )

    def _record(
        self,
        tenant: str,
        version: VersionRef,
        now: datetime,
        status: int,
        latency: float,
        confidences: Any,
        columns: dict[str, Any] | None,
        rows: int,
        classes: Any = None,
        categories: dict[str, list[str]] | None = None,
    ) -> None:
        """Count one inference request in /metrics and in this minute's rollup."""
        model, region = version.model, self.settings.region
        self.metrics.requests.labels(tenant, model, version.version, str(status)).inc()
        if status == 429:  # never reached the model: counts as rejected, not in latency
            if self.telemetry is not None:
                self.telemetry.record_rejection(tenant, model, version.version, region, now)
            return
        self.metrics.latency.labels(model).observe(latency)
        if self.telemetry is None:
            return
        self.telemetry.record(
            tenant,
            model,
            version.version,
            region,
            now,
            status,
            latency,
            confidences,
            columns,
            rows=rows,
            classes=classes,
            categories=categories,
        )

    def _sample(
        self,
        tenant: str,
        spec: VersionSpec,
        now: datetime,
        inputs: Mapping[str, Any],
        response: Mapping[str, Any],
        confidences: Any,
        request_id: str | None,
    ) -> str | None:
        """Keep the request whole if it is a low-confidence one (under the model's threshold) or
        a sampled one; returns its request id (the client's, or one generated for it) when kept."""
        if not self.settings.telemetry or len(self.samples) >= self.settings.max_samples:
            return None
        # tolist() then min() is several times cheaper than numpy's min for a request's few rows
        threshold = self.settings.low_confidence
        if threshold is None:
            threshold = spec.low_confidence
        if confidences is not None and min(confidences.tolist()) < threshold:
            reason = "low_confidence"
        elif self._rng.random() < self.settings.sample_rate:
            reason = "sampled"
        else:
            return None
        if request_id is None:
            request_id = f"mf-{uuid.uuid4().hex}"
        self.samples.append(
            {
                "tenant": tenant,
                "model": spec.model,
                "version": spec.version,
                "region": self.settings.region,
                "at": now,
                "reason": reason,
                "inputs": {name: array.tolist() for name, array in inputs.items()},
                "outputs": dict(response),
                "request_id": request_id,
            }
        )
        return request_id

    def _log_prediction(
        self,
        tenant: str,
        version: VersionRef,
        now: datetime,
        request_id: str,
        outputs: Outputs,
        labels: Sequence[str] | None,
    ) -> None:
        """Keep what this request was answered, for feedback on its id to be scored against."""
        if not self.settings.telemetry:
            return
        if len(self.predictions) >= self.settings.max_predictions:
            self.metrics.predictions_dropped.inc()
            return
        predicted = outputs.predictions.tolist()
        confidences = outputs.confidences
        self.predictions.append(
            {
                "tenant": tenant,
                "model": version.model,
                "version": version.version,
                "request_id": request_id,
                "at": now,
                "predicted": predicted if labels is None else [labels[i] for i in predicted],
                "confidences": None if confidences is None else confidences.astype(float).tolist(),
            }
        )

    async def _feedback(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Store a tenant's true labels for a request it sent; answer only once they are stored.
        The tenant is the key's, never the body's: feedback cannot reach another tenant."""
        tenant, prefix = self._authenticate(scope)
        # Feedback is the tenant's raw data too: it is stored in the region that serves it.
        elsewhere = await self._elsewhere(scope, receive, tenant)
        if elsewhere is not None:
            return elsewhere
        body = await read_body(scope, receive, self.settings.max_body_bytes)
        request = protocol.parse_feedback(parse_json(body))
        route = self._route(tenant, request.model)
        for _, label in request.labels:
            check_label(request.model, label, route.version.labels)
        if self.feedback_writer is None:
            raise HTTPError(503, "this gateway has no store to keep feedback in")
        now = self.clock.now()
        self.key_uses[prefix] = now
        records = [
            Feedback(
                tenant,
                request.model,
                request.request_id,
                row,
                label,
                "customer",
                f"key {prefix}",
                now,
            )
            for row, label in request.labels
        ]
        try:
            await asyncio.to_thread(self.feedback_writer, records)
        except StoreError as exc:
            log.warning("feedback of tenant %s not stored: %s", tenant, exc)
            raise HTTPError(
                503, "the feedback could not be stored; send it again", [(b"retry-after", b"1")]
            ) from exc
        return 200, JSON, orjson.dumps({"accepted": len(records)})

    def _mirror(
        self,
        tenant: str,
        shadow: VersionSpec,
        percent: float,
        now: datetime,
        request: protocol.InferRequest,
        served: Outputs,
    ) -> None:
        """Send `percent` % of requests also to the shadow version, in a task of their own: the
        client's response is already computed and never waits for it."""
        if self._rng.random() * 100.0 >= percent:
            return
        if len(self._shadows) >= self.settings.max_shadow_in_flight:
            self.metrics.shadow.labels(shadow.model, shadow.version, "dropped").inc()
            return
        task = asyncio.create_task(self._shadow(tenant, shadow, now, request, served))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(
        self,
        tenant: str,
        shadow: VersionSpec,
        now: datetime,
        request: protocol.InferRequest,
        served: Outputs,
    ) -> None:
        ref = shadow.ref
        batcher = self._batchers.get(ref)
        if batcher is None:
            return
        self._version_in_flight[ref] = self._version_in_flight.get(ref, 0) + 1
        start = self.timer()
        status, outcome = 500, "error"
        outputs: Outputs | None = None
        try:
            outputs = await asyncio.wait_for(
                batcher.submit(request.inputs), self.settings.shadow_timeout_s
            )
            status, outcome = 200, "answered"
        except TimeoutError:
            status, outcome = 504, "timeout"
        except Exception as exc:  # the shadow's failure is its own: the client never sees it
            log.debug("shadow %s failed: %s", ref, exc)
        finally:
            self._version_in_flight[ref] -= 1
        agreed = None
        if outputs is not None and shadow.labels is not None:
            agreed = int((outputs.predictions == served.predictions).sum())
            outcome = "agreed" if agreed == request.rows else "disagreed"
        self.metrics.shadow.labels(ref.model, ref.version, outcome).inc()
        if self.telemetry is not None:
            self.telemetry.record_shadow(
                tenant,
                ref.model,
                ref.version,
                self.settings.region,
                now,
                status,
                self.timer() - start,
                outputs.confidences if outputs is not None else None,
                rows=request.rows,
                agreed=agreed,
            )

    async def close_shadows(self) -> None:
        """Cancel the shadow requests still waiting: nobody waits for their answers."""
        for task in list(self._shadows):
            task.cancel()
        await asyncio.gather(*self._shadows, return_exceptions=True)

    def _enter(self, version: VersionRef) -> None:
        self._in_flight += 1
        self._version_in_flight[version] = self._version_in_flight.get(version, 0) + 1
        self.metrics.in_flight.inc()

    def _leave(self, version: VersionRef) -> None:
        self._in_flight -= 1
        self._version_in_flight[version] -= 1
        self.metrics.in_flight.dec()


def _concurrency(spec: VersionSpec, replicas: int) -> int:
    """Batches to keep in flight for a version: one per replica, or per replica that Ray
    Serve's autoscaler may start (queued batches are what it scales on)."""
    return replicas if spec.autoscaling is None else spec.autoscaling.max_replicas


def _without_candidate(route: Route) -> Route:
    return replace(route, canary=None, canary_percent=0.0, shadow=None, shadow_percent=0.0)


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise HTTPError(
            405, f"method {method} not allowed; use {allowed}", [(b"allow", allowed.encode())]
        )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request's whole body; HTTPError 413 past `limit` bytes, 400 if the client left."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The body as JSON; HTTPError 400 saying what is wrong with it."""
    if not body:
        raise HTTPError(400, "the request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPError(400, f"malformed JSON: {exc}") from exc


def _error(message: str) -> bytes:
    return orjson.dumps({"error": message})
