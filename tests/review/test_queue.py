"""The review queue: items opened once per sample, worked in order, labels scored, per tenant."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from modelfleet.clock import VirtualClock
from modelfleet.errors import InvalidInput
from modelfleet.review import (
    ReviewController,
    accuracy,
    export_label_studio,
    get_item,
    label_item,
    list_items,
    next_item,
    sample_inputs,
    summarize_inputs,
)
from modelfleet.store import Store
from modelfleet.telemetry.feedback import read_feedback
from tests.review.conftest import add_sample


def _ids(store: Store, **kw: object) -> list[int]:
    with store.begin() as conn:
        return [item.sample for item in list_items(conn, **kw)]  # type: ignore[arg-type]


def test_each_new_sample_opens_one_item_however_often_the_controller_ticks(
    fleet: Store, clock: VirtualClock
) -> None:
    controller = ReviewController(fleet)
    first = add_sample(fleet, "r1", at=clock.now())
    second = add_sample(fleet, "r2", at=clock.now(), reason="sampled", tenant="bolt")
    events = controller.tick(clock.now())
    assert [(e.kind, e.tenant, e.details) for e in events] == [
        ("review.items_opened", "acme", {"items": 1, "low_confidence": 1}),
        ("review.items_opened", "bolt", {"items": 1, "low_confidence": 0}),
    ]
    assert controller.tick(clock.now()) == []
    assert controller.tick(clock.now() + timedelta(minutes=5)) == []
    assert _ids(fleet, status="all") == [first, second]
    third = add_sample(fleet, "r3", at=clock.now())
    assert len(controller.tick(clock.now())) == 1
    assert _ids(fleet, status="all") == [first, third, second]  # low confidence first


def test_old_samples_and_samples_without_a_request_id_are_not_queued(
    fleet: Store, clock: VirtualClock
) -> None:
    add_sample(fleet, "old", at=clock.now() - timedelta(days=2))
    add_sample(fleet, None, at=clock.now())
    assert ReviewController(fleet, lookback=timedelta(days=1)).tick(clock.now()) == []
    assert _ids(fleet, status="all") == []


def test_a_tick_opens_at_most_a_batch_and_the_rest_next_time(
    fleet: Store, clock: VirtualClock
) -> None:
    for i in range(5):
        add_sample(fleet, f"r{i}", at=clock.now())
    controller = ReviewController(fleet, batch=3)
    assert controller.tick(clock.now())[0].details["items"] == 3
    assert controller.tick(clock.now())[0].details["items"] == 2
    assert len(_ids(fleet)) == 5


def test_next_is_the_oldest_low_confidence_item_then_the_oldest_sampled(
    fleet: Store, clock: VirtualClock
) -> None:
    sampled = add_sample(fleet, "s", at=clock.now(), reason="sampled", predicted="b")
    low = add_sample(fleet, "l", at=clock.now(), predicted="c", confidence=0.31)
    ReviewController(fleet).tick(clock.now())
    with fleet.begin() as conn:
        item = next_item(conn)
        assert item is not None
        assert (item.sample, item.predicted, item.confidence, item.request_id) == (
            low,
            "c",
            0.31,
            "l",
        )
        label_item(conn, item.id, "c", actor="dana", now=clock.now())
        following = next_item(conn)
        assert following is not None and following.sample == sampled
        assert next_item(conn, tenant="bolt") is None
        assert next_item(conn, model="other") is None


def test_a_review_label_is_feedback_and_counts_in_accuracy(
    fleet: Store, clock: VirtualClock
) -> None:
    for i, predicted in enumerate(["a", "a", "b", "c"]):
        add_sample(fleet, f"r{i}", at=clock.now(), predicted=predicted)
    ReviewController(fleet).tick(clock.now())
    with fleet.begin() as conn:
        items = list_items(conn)
        for item, true in zip(items, ["a", "a", "b", "a"], strict=True):
            labelled = label_item(conn, item.id, true, actor="dana", now=clock.now())
            assert (labelled.status, labelled.label, labelled.labelled_by) == (
                "labelled",
                true,
                "dana",
            )
    with fleet.begin() as conn:
        [row] = accuracy(conn, model="digits")
        stored = read_feedback(conn)
        assert list_items(conn) == []
        assert [i.label for i in list_items(conn, status="labelled")] == ["a", "a", "b", "a"]
    assert (row.labelled, row.correct, row.accuracy) == (4, 3, 0.75)
    assert {(f.source, f.actor, f.row) for f in stored} == {("review", "dana", 0)}
    assert [f.request_id for f in stored] == ["r0", "r1", "r2", "r3"]


def test_relabelling_an_item_replaces_its_label_everywhere(
    fleet: Store, clock: VirtualClock
) -> None:
    add_sample(fleet, "r1", at=clock.now(), predicted="a")
    ReviewController(fleet).tick(clock.now())
    with fleet.begin() as conn:
        [item] = list_items(conn)
        label_item(conn, item.id, "b", actor="dana", now=clock.now())
        label_item(conn, item.id, "a", actor="eve", now=clock.now())
        assert get_item(conn, item.id).labelled_by == "eve"
        [row] = accuracy(conn)
        assert [f.label for f in read_feedback(conn)] == ["a"]
    assert (row.labelled, row.correct) == (1, 1)


def test_a_label_that_is_not_the_models_is_refused_and_nothing_changes(
    fleet: Store, clock: VirtualClock
) -> None:
    add_sample(fleet, "r1", at=clock.now())
    ReviewController(fleet).tick(clock.now())
    with fleet.begin() as conn:
        [item] = list_items(conn)
        with pytest.raises(
            InvalidInput, match="unknown label 'kiwi' for model 'digits'; valid labels: a, b, c"
        ):
            label_item(conn, item.id, "kiwi", actor="dana", now=clock.now())
        assert get_item(conn, item.id).status == "open"
        assert read_feedback(conn) == []


def test_a_tenant_sees_and_labels_only_its_own_items(fleet: Store, clock: VirtualClock) -> None:
    mine = add_sample(fleet, "a-1", at=clock.now(), tenant="acme")
    theirs = add_sample(fleet, "b-1", at=clock.now(), tenant="bolt")
    ReviewController(fleet).tick(clock.now())
    assert _ids(fleet, tenant="acme", status="all") == [mine]
    assert _ids(fleet, tenant="bolt") == [theirs]
    with fleet.begin() as conn:
        bolts = next_item(conn, tenant="bolt")
        assert bolts is not None
        with pytest.raises(InvalidInput) as other:
            label_item(conn, bolts.id, "a", actor="acme-admin", now=clock.now(), tenant="acme")
        with pytest.raises(InvalidInput) as missing:
            label_item(conn, 999, "a", actor="acme-admin", now=clock.now(), tenant="acme")
        assert str(other.value) == f"no review item {bolts.id}"
        assert str(missing.value) == "no review item 999"
        with pytest.raises(InvalidInput, match=f"no review item {bolts.id}"):
            get_item(conn, bolts.id, tenant="acme")
        assert read_feedback(conn) == []
        assert get_item(conn, bolts.id).status == "open"


def test_an_unknown_status_is_invalid_input(fleet: Store) -> None:
    with fleet.begin() as conn, pytest.raises(InvalidInput, match="unknown status 'done'"):
        list_items(conn, status="done")  # type: ignore[arg-type]


def test_label_studio_export_has_the_documented_task_shape(
    fleet: Store, clock: VirtualClock
) -> None:
    pixels = [float(i % 17) for i in range(64)]
    add_sample(fleet, "r1", at=clock.now(), predicted="b", confidence=0.42, pixels=pixels)
    ReviewController(fleet).tick(clock.now())
    with fleet.begin() as conn:
        items = list_items(conn)
        tasks = export_label_studio(items, sample_inputs(conn, items))
    [task] = json.loads(json.dumps(tasks))
    assert task == {
        "id": items[0].id,
        "data": {
            "pixels": pixels,
            "tenant": "acme",
            "model": "digits",
            "version": "v1",
            "request_id": "r1",
        },
        "predictions": [
            {
                "model_version": "v1",
                "score": 0.42,
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": ["b"]},
                    }
                ],
            }
        ],
    }


def test_inputs_are_summarised_for_people() -> None:
    lines = summarize_inputs({"pixels": [0.0, 16.0, 2.0], "note": "x" * 100, "n": 3})
    assert lines[0] == "pixels: 3 values in [0, 16], mean 6"
    assert lines[1].startswith("note: 'xxx") and lines[1].endswith("...") and len(lines[1]) < 70
    assert lines[2] == "n: 3"
