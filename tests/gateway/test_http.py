"""The gateway over real HTTP: every status code, tenant isolation, route changes under load,
micro-batching, telemetry and /metrics."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelfleet.registry import revoke_key
from modelfleet.runtime import VersionRef
from modelfleet.telemetry.writer import read_rollups
from tests.gateway.conftest import LABELS, Running, infer_body, wait_for


def test_v2_infer_answers_with_the_models_predictions_and_echoes_the_id(gateway: Running) -> None:
    rows = gateway.digits[:3]
    with gateway.client("acme") as c:
        r = c.post("/v2/models/digits/infer", json=infer_body(rows, "req-7"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["model_name"], body["model_version"]) == ("req-7", "digits", "v1")
    outputs = {o["name"]: o for o in body["outputs"]}
    expected = gateway.models["v1"].predict_proba(rows)  # type: ignore[attr-defined]
    assert outputs["class"]["data"] == expected.argmax(axis=1).tolist()
    assert outputs["label"]["data"] == [LABELS[i] for i in expected.argmax(axis=1)]
    assert outputs["probabilities"]["shape"] == [3, 10]
    np.testing.assert_allclose(outputs["confidence"]["data"], expected.max(axis=1), rtol=1e-6)


def test_v2_infer_returns_only_the_outputs_asked_for(gateway: Running) -> None:
    body = {**infer_body(gateway.digits[:1]), "outputs": [{"name": "label"}]}
    with gateway.client("acme") as c:
        r = c.post("/v2/models/digits/versions/v1/infer", json=body)
        bad = c.post("/v2/models/digits/infer", json={**body, "outputs": [{"name": "logits"}]})
    assert [o["name"] for o in r.json()["outputs"]] == ["label"]
    assert bad.status_code == 400 and "unknown output(s) logits" in bad.json()["error"]


def test_plain_json_predict_gives_labels_confidences_and_version(gateway: Running) -> None:
    rows = gateway.digits[10:12]
    with gateway.client("acme") as c:
        r = c.post("/v1/models/digits/predict", json={"instances": rows.tolist()})
    assert r.status_code == 200
    body = r.json()
    expected = gateway.models["v1"].predict(rows)  # type: ignore[attr-defined]
    assert body["predictions"] == [LABELS[i] for i in expected]
    assert body["version"] == "v1" and len(body["confidences"]) == 2


def test_server_metadata_health_and_model_metadata(gateway: Running) -> None:
    with gateway.client() as anonymous, gateway.client("acme") as acme:
        assert anonymous.get("/v2").json()["name"] == "modelfleet"
        assert anonymous.get("/v2/health/live").status_code == 200
        assert anonymous.get("/v2/health/ready").json() == {"ready": True}
        meta = acme.get("/v2/models/digits").json()
        ready = acme.get("/v2/models/digits/versions/v1/ready")
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
    assert meta["versions"] == ["v1"] and meta["platform"] == "sklearn"
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_requests_without_a_valid_key_get_401(gateway: Running) -> None:
    body = infer_body(gateway.digits[:1])
    with gateway.client() as c:
        missing = c.post("/v2/models/digits/infer", json=body)
        wrong = c.post(
            "/v2/models/digits/infer",
            json=body,
            headers={"Authorization": "Bearer mf_abcdefgh_" + "x" * 43},
        )
        garbage = c.post(
            "/v2/models/digits/infer", json=body, headers={"Authorization": "Basic dXNlcg=="}
        )
    for r in (missing, wrong, garbage):
        assert r.status_code == 401 and "error" in r.json()
    assert missing.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused_within_a_second(gateway: Running) -> None:
    body = infer_body(gateway.digits[:1])
    with gateway.client("acme") as c:
        assert c.post("/v2/models/digits/infer", json=body).status_code == 200
        prefix = gateway.keys["acme"].split("_")[1]
        with gateway.store.begin() as conn:
            revoke_key(conn, prefix, actor="test", now=datetime.now(UTC))
        wait_for(
            lambda: c.post("/v2/models/digits/infer", json=body).status_code == 401, timeout=1.5
        )


def test_a_model_not_deployed_for_a_tenant_is_404_exactly_like_a_missing_one(
    gateway: Running,
) -> None:
    body = infer_body(gateway.digits[:1])
    with gateway.client("carol") as carol, gateway.client("acme") as acme:
        hidden = carol.post("/v2/models/digits/infer", json=body)
        missing = carol.post("/v2/models/nonexistent/infer", json=body)
        hidden_meta = carol.get("/v2/models/digits")
        other_version = acme.post("/v2/models/digits/versions/v2/infer", json=body)
    assert hidden.status_code == missing.status_code == hidden_meta.status_code == 404
    assert hidden.json()["error"] == "model 'digits' not found"
    assert missing.json()["error"] == "model 'nonexistent' not found"
    assert other_version.status_code == 404


def test_bad_requests_get_4xx_with_a_message_never_500(gateway: Running) -> None:
    rows = gateway.digits[:1]
    good = infer_body(rows)
    tensor = good["inputs"][0]  # type: ignore[index]
    cases = {
        "malformed JSON": (b"{not json", 400, "malformed JSON"),
        "empty body": (b"", 400, "empty"),
        "NaN literal": (
            b'{"inputs":[{"name":"pixels","shape":[1,64],"datatype":"FP32","data":[NaN]}]}',
            400,
            "malformed JSON",
        ),
        "wrong name": ({"inputs": [{**tensor, "name": "image"}]}, 400, "unknown input 'image'"),
        "wrong shape": ({"inputs": [{**tensor, "shape": [1, 63]}]}, 400, "shape must be [n, 64]"),
        "wrong datatype": (
            {"inputs": [{**tensor, "datatype": "INT64"}]},
            400,
            "datatype must be FP32",
        ),
        "huge number": (
            b'{"inputs":[{"name":"pixels","shape":[1,1],"datatype":"FP32","data":[1e999]}]}',
            400,
            "",
        ),
        "too large": (b"{" + b" " * (2 << 20) + b"}", 413, "larger than"),
    }
    with gateway.client("acme") as c:
        for name, (body, status, message) in cases.items():
            if isinstance(body, bytes):
                r = c.post(
                    "/v2/models/digits/infer",
                    content=body,
                    headers={"content-type": "application/json"},
                )
            else:
                r = c.post("/v2/models/digits/infer", json=body)
            assert r.status_code == status, (name, r.text)
            assert message in r.json()["error"], name
        assert c.get("/v2/models/digits/infer").status_code == 405
        assert c.get("/nowhere").status_code == 404
        assert c.post("/v2/models/digits/infer", json=good).status_code == 200


def test_a_tenant_over_its_quota_gets_429_with_retry_after(gateway: Running) -> None:
    body = infer_body(gateway.digits[:1])
    with gateway.client("bolt") as c:
        codes = [c.post("/v2/models/digits/infer", json=body) for _ in range(6)]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200]  # the free tier's burst here
    refused = [r for r in codes if r.status_code == 429]
    assert refused and int(refused[0].headers["retry-after"]) >= 1
    assert "quota exceeded" in refused[0].json()["error"]
    with gateway.client("acme") as c:  # another tenant is not affected
        assert c.post("/v2/models/digits/infer", json=body).status_code == 200


def test_micro_batched_results_are_identical_to_unbatched_ones(gateway: Running) -> None:
    rows = gateway.digits[:64]
    expected = gateway.models["v1"].predict_proba(rows)  # type: ignore[attr-defined]
    with gateway.client("acme") as c, ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(
                lambda i: c.post("/v2/models/digits/infer", json=infer_body(rows[i : i + 1])),
                range(64),
            )
        )
    for i, r in enumerate(responses):
        outputs = {o["name"]: o for o in r.json()["outputs"]}
        assert outputs["class"]["data"] == [int(expected[i].argmax())]
        # float32 matrix products round differently with the batch's size: equal to float32 precision
        np.testing.assert_allclose(
            outputs["probabilities"]["data"], expected[i], rtol=1e-5, atol=1e-7
        )


def test_a_route_change_is_served_within_a_second_and_fails_no_request(gateway: Running) -> None:
    body = infer_body(gateway.digits[:1])
    change = (
        gateway.fleet_dir.joinpath("fleet.yaml").read_text().replace("version: v1", "version: v2")
    )

    def hammer(_: int) -> list[tuple[int, str]]:
        seen = []
        with gateway.client("acme") as c:
            for _ in range(40):
                r = c.post("/v2/models/digits/infer", json=body)
                seen.append((r.status_code, r.json().get("model_version", "")))
        return seen

    with ThreadPoolExecutor(4) as pool:
        load = pool.map(hammer, range(4))
        gateway.apply(change)
        results = [x for batch in load for x in batch]
    assert {code for code, _ in results} == {200}
    with gateway.client("acme") as c:
        wait_for(
            lambda: c.post("/v2/models/digits/infer", json=body).json()["model_version"] == "v2",
            timeout=1.5,
        )


def test_every_acknowledged_request_is_in_the_rollups_after_shutdown(gateway: Running) -> None:
    body = infer_body(gateway.digits[:2])
    with gateway.client("acme") as c:
        ok = sum(c.post("/v2/models/digits/infer", json=body).status_code == 200 for _ in range(25))
        bad = sum(
            c.post("/v2/models/digits/infer", content=b"{").status_code == 400 for _ in range(3)
        )
    gateway.serving.flush()
    now = datetime.now(UTC)
    with gateway.store.begin() as conn:
        rollups = read_rollups(
            conn, since=now - timedelta(minutes=5), until=now + timedelta(minutes=1), tenant="acme"
        )
    statuses = {k: sum(r.status[k] for r in rollups.values()) for k in ("2xx", "4xx", "5xx")}
    assert statuses == {"2xx": ok, "4xx": bad, "5xx": 0}
    assert sum(r.rows for r in rollups.values()) == 2 * ok + bad
    assert all(k.region == "eu-west" and k.version == "v1" for k in rollups)


def test_metrics_are_valid_prometheus_text(gateway: Running) -> None:
    with gateway.client("acme") as c:
        c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1]))
        c.post("/v2/models/digits/infer", content=b"{")
    with gateway.client("bolt") as c:
        for _ in range(5):
            c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1]))
    with gateway.client() as c:
        text = c.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {
        (s.labels["tenant"], s.labels["code"]): s.value
        for s in families["modelfleet_requests"].samples
        if s.name == "modelfleet_requests_total"
    }
    assert requests[("acme", "200")] == 1 and requests[("acme", "400")] == 1
    assert families["modelfleet_request_duration_seconds"].type == "histogram"
    assert "modelfleet_requests_in_flight" in families
    rejections = {
        s.labels["reason"]: s.value
        for s in families["modelfleet_rejections"].samples
        if s.name.endswith("_total")
    }
    assert rejections["rate"] >= 1


def test_a_version_that_fails_to_load_marks_its_deployment_failed_and_traffic_stays(
    gateway: Running,
) -> None:
    from sqlalchemy import select

    from modelfleet.store.tables import deployment_status

    (gateway.fleet_dir / "v3.joblib").write_bytes(b"not a model at all")
    gateway.apply(
        "kind: ModelVersion\nmetadata: {name: v3}\nspec: {model: digits, artifact: v3.joblib, format: sklearn}\n"
        "---\nkind: Deployment\nmetadata: {name: digits}\n"
        "spec: {model: digits, tenants: [acme, bolt], version: v3}\n"
    )

    def status() -> tuple[str, str | None] | None:
        with gateway.store.begin() as conn:
            row = conn.execute(
                select(deployment_status).where(deployment_status.c.deployment == "digits")
            ).first()
        return None if row is None else (row.state, row.reason)

    wait_for(lambda: (status() or ("",))[0] == "failed", timeout=3)
    state, reason = status()  # type: ignore[misc]
    assert reason is not None and "digits/v3" in reason
    with gateway.client("acme") as c:
        r = c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1]))
    assert r.status_code == 200 and r.json()["model_version"] == "v1"


def test_an_artifact_changed_on_disk_after_registration_is_refused(gateway: Running) -> None:
    # v2 is registered with its hash; then someone overwrites the file in place.
    (gateway.fleet_dir / "v2.joblib").write_bytes(
        (gateway.fleet_dir / "v1.joblib").read_bytes() + b"\0"
    )
    gateway.apply(
        "kind: Deployment\nmetadata: {name: digits}\nspec: {model: digits, tenants: [acme, bolt], version: v2}\n"
    )
    with gateway.client("acme") as c:
        wait_for(
            lambda: gateway.server.gateway.backend.health(_ref("v2")).state == "failed", timeout=3
        )
        assert "sha256" in (gateway.server.gateway.backend.health(_ref("v2")).reason or "")
        assert (
            c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1])).json()[
                "model_version"
            ]
            == "v1"
        )


def _ref(version: str) -> VersionRef:
    return VersionRef("digits", version)


def _count(gateway: Running, table_name: str) -> int:
    from sqlalchemy import func, select

    from modelfleet.store import tables

    with gateway.store.begin() as conn:
        return int(
            conn.execute(select(func.count()).select_from(getattr(tables, table_name))).scalar_one()
        )


def test_rollups_survive_a_failed_flush_and_land_with_the_next(gateway: Running) -> None:
    from sqlalchemy import text

    with gateway.store.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER down BEFORE INSERT ON rollups BEGIN SELECT RAISE(ABORT, 'store down'); END"
            )
        )
    with gateway.client("acme") as c:
        ok = sum(
            c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1])).status_code
            == 200
            for _ in range(7)
        )
    assert gateway.serving.flush() is False
    assert _count(gateway, "rollups") == 0
    with gateway.store.begin() as conn:
        conn.execute(text("DROP TRIGGER down"))
    assert gateway.serving.flush() is True
    now = datetime.now(UTC)
    with gateway.store.begin() as conn:
        rollups = read_rollups(
            conn, since=now - timedelta(minutes=5), until=now + timedelta(minutes=1)
        )
    assert sum(r.status["2xx"] for r in rollups.values()) == ok == 7


def test_a_share_of_requests_and_every_low_confidence_one_is_kept_whole(gateway: Running) -> None:
    from dataclasses import replace

    from sqlalchemy import select

    from modelfleet.store.tables import samples

    served = gateway.server.gateway
    served.settings = replace(served.settings, sample_rate=0.0, low_confidence=0.0)
    with gateway.client("acme") as c:
        c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1]))
        served.settings = replace(served.settings, low_confidence=1.01)  # every row is "low"
        c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[1:3], "kept"))
    gateway.serving.flush()
    with gateway.store.begin() as conn:
        rows = conn.execute(select(samples)).all()
    assert len(rows) == 1
    [row] = rows
    assert (row.tenant, row.model, row.version, row.reason) == (
        "acme",
        "digits",
        "v1",
        "low_confidence",
    )
    assert np.asarray(row.inputs["pixels"]).shape == (2, 64)
    assert row.outputs["id"] == "kept"


def test_key_use_is_recorded_for_keys_list(gateway: Running) -> None:
    from modelfleet.registry import list_keys

    with gateway.client("acme") as c:
        c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1]))
    gateway.serving.flush()
    with gateway.store.begin() as conn:
        used = {k.tenant: k.last_used_at for k in list_keys(conn)}
    assert used["acme"] is not None and used["carol"] is None


def test_rollups_histogram_every_input_element_on_the_reference_deciles(gateway: Running) -> None:
    rows = gateway.digits[:6]
    with gateway.client("acme") as c:
        assert c.post("/v2/models/digits/infer", json=infer_body(rows)).status_code == 200
        assert c.post("/v2/models/digits/infer", content=b"{").status_code == 400
    gateway.serving.flush()
    now = datetime.now(UTC)
    with gateway.store.begin() as conn:
        [rollup] = read_rollups(
            conn, since=now - timedelta(minutes=5), until=now + timedelta(minutes=1)
        ).values()
    assert sorted(rollup.features, key=lambda n: int(n[7:-1])) == [
        f"pixels[{i}]" for i in range(64)
    ]
    assert all(
        h.total == 6 for h in rollup.features.values()
    )  # the rows served; not the bad request
    column = rows[:, 36].astype(float)
    h = rollup.features["pixels[36]"]
    assert (
        list(h.counts)
        == np.bincount(
            np.searchsorted(h.edges, column, side="right"), minlength=len(h.edges) + 1
        ).tolist()
    )


def test_a_tenants_own_quota_in_fleet_yaml_replaces_its_tiers(gateway: Running) -> None:
    body = infer_body(gateway.digits[:1])
    gateway.apply(
        "kind: Tenant\nmetadata: {name: bolt}\n"
        "spec: {display_name: Bolt, tier: free, home_region: us-east, contact_email: dev@bolt.example,\n"
        "       quota: {requests_per_second: 1000, burst: 1000, max_in_flight: 10}}\n"
    )
    with gateway.client("bolt") as c:
        wait_for(lambda: gateway.server.gateway.table.route("bolt", "digits").quota is not None)  # type: ignore[union-attr]
        codes = [c.post("/v2/models/digits/infer", json=body).status_code for _ in range(8)]
    assert codes == [200] * 8  # the free tier here allows a burst of 3


def test_a_model_that_raises_gets_a_clear_500_without_its_internals(
    gateway: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (gateway.fleet_dir / "broken.py").write_text(
        "def predict(batch):\n    raise RuntimeError('secret internals')\n"
    )
    gateway.apply(
        gateway.fleet_dir.joinpath("fleet.yaml").read_text()
        + "---\nkind: ModelVersion\nmetadata: {name: broken}\n"
        "spec: {model: digits, artifact: 'broken.py:predict', format: python}\n"
    )
    gateway.apply(
        gateway.fleet_dir.joinpath("fleet.yaml")
        .read_text()
        .replace("version: v1", "version: broken")
    )
    with gateway.client("acme") as client, caplog.at_level("WARNING"):
        deadline = time.monotonic() + 10
        while True:
            r = client.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1]))
            if r.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert r.status_code == 500
    assert r.json() == {"error": "the model failed to answer this request"}
    assert "secret internals" not in r.text
    assert not any(record.exc_info for record in caplog.records)  # one line, no stack trace
