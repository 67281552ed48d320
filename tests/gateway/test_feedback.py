"""The prediction log and `POST /v1/feedback` over real HTTP: ids, validation, tenants, storage."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select, text

from modelfleet.review import accuracy
from modelfleet.store.tables import feedback, predictions, samples
from modelfleet.telemetry.feedback import read_feedback
from tests.gateway.conftest import LABELS, Running, infer_body

NO_SAMPLES = {"sample_rate": 0.0, "low_confidence": 0.0}


def _settings(gateway: Running, **changes: Any) -> None:
    served = gateway.server.gateway
    served.settings = replace(served.settings, **changes)


def _logged(gateway: Running) -> list[Any]:
    p = predictions
    with gateway.store.begin() as conn:
        return list(conn.execute(select(p).order_by(p.c.id)).all())


def _expected(gateway: Running, rows: slice) -> list[str]:
    return [LABELS[i] for i in gateway.models["v1"].predict(gateway.digits[rows])]  # type: ignore[attr-defined]


def test_a_request_with_an_id_is_logged_with_what_it_was_answered(gateway: Running) -> None:
    _settings(gateway, **NO_SAMPLES)
    with gateway.client("acme") as c:
        v2 = c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:2], "req-1"))
        v1 = c.post(
            "/v1/models/digits/predict",
            json={"instances": gateway.digits[2:3].tolist()},
            headers={"X-Request-Id": "req-2"},
        )
        header_only = c.post(
            "/v2/models/digits/infer",
            json=infer_body(gateway.digits[3:4]),
            headers={"X-Request-Id": "req-3"},
        )
        anonymous = c.post(
            "/v1/models/digits/predict", json={"instances": [gateway.digits[4].tolist()]}
        )
    assert v2.json()["id"] == "req-1" and v2.headers["x-request-id"] == "req-1"
    assert v1.json()["id"] == "req-2" and v1.headers["x-request-id"] == "req-2"
    assert header_only.json()["id"] == "req-3" and header_only.headers["x-request-id"] == "req-3"
    assert "id" not in anonymous.json() and "x-request-id" not in anonymous.headers
    assert _logged(gateway) == []  # buffered until the flush
    assert gateway.serving.flush() is True
    logged = _logged(gateway)
    assert [(r.tenant, r.model, r.version, r.request_id) for r in logged] == [
        ("acme", "digits", "v1", "req-1"),
        ("acme", "digits", "v1", "req-2"),
        ("acme", "digits", "v1", "req-3"),
    ]
    assert logged[0].predicted == _expected(gateway, slice(0, 2))
    assert logged[0].confidences == pytest.approx(v2.json()["outputs"][2]["data"])
    assert logged[1].predicted == v1.json()["predictions"]


def test_a_repeated_request_id_keeps_the_first_answer(gateway: Running) -> None:
    _settings(gateway, **NO_SAMPLES)
    with gateway.client("acme") as c:
        for rows in (slice(0, 1), slice(1, 2)):
            c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[rows], "same"))
        gateway.serving.flush()
        c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[2:3], "same"))
    gateway.serving.flush()
    [row] = _logged(gateway)
    assert row.predicted == _expected(gateway, slice(0, 1))


def test_a_kept_sample_gets_a_request_id_and_a_logged_prediction(gateway: Running) -> None:
    _settings(gateway, sample_rate=0.0, low_confidence=1.01)  # every request is kept
    with gateway.client("acme") as c:
        generated = c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1]))
        given = c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[1:2], "mine"))
    request_id = generated.headers["x-request-id"]
    assert re.fullmatch(r"mf-[0-9a-f]{32}", request_id)
    assert "id" not in generated.json()  # the body stays as the client asked
    gateway.serving.flush()
    with gateway.store.begin() as conn:
        kept = conn.execute(select(samples.c.request_id).order_by(samples.c.id)).scalars().all()
    assert kept == [request_id, "mine"]
    assert [r.request_id for r in _logged(gateway)] == [request_id, "mine"]
    assert given.headers["x-request-id"] == "mine"


@pytest.mark.parametrize(
    ("body_id", "header", "message"),
    [
        ("x" * 129, None, "'id' must be 1 to 128 characters, got 129"),
        ("", None, "'id' must be 1 to 128 characters, got 0"),
        (7, None, "'id' must be a string"),
        ("a\nb", None, "'id' must not contain control characters"),
        (None, "y" * 129, "X-Request-Id must be 1 to 128 characters, got 129"),
    ],
)
def test_a_bad_request_id_is_refused_with_400(
    gateway: Running, body_id: object, header: str | None, message: str
) -> None:
    body = infer_body(gateway.digits[:1])
    if body_id is not None:
        body["id"] = body_id
    headers = {"X-Request-Id": header} if header is not None else {}
    with gateway.client("acme") as c:
        response = c.post("/v2/models/digits/infer", json=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_an_id_of_128_characters_is_kept(gateway: Running) -> None:
    longest = "z" * 128
    with gateway.client("acme") as c:
        response = c.post(
            "/v1/models/digits/predict",
            json={"instances": [gateway.digits[0].tolist()]},
            headers={"X-Request-Id": longest},
        )
    assert response.status_code == 200 and response.json()["id"] == longest
    gateway.serving.flush()
    assert [r.request_id for r in _logged(gateway)] == [longest]


def test_the_prediction_log_is_bounded_and_counts_what_it_drops(gateway: Running) -> None:
    _settings(gateway, max_predictions=2, **NO_SAMPLES)
    with gateway.client("acme") as c:
        for i in range(5):
            c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1], f"r{i}"))
        metrics = c.get("/metrics").text
    assert "modelfleet_predictions_dropped_total 3.0" in metrics
    gateway.serving.flush()
    assert [r.request_id for r in _logged(gateway)] == ["r0", "r1"]


def test_the_prediction_log_survives_a_failed_flush(gateway: Running) -> None:
    _settings(gateway, max_predictions=3, **NO_SAMPLES)
    with gateway.store.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER down BEFORE INSERT ON predictions "
                "BEGIN SELECT RAISE(ABORT, 'store down'); END"
            )
        )
    with gateway.client("acme") as c:
        for i in range(2):
            c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1], f"r{i}"))
        assert gateway.serving.flush() is False
        for i in range(2, 4):
            c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1], f"r{i}"))
        metrics = c.get("/metrics").text
    with gateway.store.begin() as conn:
        conn.execute(text("DROP TRIGGER down"))
    assert gateway.serving.flush() is True
    # The failed flush's rows went to the spool, not back into the buffer: none is dropped.
    assert [r.request_id for r in _logged(gateway)] == ["r0", "r1", "r2", "r3"]
    assert "modelfleet_predictions_dropped_total 0.0" in metrics


def _feedback_rows(gateway: Running) -> int:
    with gateway.store.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(feedback)).scalar_one())


def test_feedback_is_stored_once_however_often_it_is_sent(gateway: Running) -> None:
    body = {"model": "digits", "id": "req-1", "label": "seven"}
    with gateway.client("acme") as c:
        answers = [c.post("/v1/feedback", json=body) for _ in range(3)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"accepted": 1})] * 3
    with gateway.store.begin() as conn:  # stored before the answer: no flush needed
        [stored] = read_feedback(conn)
    assert (stored.tenant, stored.model, stored.request_id, stored.row, stored.label) == (
        "acme",
        "digits",
        "req-1",
        0,
        "seven",
    )
    assert stored.source == "customer" and stored.actor.startswith("key ")


def test_feedback_labels_every_row_or_one_row(gateway: Running) -> None:
    with gateway.client("acme") as c:
        many = c.post("/v1/feedback", json={"model": "digits", "id": "b", "labels": ["one", "two"]})
        one = c.post("/v1/feedback", json={"model": "digits", "id": "b", "label": "six", "row": 1})
    assert many.json() == {"accepted": 2} and one.json() == {"accepted": 1}
    with gateway.store.begin() as conn:
        assert [(f.row, f.label) for f in read_feedback(conn)] == [(0, "one"), (1, "six")]


def test_feedback_and_the_log_together_give_accuracy(gateway: Running) -> None:
    _settings(gateway, **NO_SAMPLES)
    truth = [LABELS[i] for i in range(4)]
    with gateway.client("acme") as c:
        answer = c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:4], "batch"))
        predicted = answer.json()["outputs"][0]["data"]
        c.post("/v1/feedback", json={"model": "digits", "id": "batch", "labels": truth})
    gateway.serving.flush()
    with gateway.store.begin() as conn:
        [row] = accuracy(conn, model="digits")
    assert row.labelled == 4
    assert row.correct == sum(p == t for p, t in zip(predicted, truth, strict=True))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"", "the request body is empty"),
        (b"[1]", "the request body must be a JSON object"),
        (b'{"id": "r", "label": "one"}', "'model' must be the name of a model"),
        (b'{"model": "digits", "label": "one"}', "'id' is missing"),
        (b'{"model": "digits", "id": 5, "label": "one"}', "'id' must be a string"),
        (b'{"model": "digits", "id": "r"}', "give either 'label' (one row) or 'labels'"),
        (
            b'{"model": "digits", "id": "r", "label": "one", "labels": ["one"]}',
            "give either 'label' (one row) or 'labels'",
        ),
        (b'{"model": "digits", "id": "r", "label": 3}', "'label' must be a string, got 3"),
        (b'{"model": "digits", "id": "r", "labels": []}', "'labels' must be a list of 1 to"),
        (b'{"model": "digits", "id": "r", "labels": ["one", 2]}', "labels[1] must be a string"),
        (b'{"model": "digits", "id": "r", "label": "one", "row": -1}', "'row' must be an integer"),
        (
            b'{"model": "digits", "id": "r", "label": "one", "row": true}',
            "'row' must be an integer",
        ),
        (
            b'{"model": "digits", "id": "r", "labels": ["one"], "row": 1}',
            "'row' goes with a single 'label'",
        ),
        (b'{"model": "digits", "id": "r", "lable": "one"}', "unknown field(s) lable"),
        (
            b'{"model": "digits", "id": "r", "label": "kiwi"}',
            "unknown label 'kiwi' for model 'digits'; valid labels: zero, one, two, three, four, "
            "five, six, seven, eight, nine",
        ),
        (
            b'{"model": "digits", "id": "r", "labels": ["one", "onee"]}',
            "unknown label 'onee' for model 'digits'",
        ),
    ],
)
def test_a_bad_feedback_body_gets_400_with_what_is_wrong(
    gateway: Running, body: bytes, message: str
) -> None:
    with gateway.client("acme") as c:
        response = c.post("/v1/feedback", content=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert _feedback_rows(gateway) == 0


def test_feedback_on_a_model_not_served_to_the_tenant_is_404_like_inference(
    gateway: Running,
) -> None:
    with gateway.client("carol") as c:  # digits is deployed for acme and bolt only
        response = c.post("/v1/feedback", json={"model": "digits", "id": "r", "label": "one"})
        inference = c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1]))
    assert response.status_code == inference.status_code == 404
    assert response.json() == inference.json() == {"error": "model 'digits' not found"}
    with gateway.client("acme") as c:
        assert (
            c.post("/v1/feedback", json={"model": "nope", "id": "r", "label": "a"}).status_code
            == 404
        )
    assert _feedback_rows(gateway) == 0


def test_feedback_needs_a_key_and_a_post(gateway: Running) -> None:
    body = {"model": "digits", "id": "r", "label": "one"}
    with gateway.client() as c:
        missing = c.post("/v1/feedback", json=body)
        wrong = c.post("/v1/feedback", json=body, headers={"Authorization": "Bearer mf_nope_x"})
    with gateway.client("acme") as c:
        get = c.get("/v1/feedback")
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert get.status_code == 405 and get.headers["allow"] == "POST"
    assert _feedback_rows(gateway) == 0


def test_a_tenant_cannot_touch_another_tenants_predictions(gateway: Running) -> None:
    _settings(gateway, **NO_SAMPLES)
    with gateway.client("bolt") as c:
        answer = c.post("/v2/models/digits/infer", json=infer_body(gateway.digits[:1], "bolt-req"))
    predicted = answer.json()["outputs"][0]["data"][0]
    wrong = next(label for label in LABELS if label != predicted)
    with gateway.client("acme") as c:  # acme names bolt's request id
        assert (
            c.post(
                "/v1/feedback", json={"model": "digits", "id": "bolt-req", "label": wrong}
            ).status_code
            == 200
        )
    gateway.serving.flush()
    with gateway.store.begin() as conn:
        [stored] = read_feedback(conn)
        assert stored.tenant == "acme"  # the key's tenant, whatever the id
        assert accuracy(conn) == []  # it scores nobody: acme never made that request
    with gateway.client("bolt") as c:
        c.post("/v1/feedback", json={"model": "digits", "id": "bolt-req", "label": predicted})
    with gateway.store.begin() as conn:
        [row] = accuracy(conn)
        assert [(f.tenant, f.label) for f in read_feedback(conn)] == [
            ("acme", wrong),
            ("bolt", predicted),
        ]
    assert (row.tenant, row.labelled, row.correct) == ("bolt", 1, 1)


def test_feedback_that_cannot_be_stored_is_not_acknowledged(gateway: Running) -> None:
    with gateway.store.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER down BEFORE INSERT ON feedback "
                "BEGIN SELECT RAISE(ABORT, 'store down'); END"
            )
        )
    body = {"model": "digits", "id": "r", "label": "one"}
    with gateway.client("acme") as c:
        refused = c.post("/v1/feedback", json=body)
        with gateway.store.begin() as conn:
            conn.execute(text("DROP TRIGGER down"))
        accepted = c.post("/v1/feedback", json=body)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json() == {"error": "the feedback could not be stored; send it again"}
    assert accepted.status_code == 200 and _feedback_rows(gateway) == 1


def test_feedback_over_the_body_limit_is_413(gateway: Running) -> None:
    labels = ["one"] * 300_000
    with gateway.client("acme") as c:
        response = c.post("/v1/feedback", json={"model": "digits", "id": "r", "labels": labels})
    assert response.status_code == 413
    assert _feedback_rows(gateway) == 0


def test_a_kept_request_is_reviewed_and_its_label_scores_the_version(gateway: Running) -> None:
    from datetime import UTC, datetime

    from modelfleet.review import ReviewController, label_item, next_item

    _settings(gateway, sample_rate=0.0, low_confidence=1.01)
    with gateway.client("acme") as c:
        answer = c.post(
            "/v1/models/digits/predict", json={"instances": [gateway.digits[0].tolist()]}
        )
    gateway.serving.flush()
    now = datetime.now(UTC)
    assert len(ReviewController(gateway.store).tick(now)) == 1
    with gateway.store.begin() as conn:
        item = next_item(conn, tenant="acme")
        assert item is not None
        assert (item.request_id, item.predicted) == (
            answer.headers["x-request-id"],
            answer.json()["predictions"][0],
        )
        label_item(conn, item.id, LABELS[0], actor="dana", now=now, tenant="acme")
    with gateway.store.begin() as conn:
        [row] = accuracy(conn, tenant="acme")
    assert (row.version, row.labelled, row.correct) == ("v1", 1, int(item.predicted == LABELS[0]))
