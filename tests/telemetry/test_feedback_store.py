"""The prediction log and feedback in the store: first answer kept, one label per row, per tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from modelfleet.clock import VirtualClock
from modelfleet.errors import InvalidInput
from modelfleet.store import Store
from modelfleet.store.tables import predictions
from modelfleet.telemetry.feedback import (
    Feedback,
    check_label,
    read_feedback,
    write_feedback,
    write_predictions,
)

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _prediction(request_id: str, predicted: list[str], tenant: str = "acme") -> dict[str, object]:
    return {
        "tenant": tenant,
        "model": "digits",
        "version": "v1",
        "request_id": request_id,
        "at": AT,
        "predicted": predicted,
        "confidences": [0.9] * len(predicted),
    }


def _logged(store: Store) -> list[tuple[str, str, list[str]]]:
    p = predictions
    with store.begin() as conn:
        rows = conn.execute(select(p.c.tenant, p.c.request_id, p.c.predicted).order_by(p.c.id))
        return [(r.tenant, r.request_id, r.predicted) for r in rows]


def test_a_repeated_request_id_keeps_its_first_prediction(store: Store) -> None:
    with store.begin() as conn:
        offered = write_predictions(
            conn, [_prediction("r1", ["a"]), _prediction("r1", ["b"]), _prediction("r2", ["c"])]
        )
    assert offered == 2
    with store.begin() as conn:  # a later flush, e.g. from another worker
        write_predictions(conn, [_prediction("r1", ["c"]), _prediction("r3", ["a", "b"])])
    assert _logged(store) == [
        ("acme", "r1", ["a"]),
        ("acme", "r2", ["c"]),
        ("acme", "r3", ["a", "b"]),
    ]


def test_the_same_request_id_of_two_tenants_is_two_predictions(store: Store) -> None:
    with store.begin() as conn:
        write_predictions(conn, [_prediction("r1", ["a"]), _prediction("r1", ["b"], "bolt")])
    assert _logged(store) == [("acme", "r1", ["a"]), ("bolt", "r1", ["b"])]


def _feedback(label: str, row: int = 0, tenant: str = "acme", **kw: object) -> Feedback:
    fields: dict[str, object] = {
        "tenant": tenant,
        "model": "digits",
        "request_id": "r1",
        "row": row,
        "label": label,
        "source": "customer",
        "actor": "key abc",
        "received_at": AT + timedelta(minutes=1),
    }
    fields.update(kw)
    return Feedback(**fields)  # type: ignore[arg-type]


def test_feedback_sent_again_is_stored_once(store: Store) -> None:
    for _ in range(3):
        with store.begin() as conn:
            write_feedback(conn, [_feedback("a")])
    with store.begin() as conn:
        assert read_feedback(conn) == [_feedback("a")]


def test_a_new_label_for_a_row_replaces_the_old_one(store: Store, clock: VirtualClock) -> None:
    later = clock.now() + timedelta(hours=1)
    with store.begin() as conn:
        write_feedback(conn, [_feedback("a", 0), _feedback("b", 1)])
    with store.begin() as conn:
        write_feedback(conn, [_feedback("c", 0, source="review", actor="dana", received_at=later)])
    with store.begin() as conn:
        stored = read_feedback(conn)
    assert [(f.row, f.label, f.source, f.actor) for f in stored] == [
        (0, "c", "review", "dana"),
        (1, "b", "customer", "key abc"),
    ]
    assert stored[0].received_at == later


def test_feedback_is_kept_per_tenant(store: Store) -> None:
    with store.begin() as conn:
        write_feedback(conn, [_feedback("a"), _feedback("b", tenant="bolt")])
    with store.begin() as conn:
        assert [f.label for f in read_feedback(conn, tenant="acme")] == ["a"]
        assert [f.label for f in read_feedback(conn, tenant="bolt")] == ["b"]


def test_a_label_must_be_one_of_the_models() -> None:
    check_label("digits", "b", ["a", "b"])
    with pytest.raises(
        InvalidInput, match=r"unknown label 'kiwi' for model 'digits'; valid labels: a, b"
    ):
        check_label("digits", "kiwi", ["a", "b"])
    with pytest.raises(InvalidInput, match="not a classifier"):
        check_label("prices", "a", None)
