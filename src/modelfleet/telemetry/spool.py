"""The telemetry spool: batches the store could not take yet, kept on local disk until it can.

A gateway flushes its telemetry as one `Batch` every few seconds (rollups, key uses, samples
and the prediction log). When the store cannot be reached the batch goes to the spool, one
file per batch, and leaves memory; every later flush first writes the waiting batches back,
oldest first, then its own.

Exactly once. Each batch has a random id, and the transaction that writes a batch also
inserts that id into `spooled_batches`; a batch whose id is already there is skipped. That
covers a crash between a write-back's commit and its file's deletion, and also a flush whose
commit reached the store while the cut connection lost the answer: that batch was spooled as
failed, and its write-back finds its id. The ids only matter while a copy of their batch may
still be written, so a gateway's direct write (made when nothing of its own is waiting)
deletes the ids it recorded before; the table keeps about one row per gateway process.

Files are written atomically (a temporary file, fsync, rename, fsync of the directory): a
crash leaves at most a temporary file, which is ignored. A file that cannot be read even so is
moved aside to `*.bad`, logged and counted, and the others go on.

Layout: each process has a directory of its own under the spool directory, named after it
(host, pid, a random token), holding a `lock` file on which it keeps an exclusive `flock`
while it lives. A process that finds another's directory unlocked (its owner died, or stopped
with batches left) adopts it: it renames the batches into its own directory, which claims
them atomically, and removes the rest; so a restarted worker, or any sibling, writes back what
a dead one left. A spool made without a directory keeps batches in memory (lost at exit), and
so does a disk spool whose write fails (a full disk), until a write-back takes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from modelfleet.registry.keys import touch_key
from modelfleet.store import Store
from modelfleet.store.tables import spooled_batches
from modelfleet.telemetry.feedback import write_predictions
from modelfleet.telemetry.rollup import Rollup
from modelfleet.telemetry.writer import write_rollups, write_samples

log = logging.getLogger(__name__)

SUFFIX = ".batch"
BAD = ".bad"
TEMPORARY = ".tmp"
LOCK = "lock"
FORMAT = 1


@dataclass
class Batch:
    """One flush's telemetry, as `GatewayServer` collects it between two flushes."""

    id: str = field(default_factory=lambda: secrets.token_hex(16))
    rollups: list[Rollup] = field(default_factory=list)
    key_uses: dict[str, datetime] = field(default_factory=dict)  # key prefix -> last use
    samples: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rollups or self.key_uses or self.samples or self.predictions)


