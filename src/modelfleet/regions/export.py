"""A tenant's export: everything the fleet holds about it, in every region, as one archive.

The archive is a gzip-compressed tar file:

    manifest.json               who, when, what: per region and table the rows and SHA-256
    <region>/<table>.jsonl      the tenant's rows of that table in that region, one JSON
                                object a line, as stored (timestamps in ISO 8601, UTC)

Every table of `holdings.HOLDINGS` gets a file in every region, empty when the tenant has no
rows there, so an empty file says "nothing held" rather than "not looked at". Secrets (API key
hashes, session CSRF tokens) are left out and the manifest says which. Each region is read in
one transaction, so its files are one consistent snapshot. The export is recorded in every
region's audit log with the archive's SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy import Connection, select

from modelfleet.errors import InvalidInput, NotFound
from modelfleet.regions.holdings import HOLDINGS
from modelfleet.regions.stores import RegionStore
from modelfleet.registry import audit
from modelfleet.store.tables import tenants

FORMAT: Final = "modelfleet-tenant-export"
FORMAT_VERSION: Final = 1
_SPOOL_BYTES = 8 << 20  # a table's file stays in memory up to this size, then goes to disk


@dataclass(frozen=True)
class ExportSummary:
    """What was written: the archive, its SHA-256, and its manifest."""

    path: Path
    sha256: str
    manifest: dict[str, Any]

    @property
    def rows(self) -> int:
        """Rows exported, every region and table together."""
        return sum(
            t["rows"] for r in self.manifest["regions"].values() for t in r["tables"].values()
        )


def export_tenant(
    regions: Sequence[RegionStore],
    tenant: str,
    to: Path,
    *,
    actor: str,
    now: datetime,
    version: str,
) -> ExportSummary:
    """Write `tenant`'s archive to `to` (atomically: a failed export leaves no partial file)
    and record the export, with the archive's SHA-256, in every region's audit log."""
    if not regions:
        raise InvalidInput("no region to export from")
    with regions[0].store.begin() as conn:
        require_tenant(conn, tenant)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tenant": tenant,
        "exported_at": now.isoformat(),
        "exported_by": actor,
        "modelfleet_version": version,
        "regions": {},
    }
    with ExitStack() as files:
        members: list[tuple[str, IO[bytes]]] = []
        for region in regions:
            tables: dict[str, Any] = {}
            with region.store.begin() as conn:
                for holding in HOLDINGS:
                    member = f"{region.region}/{holding.name}.jsonl"
                    spool = files.enter_context(
                        tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
                    )
                    members.append((member, spool))
                    rows, digest = write_jsonl(holding.rows(conn, tenant), spool)
                    tables[holding.name] = {
                        "file": member,
                        "category": holding.category,
                        "rows": rows,
                        "sha256": digest,
                        "withheld": list(holding.withheld),
                    }
            manifest["regions"][region.region] = {
                "jurisdiction": region.jurisdiction,
                "tables": tables,
            }
        sha256 = _write_archive(to, manifest, members, now)
    summary = ExportSummary(to, sha256, manifest)
    for region in regions:
        with region.store.begin() as conn:
            audit.record(
                conn,
                at=now,
                actor=actor,
                action="export",
                kind="Tenant",
                name=tenant,
                old=None,
                new={
                    "archive_sha256": sha256,
                    "rows": summary.rows,
                    "regions": list(manifest["regions"]),
                },
            )
    return summary


def require_tenant(conn: Connection, tenant: str) -> None:
    """Raise NotFound unless the store knows `tenant`."""
    if conn.execute(select(tenants.c.name).where(tenants.c.name == tenant)).first() is None:
        raise NotFound("tenant", tenant)


def json_line(row: Mapping[str, Any]) -> bytes:
    """One row as a JSON line: keys sorted, timestamps in ISO 8601."""
    text = json.dumps(row, default=_iso, sort_keys=True, ensure_ascii=False)
    return text.encode() + b"\n"


def write_jsonl(rows: Iterable[Mapping[str, Any]], out: IO[bytes]) -> tuple[int, str]:
    """Write rows as JSON lines; returns how many and the SHA-256 of what was written."""
    digest = hashlib.sha256()
    n = 0
    for row in rows:
        line = json_line(row)
        out.write(line)
        digest.update(line)
        n += 1
    return n, digest.hexdigest()


def read_archive(path: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """An archive's manifest and its rows by member name (for checks and tests)."""
    with tarfile.open(path, "r:gz") as tar:
        manifest: dict[str, Any] | None = None
        files: dict[str, list[dict[str, Any]]] = {}
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is None:
                continue
            data = f.read()
            if member.name == "manifest.json":
                manifest = json.loads(data)
            else:
                files[member.name] = [json.loads(line) for line in data.splitlines()]
    if manifest is None:
        raise InvalidInput(f"{path} has no manifest.json: not a modelfleet tenant export")
    return manifest, files


def _iso(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot export a {type(value).__name__}")


def _write_archive(
    to: Path, manifest: Mapping[str, Any], members: Sequence[tuple[str, IO[bytes]]], now: datetime
) -> str:
    """The tar.gz at `to`, written beside it and renamed into place; returns its SHA-256."""
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=f".{to.name}.", dir=to.parent)
    except OSError as exc:
        raise InvalidInput(f"cannot write {to}: {exc.strerror or exc}") from exc
    try:
        # mtime 0 in the gzip header: the same data gives the same archive bytes.
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
            _add(tar, "manifest.json", io.BytesIO(body), len(body), now)
            for name, spool in members:
                size = spool.seek(0, io.SEEK_END)
                spool.seek(0)
                _add(tar, name, spool, size, now)
        os.replace(partial, to)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    digest = hashlib.sha256()
    with to.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int, now: datetime) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(now.timestamp())
    info.mode = 0o644
    tar.addfile(info, data)
