"""Micro-batching: concurrent requests share `infer` calls and each gets its own rows back."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import numpy as np
import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from modelfleet.errors import InvalidBatch
from modelfleet.runtime import LocalBackend, MicroBatcher, Outputs, VersionSpec
from modelfleet.runtime.model import Batch
from tests.runtime.conftest import Digits

T = TypeVar("T")


def compute(batch: Batch) -> Outputs:
    """A row-wise model: column 0 comes back as the prediction, softmax as probabilities."""
    x = batch["x"]
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return Outputs(x[:, 0].copy(), p.max(axis=1), p)


class Recorder:
    """An `infer` that counts its calls and, when told, holds them until released."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, batch: Batch) -> Outputs:
        self.calls.append(len(batch["x"]))
        await self.release.wait()
        await asyncio.sleep(0)  # give other submitters a turn, as a real backend would
        return compute(batch)


def request(first: int, rows: int, width: int = 3) -> Batch:
    """`rows` rows whose column 0 numbers them from `first`, so mixed-up rows show."""
    x = np.random.default_rng(first).normal(size=(rows, width))
    x[:, 0] = np.arange(first, first + rows)
    return {"x": x}


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,  # what uvicorn runs the gateway on
}
_loop_factory: list[Callable[[], asyncio.AbstractEventLoop]] = [asyncio.new_event_loop]