def encode(batch: Batch) -> bytes:
    """The batch as JSON; datetimes in ISO 8601 with their offset."""
    return orjson.dumps(
        {
            "format": FORMAT,
            "id": batch.id,
            "rollups": [r.to_dict() for r in batch.rollups],
            "key_uses": {prefix: at.isoformat() for prefix, at in batch.key_uses.items()},
            "samples": batch.samples,
            "predictions": batch.predictions,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def decode(data: bytes) -> Batch:
    """The batch `encode` wrote; ValueError if `data` is not one."""
    try:
        doc = orjson.loads(data)
        if doc["format"] != FORMAT:
            raise ValueError(f"unknown format {doc['format']!r}")
        return Batch(
            id=str(doc["id"]),
            rollups=[Rollup.from_dict(r) for r in doc["rollups"]],
            key_uses={str(prefix): _time(at) for prefix, at in doc["key_uses"].items()},
            samples=[{**row, "at": _time(row["at"])} for row in doc["samples"]],
            predictions=[{**row, "at": _time(row["at"])} for row in doc["predictions"]],
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"not a spooled telemetry batch: {exc!r}") from exc


def _time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {text!r}")
    return at


def write_batch(
    conn: Connection, batch: Batch, *, gateway: str, now: datetime, forget_earlier: bool = False
) -> bool:
    """Write `batch` in the caller's transaction unless its id says it was written before;
    True when written. `forget_earlier`: no earlier batch of `gateway` can be written again
    (none waits in its spool), so the ids it recorded before are deleted."""
    t = spooled_batches
    if conn.execute(select(t.c.id).where(t.c.id == batch.id)).first() is not None:
        return False
    if forget_earlier:
        conn.execute(delete(t).where(t.c.gateway == gateway))
    # The id first: a concurrent write of the same batch then waits on it and fails.
    conn.execute(insert(t).values(id=batch.id, gateway=gateway, written_at=now))
    write_rollups(conn, batch.rollups, now=now)
    write_samples(conn, batch.samples)
    write_predictions(conn, batch.predictions)
    for prefix, at in batch.key_uses.items():
        touch_key(conn, prefix, now=at)
    return True


class Spool:
    """One gateway process's spool: under `root` on disk, or in memory when `root` is None.

    Not thread-safe: one flush at a time uses it (the server serialises its flushes).
    """

    def __init__(self, root: Path | None = None, *, name: str | None = None) -> None:
        self.root = root
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.written_back = 0  # batches taken from the spool into the store (or found there)
        self.set_aside = 0  # files that could not be read, moved aside to *.bad
        self._held: list[Batch] = []  # batches kept in memory: no directory, or it failed
        self._sequence = itertools.count()
        self._lock: int | None = None
        self.directory: Path | None = None
        if root is not None:
            self.directory = self._claim_directory(root)

    def _claim_directory(self, root: Path) -> Path:
        """Make this process's directory, locked before it is visible to adopters."""
        root.mkdir(parents=True, exist_ok=True)
        making = root / f".new-{self.name}"
        making.mkdir()
        self._lock = os.open(making / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        directory = root / self.name
        making.rename(directory)
        _sync_directory(root)
        return directory

    def waiting(self) -> int:
        """How many batches wait to be written back."""
        return len(self._held) + len(self._files())

    def put(self, batch: Batch, now: datetime) -> None:
        """Keep `batch` until a write-back; on disk when there is a directory and it works."""
        if self.directory is None:
            self._held.append(batch)
            return
        name = f"{now:%Y%m%dT%H%M%S%f}-{next(self._sequence):08d}-{batch.id}{SUFFIX}"
        temporary = self.directory / f".{name}{TEMPORARY}"
        try:
            with open(temporary, "wb") as file:
                file.write(encode(batch))
                file.flush()
                os.fsync(file.fileno())
            temporary.rename(self.directory / name)
            _sync_directory(self.directory)
        except OSError as exc:
            log.error("cannot spool telemetry to %s, keeping it in memory: %s", self.directory, exc)
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            self._held.append(batch)

    def write_back(self, store: Store, now: datetime) -> int:
        """Write every waiting batch to `store`, oldest first, each in its own transaction;
        returns how many left the spool. Raises the store's error at the first batch it
        refuses (StoreError or SQLAlchemyError): that one and the later ones keep waiting."""
        self._adopt_orphans()
        done = 0
        while self._held:
            self._write(store, self._held[0], now)
            self._held.pop(0)
            done += 1
            self.written_back += 1
        for path in self._files():
            try:
                batch = decode(path.read_bytes())
            except (OSError, ValueError) as exc:
                self._set_aside(path, exc)
                continue
            self._write(store, batch, now)
            path.unlink()
            assert self.directory is not None
            # The deletion must be durable before the id may be forgotten (see write_batch).
            _sync_directory(self.directory)
            done += 1
            self.written_back += 1
        return done

    def write(self, store: Store, batch: Batch, now: datetime) -> None:
        """Write a fresh batch straight to the store, exactly once; call it only when nothing
        waits (after a write-back that raised nothing). Raises as `write_back` does."""
        # Immediate: it reads the id, then writes; SQLite cannot upgrade a deferred read.
        with store.begin(immediate=True) as conn:
            write_batch(conn, batch, gateway=self.name, now=now, forget_earlier=True)

    def close(self) -> None:
        """Let go of the directory: removed when empty, else left for another process to adopt."""
        if self._held:
            log.error(
                "%d telemetry batches were never written to the store and are lost",
                len(self._held),
            )
            self._held.clear()
        if self.directory is None or self._lock is None:
            return
        try:
            if not any(p.name != LOCK for p in self.directory.iterdir()):
                (self.directory / LOCK).unlink()
                self.directory.rmdir()
        except OSError as exc:
            log.warning("could not remove the empty spool directory %s: %s", self.directory, exc)
        os.close(self._lock)  # releases the flock
        self._lock = None

    def _write(self, store: Store, batch: Batch, now: datetime) -> None:
        # Immediate: it reads the id, then writes; SQLite cannot upgrade a deferred read.
        with store.begin(immediate=True) as conn:
            written = write_batch(conn, batch, gateway=self.name, now=now)
        if not written:
            log.info("telemetry batch %s was already in the store; not written twice", batch.id)

    def _files(self) -> list[Path]:
        if self.directory is None:
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX))

    def _set_aside(self, path: Path, why: Exception) -> None:
        self.set_aside += 1
        log.error("spooled telemetry %s cannot be read, moved aside to %s: %s", path, BAD, why)
        try:
            path.rename(path.with_name(path.name + BAD))
        except OSError as exc:
            log.error("could not move %s aside: %s", path, exc)

    def _adopt_orphans(self) -> None:
        """Claim the batches of every process whose directory is no longer locked."""
        if self.root is None:
            return
        for other in self.root.iterdir():
            if other.name != self.name and not other.name.startswith(".") and other.is_dir():
                self._adopt(other)

    def _adopt(self, other: Path) -> None:
        assert self.directory is not None
        try:
            lock = os.open(other / LOCK, os.O_RDWR)
        except FileNotFoundError:
            # Its adopter moved everything out and is removing it, or crashed doing so.
            with contextlib.suppress(OSError):
                other.rmdir()
            return
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its owner is alive
            moved = 0
            for path in sorted(other.iterdir()):
                if path.name == LOCK:
                    continue
                if path.name.endswith(TEMPORARY):  # a write its owner never finished
                    path.unlink()
                    continue
                # A rename is atomic: the batch is ours now, or still the orphan's.
                path.rename(self.directory / path.name)
                moved += 1
            _sync_directory(self.directory)
            (other / LOCK).unlink()
            other.rmdir()
            _sync_directory(other.parent)
            if moved:
                log.warning("adopted %d spooled telemetry files from %s", moved, other.name)
        except FileNotFoundError:
            pass  # another process adopted it first
        finally:
            os.close(lock)


def _sync_directory(directory: Path) -> None:
    """Make renames, creations and deletions in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
