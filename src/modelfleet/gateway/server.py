"""Serving the gateway: ties a `Gateway` to the store and runs it under uvicorn.

Beside the request path run two loops: the refresher checks the store's generation every
half second and publishes a new route table when it changed (so a change is served within a
second), and the flusher writes telemetry rollups (with samples and the prediction log)
every few seconds. At shutdown uvicorn stops accepting and finishes requests in flight; then
the last rollups are flushed. Feedback does not wait for a flush: the server hands the gateway
a writer that stores it at once.

While the store is unreachable the gateway goes on serving: a refresh that fails keeps the
last route table, and a flush that fails puts its batch in the spool (telemetry/spool.py,
on local disk), whose batches every later flush writes back first, exactly once; at shutdown
too. So no acknowledged request goes missing from the rollups, and memory stays bounded. An
outage is logged when it starts and when it ends, not at every attempt; /metrics shows it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from modelfleet.clock import Clock, SystemClock
from modelfleet.errors import ListenError, StoreError
from modelfleet.gateway.app import Gateway, GatewaySettings, Receive, Scope, Send
from modelfleet.gateway.quotas import LocalQuotas, QuotaStore, RedisQuotas
from modelfleet.gateway.routing import load_route_table, store_generation
from modelfleet.runtime import open_backend
from modelfleet.settings import Settings
from modelfleet.store import Store, open_store
from modelfleet.store.tables import deployment_status
from modelfleet.store.upsert import upsert
from modelfleet.telemetry.feedback import Feedback, write_feedback
from modelfleet.telemetry.spool import Batch, Spool

log = logging.getLogger(__name__)


class GatewayServer:
    """The ASGI app uvicorn runs: the gateway, plus the lifespan that feeds and flushes it."""

    def __init__(
        self,
        gateway: Gateway,
        store: Store,
        clock: Clock,
        *,
        refresh_s: float = 0.5,
        flush_s: float = 5.0,
        freeze_gc: bool = False,
        spool: Spool | None = None,
    ) -> None:
        """`spool`: where telemetry waits while the store is unreachable; None: in memory."""
        self.gateway = gateway
        self.freeze_gc = freeze_gc
        self.store = store
        self.clock = clock
        self.refresh_s = refresh_s
        self.flush_s = flush_s
        self.spool = spool or Spool()
        self._generation = -1
        self._flushing = asyncio.Lock()  # one flush at a time: the spool is not shared
        self._outage_since: datetime | None = None  # when the store stopped answering
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop serving, once started
        gateway.feedback_writer = self.write_feedback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.gateway(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:  # report to uvicorn, which exits non-zero
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.refresh()
        self._store_answered()
        if self.freeze_gc:
            # Everything loaded so far (libraries, models) lives as long as the process: keep it
            # out of the garbage collector's full passes, which otherwise stall requests for
            # tens of ms. Only in a process of its own: in a host program it is the host's call.
            gc.freeze()
        self._tasks = [
            asyncio.create_task(self._every(self.refresh_s, self.refresh)),
            asyncio.create_task(self._every(self.flush_s, self.flush)),
        ]

    async def stop(self) -> None:
        # The loops finish what they are doing rather than being cancelled mid-write: a flush
        # cut off after its rows were committed would otherwise be written twice.
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        await self.gateway.close_shadows()
        await self.gateway.quotas.aclose()
        if not await self.flush():
            log.error(
                "the store is unreachable at shutdown: %d telemetry batches wait in the spool %s",
                self.spool.waiting(),
                self.spool.directory or "(in memory: lost)",
            )
        self.spool.close()
        close = getattr(self.gateway.backend, "close", None)
        if close is not None:
            close()
        self.store.close()

    async def _every(self, seconds: float, action: Callable[[], Awaitable[object]]) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
            except TimeoutError:
                try:
                    await action()
                except (StoreError, SQLAlchemyError) as exc:
                    self._store_failed(exc)

    def _store_failed(self, exc: Exception) -> None:
        """Note that the store did not answer; logged once per outage, not per attempt."""
        self.gateway.metrics.store_reachable.set(0)
        if self._outage_since is None:
            self._outage_since = self.clock.now()
            log.warning(
                "store unreachable: serving the last routes, spooling telemetry to %s: %s",
                self.spool.directory or "memory",
                exc,
            )

    def _store_answered(self) -> None:
        self.gateway.metrics.store_reachable.set(1)
        if self._outage_since is not None:
            log.warning(
                "store reachable again after %.1f s",
                (self.clock.now() - self._outage_since).total_seconds(),
            )
            self._outage_since = None

    async def refresh(self) -> None:
        """Publish a new route table if the registry changed since the last look; when the
        store fails, the last table goes on serving (the error is raised to the caller)."""
        generation = await asyncio.to_thread(self._read_generation)
        self._store_answered()
        if generation == self._generation:
            self.gateway.collect_unused()
            return
        table = await asyncio.to_thread(self._read_table)
        status = await self.gateway.publish(table)
        await asyncio.to_thread(self._write_status, status, self.clock.now())
        self._generation = table.generation

    def _read_generation(self) -> int:
        with self.store.begin() as conn:
            return store_generation(conn)

    def _read_table(self) -> Any:
        with self.store.begin() as conn:
            return load_route_table(conn)

    def _write_status(self, status: dict[str, tuple[str, str | None]], now: datetime) -> None:
        rows = [
            {
                "deployment": deployment,
                "version": reason.split(":", 1)[0] if reason else "",
                "state": state,
                "reason": reason,
                "updated_at": now,
            }
            for deployment, (state, reason) in status.items()
        ]
        if not rows:
            return
        # An upsert: gateways starting together write the same rows at once, and a delete
        # then insert would fail one of them on the primary key (PostgreSQL).
        with self.store.begin() as conn:
            upsert(
                conn,
                deployment_status,
                rows,
                unique=["deployment"],
                update=["version", "state", "reason", "updated_at"],
            )

    async def flush(self) -> bool:
        """Write back the spooled batches, then the telemetry recorded since the last flush;
        when the store fails, that goes to the spool. True when the store took everything."""
        async with self._flushing:
            batch = self._take_batch()
            now = self.clock.now()
            try:
                await asyncio.to_thread(self._write, batch, now)
            except (StoreError, SQLAlchemyError) as exc:
                self._store_failed(exc)
                if batch:
                    await asyncio.to_thread(self.spool.put, batch, now)
                return False
            else:
                self._store_answered()
                return True
            finally:
                spool = self.spool
                self.gateway.metrics.observe_spool(
                    spool.waiting(), spool.written_back, spool.set_aside
                )

    def _take_batch(self) -> Batch:
        gateway = self.gateway
        batch = Batch(
            rollups=gateway.telemetry.drain() if gateway.telemetry is not None else [],
            key_uses=gateway.key_uses,
            samples=gateway.samples,
            predictions=gateway.predictions,
        )
        gateway.key_uses, gateway.samples, gateway.predictions = {}, [], []
        return batch

    def _write(self, batch: Batch, now: datetime) -> None:
        """Blocking: the spool's batches first (they are older), then `batch`."""
        written = self.spool.write_back(self.store, now)
        if written:
            log.warning("wrote %d spooled telemetry batches back to the store", written)
        if batch:
            self.spool.write(self.store, batch, now)

    def write_feedback(self, records: Sequence[Feedback]) -> None:
        """Store feedback now, in one transaction (the gateway's feedback writer; blocking)."""
        try:
            with self.store.begin() as conn:
                write_feedback(conn, records)
        except SQLAlchemyError as exc:
            raise StoreError(f"feedback not stored: {exc}") from exc