@pytest.fixture(autouse=True, params=sorted(LOOPS))
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every batching test runs on the standard event loop and on uvloop."""
    _loop_factory[0] = LOOPS[request.param]
    yield
    _loop_factory[0] = asyncio.new_event_loop


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=_loop_factory[0]) as runner:
        return runner.run(main())


async def turns(n: int) -> None:
    """Let the event loop go round `n` times: other tasks run, no time is waited for."""
    for _ in range(n):
        await asyncio.sleep(0)


def same(a: Outputs, b: Outputs) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f))
        for f in ("predictions", "confidences", "probabilities")
    )


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=20),
    delays=st.lists(st.integers(0, 3), min_size=20, max_size=20),
    max_batch_size=st.integers(1, 16),
    concurrency=st.integers(1, 3),
)
def test_batched_results_are_identical_to_unbatched_ones(
    sizes: list[int], delays: list[int], max_batch_size: int, concurrency: int
) -> None:
    starts = np.cumsum([0, *sizes])
    requests = [request(int(starts[i]), n) for i, n in enumerate(sizes)]
    recorder = Recorder()

    async def main() -> list[Outputs]:
        batcher = MicroBatcher(recorder, max_batch_size, 0.001, concurrency=concurrency)

        async def client(i: int) -> Outputs:
            await turns(delays[i])  # arrive a few loop turns later, not later in time
            return await batcher.submit(requests[i])

        return await asyncio.gather(*(client(i) for i in range(len(requests))))

    results = run(main)

    assert all(same(got, compute(r)) for got, r in zip(results, requests, strict=True))
    assert sum(recorder.calls) == sum(sizes)
    assert all(n <= max_batch_size or n in sizes for n in recorder.calls)


def test_concurrent_requests_are_coalesced_into_full_batches() -> None:
    recorder = Recorder()

    async def main() -> list[Outputs]:
        batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_s=5.0)
        return await asyncio.gather(*(batcher.submit(request(i, 1)) for i in range(64)))

    results = run(main)

    assert recorder.calls == [32, 32]
    assert [int(r.predictions[0]) for r in results] == list(range(64))


def test_requests_arriving_while_a_batch_runs_ride_together_when_it_ends() -> None:
    recorder = Recorder()
    recorder.release.clear()

    async def main() -> tuple[list[Outputs], float]:
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_s=5.0)
        first = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await turns(3)
        assert recorder.calls == [1]
        rest = [asyncio.ensure_future(batcher.submit(request(i, 1))) for i in range(1, 11)]
        await turns(5)
        assert recorder.calls == [1]  # the backend is busy: the ten wait
        start = loop.time()
        recorder.release.set()
        results = await asyncio.gather(first, *rest)
        return results, loop.time() - start

    results, elapsed = run(main)

    assert recorder.calls == [1, 10]
    assert [int(r.predictions[0]) for r in results] == list(range(11))
    assert elapsed < 1.0  # dispatched when the batch ended, not after max_wait_s


def test_a_lone_request_is_dispatched_without_waiting() -> None:
    recorder = Recorder()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_s=5.0)
        start = loop.time()
        await batcher.submit(request(0, 1))
        await batcher.submit(request(1, 2))  # and again once the first has finished
        return loop.time() - start

    assert run(main) < 0.5
    assert recorder.calls == [1, 2]


def test_a_queued_request_waits_no_longer_than_max_wait_while_the_backend_is_busy() -> None:
    held = asyncio.Event()
    calls: list[int] = []

    async def infer(batch: Batch) -> Outputs:
        calls.append(len(batch["x"]))
        if len(calls) == 1:
            await held.wait()  # the first batch stays in flight throughout
        return compute(batch)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(infer, max_batch_size=32, max_wait_s=0.02)
        first = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await turns(3)
        assert calls == [1]
        start = loop.time()
        await batcher.submit(request(1, 1))
        waited = loop.time() - start
        held.set()
        await first
        return waited

    waited = run(main)
    # uvloop's timers work in whole milliseconds and may fire a hair early by loop.time()
    assert 0.02 - 0.001 <= waited < 1.0
    assert calls == [1, 1]


def test_a_full_batch_is_dispatched_even_while_the_backend_is_busy() -> None:
    recorder = Recorder()
    recorder.release.clear()

    async def main() -> list[Outputs]:
        batcher = MicroBatcher(recorder, max_batch_size=4, max_wait_s=5.0)
        first = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await turns(3)
        assert recorder.calls == [1]
        full = [asyncio.ensure_future(batcher.submit(request(i, 1))) for i in range(1, 5)]
        await turns(5)  # far less than max_wait_s
        assert recorder.calls == [1, 4]  # the first batch is still held
        recorder.release.set()
        return await asyncio.gather(first, *full)

    results = run(main)
    assert recorder.calls == [1, 4]
    assert [int(r.predictions[0]) for r in results] == list(range(5))


def test_a_request_larger_than_a_batch_goes_alone() -> None:
    recorder = Recorder()

    async def main() -> list[Outputs]:
        batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_s=5.0)
        sizes = [3, 20, 2, 2]
        starts = np.cumsum([0, *sizes])
        return await asyncio.gather(
            *(batcher.submit(request(int(starts[i]), n)) for i, n in enumerate(sizes))
        )

    results = run(main)
    assert recorder.calls == [3, 20, 4]
    assert np.array_equal(np.concatenate([r.predictions for r in results]), np.arange(27))


def test_requests_of_different_shapes_are_not_mixed() -> None:
    recorder = Recorder()

    async def main() -> list[Outputs]:
        batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_s=5.0)
        return await asyncio.gather(
            batcher.submit(request(0, 2, width=3)),
            batcher.submit(request(2, 1, width=3)),
            batcher.submit(request(3, 1, width=4)),
        )

    results = run(main)
    assert recorder.calls == [3, 1]
    assert [r.probabilities.shape for r in results if r.probabilities is not None] == [
        (2, 3),
        (1, 3),
        (1, 4),
    ]


def test_a_failing_batch_is_retried_request_by_request_so_only_the_bad_one_fails() -> None:
    calls: list[int] = []

    async def infer(batch: Batch) -> Outputs:
        calls.append(len(batch["x"]))
        if (batch["x"][:, 0] == 3).any():
            raise RuntimeError("cannot predict row 3")
        return compute(batch)

    async def main() -> tuple[list[Outputs | BaseException], Outputs]:
        batcher = MicroBatcher(infer, max_batch_size=32, max_wait_s=5.0)
        results = await asyncio.gather(
            *(batcher.submit(request(i, 1)) for i in range(5)), return_exceptions=True
        )
        return results, await batcher.submit(request(9, 1))

    results, after = run(main)

    assert calls == [5, 1, 1, 1, 1, 1, 1]  # the batch, each request alone, then the next one
    for i, result in enumerate(results):
        if i == 3:
            assert isinstance(result, RuntimeError) and str(result) == "cannot predict row 3"
        else:
            assert isinstance(result, Outputs) and int(result.predictions[0]) == i
    assert int(after.predictions[0]) == 9  # the batcher keeps serving


def test_a_request_that_fails_alone_gets_the_error() -> None:
    async def infer(batch: Batch) -> Outputs:
        raise RuntimeError("replica crashed")

    async def main() -> BaseException | Outputs:
        batcher = MicroBatcher(infer, max_batch_size=32, max_wait_s=0.0)
        return (await asyncio.gather(batcher.submit(request(0, 1)), return_exceptions=True))[0]

    failed = run(main)
    assert isinstance(failed, RuntimeError) and str(failed) == "replica crashed"


def test_a_malformed_request_fails_alone() -> None:
    recorder = Recorder()

    async def main() -> list[Outputs | BaseException]:
        batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_s=5.0)
        return await asyncio.gather(
            batcher.submit(request(0, 1)),
            batcher.submit({"x": np.zeros((2, 3)), "y": np.zeros(3)}),
            batcher.submit({"x": np.zeros((0, 3))}),
            batcher.submit(request(1, 1)),
            return_exceptions=True,
        )

    ok, mismatched, empty, also_ok = run(main)
    assert isinstance(mismatched, InvalidBatch) and "rows" in str(mismatched)
    assert isinstance(empty, InvalidBatch) and "at least one row" in str(empty)
    assert isinstance(ok, Outputs) and isinstance(also_ok, Outputs)
    assert recorder.calls == [2]


def test_a_caller_cancelled_while_queued_is_left_out_of_the_batch() -> None:
    recorder = Recorder()
    recorder.release.clear()

    async def main() -> list[Outputs]:
        batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_s=5.0)
        first = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await turns(3)
        assert recorder.calls == [1]
        queued = [asyncio.ensure_future(batcher.submit(request(i, 1))) for i in (1, 2, 3)]
        await turns(1)
        queued[1].cancel()
        recorder.release.set()
        return await asyncio.gather(first, queued[0], queued[2])

    results = run(main)
    assert recorder.calls == [1, 2]
    assert [int(r.predictions[0]) for r in results] == [0, 1, 3]


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    b = LocalBackend()
    yield b
    b.close()


def test_batching_a_real_model_on_a_local_backend_matches_direct_predictions(
    backend: LocalBackend, digits_spec: VersionSpec, classifier: LogisticRegression, digits: Digits
) -> None:
    backend.deploy(digits_spec, replicas=2)

    async def main() -> list[Outputs]:
        infer = functools.partial(backend.infer, digits_spec.ref)
        batcher = MicroBatcher(infer, max_batch_size=16, concurrency=2)
        return await asyncio.gather(*(batcher.submit(digits.batch(i, i + 1)) for i in range(64)))

    results = run(main)

    predictions = np.concatenate([r.predictions for r in results])
    np.testing.assert_array_equal(predictions, classifier.predict(digits.x[:64]))
    probabilities = np.concatenate(
        [r.probabilities for r in results if r.probabilities is not None]
    )
    np.testing.assert_allclose(probabilities, classifier.predict_proba(digits.x[:64]), rtol=1e-9)


def test_requests_queued_behind_a_busy_backend_raise_nothing_in_the_loop() -> None:
    held = asyncio.Event()
    calls: list[int] = []

    async def infer(batch: Batch) -> Outputs:
        calls.append(len(batch["x"]))
        if len(calls) == 1:
            await held.wait()
        return compute(batch)

    async def main() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        problems: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: problems.append(context))
        batcher = MicroBatcher(infer, max_batch_size=32, max_wait_s=0.05)
        first = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await turns(3)
        queued = [asyncio.ensure_future(batcher.submit(request(i, 1))) for i in range(1, 4)]
        await turns(3)  # each arrival re-checks the armed timer
        held.set()
        await asyncio.gather(first, *queued)
        return problems

    assert run(main) == []
    assert calls == [1, 3]


def test_a_timer_armed_for_a_deadline_already_past_can_be_rearmed() -> None:
    # uvloop answers call_at for a past deadline with a plain Handle, which has no when();
    # under load the batcher meets this when re-checking its timer.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(lambda batch: asyncio.sleep(0, compute(batch)), max_wait_s=0.01)
        batcher._bind(loop)
        batcher._arm(loop.time() - 1.0)
        batcher._arm(loop.time() - 1.0)
        batcher._arm(loop.time() + 1.0)
        batcher._disarm()

    run(main)
