"""A small fleet written to disk: tenants, a model, versions with artifacts, a deployment."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from modelfleet.store import Store

FLEET = """\
kind: Tenant
metadata: {name: acme}
spec: {display_name: Acme, tier: premium, home_region: eu-west, contact_email: ops@acme.example}
---
kind: Tenant
metadata: {name: bolt}
spec: {display_name: Bolt, tier: free, home_region: us-east, contact_email: dev@bolt.example}
---
kind: Model
metadata: {name: digits}
spec:
  input:
    features: [{name: pixels, dtype: float32, shape: [64]}]
  output: {labels: [a, b, c]}
---
kind: ModelVersion
metadata: {name: v1}
spec: {model: digits, artifact: v1.bin, format: sklearn, reference_data: ref.npz}
---
kind: Deployment
metadata: {name: digits-prod}
spec: {model: digits, tenants: [bolt, acme], version: v1}
"""


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    """A directory holding fleet.yaml and the files it names."""
    d = tmp_path / "fleet"
    d.mkdir()
    (d / "fleet.yaml").write_text(FLEET)
    (d / "v1.bin").write_bytes(b"model one")
    (d / "ref.npz").write_bytes(b"reference")
    return d


def dump(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to compare a whole store before and after."""
    meta = MetaData()
    meta.reflect(store.engine)
    with store.engine.connect() as conn:
        return {
            name: sorted((tuple(r) for r in conn.execute(select(table))), key=repr)
            for name, table in meta.tables.items()
        }