def build_server(settings: Settings, clock: Clock, **options: Any) -> GatewayServer:
    """A gateway on the settings' store, with quotas in Redis when one is configured."""
    store = open_store(settings.database_url)
    quotas: QuotaStore
    if settings.redis_url:
        from redis.asyncio import Redis

        quotas = RedisQuotas(
            # Timeouts: a Redis that hangs must not hang requests (they fall back to local quotas).
            Redis.from_url(settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25),
            prefix=f"{settings.redis_prefix}:quota",
        )
    else:
        quotas = LocalQuotas()
    gateway = Gateway(
        open_backend(settings.backend, settings.ray_address),
        quotas,
        clock,
        GatewaySettings(region=settings.region, telemetry=settings.telemetry),
    )
    spool = Spool(settings.spool_dir or settings.home / "spool")
    return GatewayServer(gateway, store, clock, spool=spool, **options)


def create_app() -> GatewayServer:
    """The application factory uvicorn calls in each worker process."""
    return build_server(Settings.from_env(), SystemClock(), freeze_gc=True)


class ServingThread:
    """A gateway served by uvicorn on a background thread of this process (demo and tests)."""

    def __init__(
        self, app: GatewayServer, host: str = "127.0.0.1", port: int = 0, *, asgi: Any = None
    ) -> None:
        """Serve `app`, or `asgi` when given: an application that wraps `app` (the web
        pages beside the gateway); flush and refresh still go to the gateway."""
        config = uvicorn.Config(
            asgi or app, host=host, port=port, lifespan="on", log_level="warning"
        )
        self.app = app
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)
        self.url = ""

    def start(self, timeout: float = 60.0) -> str:
        """Start serving; returns the base URL once the gateway accepts requests."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise ListenError("the gateway did not start; see the log above")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def flush(self, timeout: float = 60.0) -> bool:
        """Flush telemetry now, on the gateway's own loop (safe from any thread)."""
        assert self.app.loop is not None, "the gateway has not started"
        done = asyncio.run_coroutine_threadsafe(self.app.flush(), self.app.loop)
        return done.result(timeout)

    def refresh(self, timeout: float = 60.0) -> None:
        """Publish the store's routes now, on the gateway's own loop (safe from any thread)."""
        assert self.app.loop is not None, "the gateway has not started"
        asyncio.run_coroutine_threadsafe(self.app.refresh(), self.app.loop).result(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Shut down as on SIGTERM: finish requests in flight, flush telemetry."""
        self.server.should_exit = True
        self.thread.join(timeout)


APP = "modelfleet.gateway.server:create_app"


def serve(host: str, port: int, workers: int, log_level: str = "info", *, app: str = APP) -> None:
    """Run the gateway until SIGTERM or SIGINT; returns once it has shut down cleanly.

    Raises ListenError when the address cannot be listened on or a worker cannot start.
    """
    _check_address(host, port)
    if workers == 1:
        _run_worker(host, port, log_level, app)
        return
    _supervise(host, port, workers, log_level, app)


def _uvicorn_config(log_level: str, app: str = APP) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=True,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


def _listening_socket(host: str, port: int, *, shared: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _check_address(host: str, port: int) -> None:
    # Without SO_REUSEPORT the probe fails if anything listens there already, another gateway
    # included; bound but never listening, it takes no connections itself.
    try:
        _listening_socket(host, port, shared=False).close()
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _run_worker(host: str, port: int, log_level: str, app: str = APP) -> None:
    """One gateway process on its own SO_REUSEPORT socket."""
    # uvicorn re-raises the signal that stopped it once it has shut down; with these no-op
    # handlers in place that ends nothing, so a clean shutdown exits 0 as scripts expect.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda signum, frame: None)
    sock = _listening_socket(host, port)
    sock.listen(2048)
    server = uvicorn.Server(_uvicorn_config(log_level, app))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(1)


def _supervise(host: str, port: int, workers: int, log_level: str, app: str = APP) -> None:
    """Worker processes that each listen on the port with SO_REUSEPORT.

    uvicorn's own workers share one socket, and a burst of new connections (a load balancer's
    pool, a benchmark's) can land mostly on one of them while the others idle; separate
    sockets let the kernel spread connections evenly. A worker that dies is replaced; SIGTERM
    or SIGINT stops them all gracefully, and the exit code is 0 when they all stopped cleanly.
    """
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_run_worker, args=(host, port, log_level, app), daemon=False
        )
        process.start()
        return process

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    processes = [start() for _ in range(workers)]
    started = time.monotonic()
    try:
        while not stopping.wait(0.5):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                if time.monotonic() - started < 10:
                    raise StoreError(
                        f"a gateway worker failed to start (exit code {process.exitcode})"
                    )
                log.error(
                    "gateway worker %s exited with %s; starting another",
                    process.pid,
                    process.exitcode,
                )
                processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(timeout=40)
            if process.is_alive():
                process.kill()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise ListenError(f"gateway workers did not stop cleanly (exit codes {failed})")
