"""Adaptive micro-batching: concurrent requests for one version share one `infer` call.

Batching amortises a model's per-call cost (input checks, Python overhead, one BLAS call
instead of many) over many rows, but waiting to fill a batch costs latency. The policy here
waits only when waiting can pay off, as Clipper's adaptive batching (Crankshaw et al.,
"Clipper: A Low-Latency Online Prediction Serving System", NSDI 2017) and Triton's dynamic
batcher (`max_queue_delay_microseconds`, dispatch when a model instance is free) do:

1. **Idle backend: no wait.** When fewer than `concurrency` batches are in flight, whatever is
   queued is dispatched on the next turn of the event loop. A lone request pays no added
   latency; requests that arrive in the same turn (a burst) still ride together.
2. **Busy backend: batch while it works.** While `concurrency` batches are in flight, new
   requests queue. When a batch completes, the queue is dispatched at once: the requests that
   arrived during one service time form the next batch, so batch size follows load by itself,
   from one row at low load up to `max_batch_size` at saturation.
3. **Bounded wait.** No request waits in the queue longer than `max_wait_s` past its arrival:
   a timer on the oldest request's deadline dispatches what is queued even though the backend
   is still busy (with several replicas, a second batch can run beside the first).
4. **Full batches go now.** Once the rows queued behind the oldest request reach
   `max_batch_size`, or the next request cannot join them, waiting cannot make the batch
   bigger, so it is dispatched whatever the backend's state.

Batches are formed in arrival order from the head of the queue: consecutive requests whose
arrays have the same names, trailing shapes and dtypes, up to `max_batch_size` rows. A request
of more rows than that goes alone. Every caller gets exactly its own rows back; when `infer`
raises, every caller of that batch gets the exception. A caller cancelled while queued is
dropped from its batch.

Time is the event loop's (`loop.time()`, timers with `call_at`); nothing sleeps or polls.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from modelfleet.errors import InvalidBatch, PredictionError
from modelfleet.runtime.model import Batch, Outputs

Infer = Callable[[Batch], Awaitable[Outputs]]

# What must agree for requests to be concatenated: (name, dtype, trailing shape) per array.
Signature = tuple[tuple[str, str, tuple[int, ...]], ...]


@dataclass(frozen=True, eq=False)
class _Request:
    batch: Batch
    rows: int
    signature: Signature
    deadline: float
    future: asyncio.Future[Outputs]


class MicroBatcher:
    """Coalesces concurrent `submit`s into `infer` calls; the policy is in the module docstring.

    `concurrency` is how many batches the backend runs at once (a version's replicas): while
    fewer are in flight, the backend counts as idle and requests are dispatched without
    waiting. One batcher serves one event loop.
    """

    def __init__(
        self,
        infer: Infer,
        max_batch_size: int = 32,
        max_wait_s: float = 0.002,
        *,
        concurrency: int = 1,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, got {max_wait_s}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.infer = infer
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.concurrency = concurrency
        self._queue: deque[_Request] = deque()
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, batch: Batch) -> Outputs:
        """The outputs for `batch`'s rows, computed in a batch with other concurrent requests.

        Raises InvalidBatch when the arrays do not share one leading dimension of at least one
        row, and whatever `infer` raised for this request's rows: when a batch fails, each of its
        requests is tried alone, so one request's bad row fails no other.
        """
        rows, signature = _shape_of(batch)
        loop = self._bind(asyncio.get_running_loop())
        future: asyncio.Future[Outputs] = loop.create_future()
        self._queue.append(_Request(batch, rows, signature, loop.time() + self.max_wait_s, future))
        if not self._pump_scheduled:
            self._pump_scheduled = True
            loop.call_soon(self._pump)
        return await future

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a MicroBatcher serves the one event loop it was first used on")
        return loop

    def _pump(self, now: float | None = None) -> None:
        """Dispatch every batch the policy allows now, then arm the timer for the rest."""
        assert self._loop is not None
        self._pump_scheduled = False
        now = self._loop.time() if now is None else now
        while True:
            while self._queue and self._queue[0].future.done():
                self._queue.popleft()  # its caller was cancelled
            if not self._queue:
                self._disarm()
                return
            taken, closed = self._next_batch()
            head = self._queue[0]
            if not (closed or head.deadline <= now or self._in_flight < self.concurrency):
                self._arm(head.deadline)
                return
            requests = [self._queue.popleft() for _ in range(taken)]
            self._dispatch([r for r in requests if not r.future.done()])

    def _next_batch(self) -> tuple[int, bool]:
        """How many queued requests the next batch takes, and whether it can grow no more."""
        head = self._queue[0]
        taken = rows = 0
        for request in self._queue:
            if request.future.done():
                taken += 1
                continue
            if rows and (
                request.signature != head.signature or rows + request.rows > self.max_batch_size
            ):
                return taken, True
            taken += 1
            rows += request.rows
            if rows >= self.max_batch_size:
                return taken, True
        return taken, False

    def _dispatch(self, requests: list[_Request]) -> None:
        assert self._loop is not None
        self._in_flight += 1
        task = self._loop.create_task(self._run(requests))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    def _arm(self, deadline: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            # The deadline is kept beside the handle: uvloop's timer handles have no when().
            if self._timer_deadline == deadline:
                return
            self._timer.cancel()
        self._timer = self._loop.call_at(deadline, self._on_deadline, deadline)
        self._timer_deadline = deadline

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_deadline = None

    def _on_deadline(self, deadline: float) -> None:
        assert self._loop is not None
        self._timer = None
        self._timer_deadline = None
        # A timer may fire a clock tick early; its deadline counts as reached all the same.
        self._pump(max(self._loop.time(), deadline))

    async def _run(self, requests: list[_Request]) -> None:
        """One batch: concatenate, infer, and give each request its own rows back."""
        total = sum(r.rows for r in requests)
        try:
            outputs = await self.infer(_concatenate(requests))
            if len(outputs) != total:
                raise PredictionError(f"infer returned {len(outputs)} rows for a batch of {total}")
        except asyncio.CancelledError:
            for request in requests:
                request.future.cancel()
            raise
        except Exception as exc:
            if len(requests) == 1:
                if not requests[0].future.done():
                    requests[0].future.set_exception(exc)
            else:
                # One request's bad row must not fail the others it shared a batch with: each
                # is tried alone, and only those that fail alone get an error.
                for request in requests:
                    await self._run_alone(request)
        else:
            start = 0
            for request in requests:
                if not request.future.done():
                    request.future.set_result(outputs.rows(start, start + request.rows))
                start += request.rows
        finally:
            self._in_flight -= 1
        self._pump()

    async def _run_alone(self, request: _Request) -> None:
        if request.future.done():
            return
        try:
            outputs = await self.infer(request.batch)
            if len(outputs) != request.rows:
                raise PredictionError(
                    f"infer returned {len(outputs)} rows for a batch of {request.rows}"
                )
        except asyncio.CancelledError:
            request.future.cancel()
            raise
        except Exception as exc:
            if not request.future.done():
                request.future.set_exception(exc)
        else:
            if not request.future.done():
                request.future.set_result(outputs)


def _shape_of(batch: Batch) -> tuple[int, Signature]:
    """A request's rows and signature; InvalidBatch unless its arrays share `n >= 1` rows."""
    if not batch:
        raise InvalidBatch("a batch needs at least one feature")
    rows: int | None = None
    signature = []
    for name in sorted(batch):
        arr = batch[name]
        if not isinstance(arr, np.ndarray) or arr.ndim == 0:
            raise InvalidBatch(f"feature {name}: expected an array with a batch dimension")
        if rows is None:
            rows = arr.shape[0]
        elif arr.shape[0] != rows:
            raise InvalidBatch(f"feature {name} has {arr.shape[0]} rows but the batch has {rows}")
        # Strings of different widths concatenate fine; numbers must match exactly.
        dtype = arr.dtype.kind if arr.dtype.kind in "USO" else arr.dtype.str
        signature.append((name, dtype, arr.shape[1:]))
    if not rows:
        raise InvalidBatch("a batch needs at least one row")
    return rows, tuple(signature)


def _concatenate(requests: list[_Request]) -> Batch:
    if len(requests) == 1:
        return requests[0].batch
    return {name: np.concatenate([r.batch[name] for r in requests]) for name in requests[0].batch}
