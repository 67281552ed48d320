"""The telemetry spool on SQLite and PostgreSQL: batches kept on disk, written back once, in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from modelfleet.clock import VirtualClock
from modelfleet.errors import StoreError
from modelfleet.store import Store, open_store
from modelfleet.store.tables import predictions as predictions_table
from modelfleet.store.tables import samples as samples_table
from modelfleet.store.tables import spooled_batches
from modelfleet.telemetry.rollup import RollupBuffer, no_features
from modelfleet.telemetry.spool import SUFFIX, Batch, Spool, decode, encode, write_batch
from modelfleet.telemetry.writer import read_rollups

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def batch(tenant: str, requests: int, at: datetime = T0, tag: str = "") -> Batch:
    """A batch of `requests` answered requests for `tenant`, with a sample and a prediction."""
    buffer = RollupBuffer(no_features)
    for _ in range(requests):
        buffer.record(tenant, "digits", "v1", "eu-west", at, 200, 0.01)
    request_id = f"{tenant}-{tag or requests}"
    row = {"tenant": tenant, "model": "digits", "version": "v1", "at": at}
    return Batch(
        rollups=buffer.drain(),
        samples=[
            {
                **row,
                "region": "eu-west",
                "reason": "sampled",
                "inputs": {"pixels": [[0.5, 1.0]]},
                "outputs": {"predictions": ["one"]},
                "request_id": request_id,
            }
        ],
        predictions=[{**row, "request_id": request_id, "predicted": ["one"], "confidences": [0.9]}],
    )


def folder(spool: Spool) -> Path:
    assert spool.directory is not None
    return spool.directory


def requests_in(store: Store, tenant: str) -> int:
    with store.begin() as conn:
        merged = read_rollups(conn, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))
    return sum(r.requests for key, r in merged.items() if key.tenant == tenant)


def count(store: Store, table: object) -> int:
    with store.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def unreachable() -> Iterator[Store]:
    """A store that refuses every connection, as one behind a cut network does."""
    store = open_store("postgresql+psycopg://postgres@127.0.0.1:1/test", migrate=False)
    yield store
    store.close()


def test_a_batch_survives_encoding_whole() -> None:
    original = batch("acme", 3)
    original.key_uses["mf_abc"] = T0
    again = decode(encode(original))
    assert again.id == original.id
    assert again.rollups == original.rollups
    assert again.samples == original.samples
    assert again.predictions == original.predictions
    assert again.key_uses == {"mf_abc": T0}


def test_spooled_batches_are_written_back_in_order_and_leave_the_disk(
    store: Store, tmp_path: Path, clock: VirtualClock
) -> None:
    spool = Spool(tmp_path / "spool")
    first, second = batch("acme", 2, tag="x"), batch("acme", 5, tag="x")  # same request id
    spool.put(first, clock.now())
    spool.put(second, clock.now())
    assert spool.waiting() == 2
    assert len(list(folder(spool).iterdir())) == 3  # two and the lock

    assert spool.write_back(store, clock.now()) == 2
    assert spool.waiting() == 0
    assert requests_in(store, "acme") == 7
    assert count(store, samples_table) == 2
    # The prediction log keeps a request's first row: the oldest batch went first.
    with store.begin() as conn:
        kept = conn.execute(select(predictions_table.c.at)).scalars().all()
    assert len(kept) == 1
    assert spool.write_back(store, clock.now()) == 0
    assert requests_in(store, "acme") == 7
    spool.close()
    assert not (tmp_path / "spool" / spool.name).exists()


def test_a_crash_between_commit_and_delete_writes_nothing_twice(
    store: Store, tmp_path: Path, clock: VirtualClock
) -> None:
    spool = Spool(tmp_path / "spool")
    spooled = batch("acme", 4)
    spool.put(spooled, clock.now())
    saved = {p.name: p.read_bytes() for p in folder(spool).iterdir()}
    assert spool.write_back(store, clock.now()) == 1
    # The process died after the commit, before the delete: the file is still there.
    for name, data in saved.items():
        (folder(spool) / name).write_bytes(data)

    assert spool.write_back(store, clock.now()) == 1
    assert spool.waiting() == 0
    assert requests_in(store, "acme") == 4
    assert count(store, samples_table) == 1


def test_a_flush_committed_but_unacknowledged_is_not_written_again(
    store: Store, tmp_path: Path, clock: VirtualClock
) -> None:
    spool = Spool(tmp_path / "spool")
    sent = batch("acme", 3)
    with store.begin() as conn:  # the store committed it; the answer was lost on the way back
        write_batch(conn, sent, gateway=spool.name, now=clock.now())
    spool.put(sent, clock.now())  # so the gateway spooled it as failed

    assert spool.write_back(store, clock.now()) == 1
    assert requests_in(store, "acme") == 3


def test_direct_writes_forget_the_ids_of_settled_batches(
    store: Store, tmp_path: Path, clock: VirtualClock
) -> None:
    spool = Spool(tmp_path / "spool")
    for n in range(3):
        spool.put(batch("acme", 1, tag=str(n)), clock.now())
    spool.write_back(store, clock.now())
    assert count(store, spooled_batches) == 3
    for n in range(3, 6):
        spool.write(store, batch("acme", 1, tag=str(n)), clock.now())
    assert count(store, spooled_batches) == 1
    assert requests_in(store, "acme") == 6


def test_a_corrupt_file_is_set_aside_and_the_others_go_on(
    store: Store, tmp_path: Path, clock: VirtualClock
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(batch("acme", 1, tag="a"), clock.now())
    spool.put(batch("acme", 2, tag="b"), clock.now())
    spool.put(batch("acme", 4, tag="c"), clock.now())
    middle = sorted(p for p in folder(spool).iterdir() if p.name.endswith(SUFFIX))[1]
    middle.write_bytes(middle.read_bytes()[:100])
    # A crash mid-write leaves only a temporary file: not a batch, never read.
    (folder(spool) / ".half-written.batch.tmp").write_bytes(b"{")

    assert spool.write_back(store, clock.now()) == 2
    assert requests_in(store, "acme") == 5
    assert spool.set_aside == 1
    assert spool.waiting() == 0
    assert (middle.parent / (middle.name + ".bad")).exists()


def test_a_batch_waits_while_the_store_is_unreachable(
    unreachable: Store, store: Store, tmp_path: Path, clock: VirtualClock
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(batch("acme", 2, tag="a"), clock.now())
    spool.put(batch("bolt", 3, tag="b"), clock.now())
    with pytest.raises(StoreError):
        spool.write_back(unreachable, clock.now())
    assert spool.waiting() == 2
    assert spool.write_back(store, clock.now()) == 2
    assert (requests_in(store, "acme"), requests_in(store, "bolt")) == (2, 3)


def test_each_process_has_its_own_directory_and_adopts_a_dead_ones(
    store: Store, tmp_path: Path, clock: VirtualClock
) -> None:
    root = tmp_path / "spool"
    dead, alive = Spool(root), Spool(root)
    assert dead.directory != alive.directory
    dead.put(batch("acme", 2, tag="a"), clock.now())
    dead.put(batch("acme", 3, tag="b"), clock.now())
    alive.put(batch("bolt", 7), clock.now())
    # While its owner lives, a directory is its own: a sibling's write-back leaves it alone.
    assert alive.write_back(store, clock.now()) == 1
    assert dead.waiting() == 2
    dead.close()  # as its process's death does: the lock is released, the batches stay

    restarted = Spool(root)
    assert restarted.write_back(store, clock.now()) == 2
    assert (requests_in(store, "acme"), requests_in(store, "bolt")) == (5, 7)
    assert sorted(p.name for p in root.iterdir()) == sorted([alive.name, restarted.name])
    alive.close()
    restarted.close()
    assert list(root.iterdir()) == []


def test_a_spool_without_a_directory_keeps_batches_in_memory(
    store: Store, clock: VirtualClock
) -> None:
    spool = Spool()
    spool.put(batch("acme", 2), clock.now())
    assert spool.waiting() == 1
    assert spool.write_back(store, clock.now()) == 1
    assert requests_in(store, "acme") == 2


def test_a_disk_that_fails_keeps_the_batch_in_memory(
    store: Store, tmp_path: Path, clock: VirtualClock
) -> None:
    spool = Spool(tmp_path / "spool")
    directory = spool.directory
    assert directory is not None
    directory.rename(tmp_path / "elsewhere")
    directory.write_bytes(b"")  # a file where the directory was: every write fails
    spool.put(batch("acme", 2), clock.now())
    directory.unlink()
    (tmp_path / "elsewhere").rename(directory)
    assert spool.waiting() == 1
    assert spool.write_back(store, clock.now()) == 1
    assert requests_in(store, "acme") == 2
