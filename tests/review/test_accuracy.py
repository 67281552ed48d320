"""Accuracy from labels: exact counts, per tenant and version, and never across tenants."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from modelfleet.clock import VirtualClock
from modelfleet.review import Labelled, accuracy, score
from modelfleet.store import Store
from modelfleet.telemetry.feedback import Feedback, Source, write_feedback
from tests.review.conftest import log_prediction

LABELS = st.sampled_from(["a", "b", "c"])
PAIRS = st.lists(st.tuples(LABELS, LABELS), max_size=60)


def _labelled(pairs: list[tuple[str, str]], version: str = "v1") -> list[Labelled]:
    return [Labelled("acme", "digits", version, true, predicted) for true, predicted in pairs]


@given(PAIRS, LABELS, LABELS)
def test_adding_a_label_moves_accuracy_by_exactly_that_label(
    pairs: list[tuple[str, str]], true: str, predicted: str
) -> None:
    before = score(_labelled(pairs))
    [after] = score(_labelled([*pairs, (true, predicted)]))
    labelled, correct = (before[0].labelled, before[0].correct) if before else (0, 0)
    assert after.labelled == labelled + 1
    assert after.correct == correct + (true == predicted)
    assert after.accuracy == after.correct / after.labelled


@given(PAIRS)
def test_classes_and_confusion_add_up_to_the_whole(pairs: list[tuple[str, str]]) -> None:
    rows = score(_labelled(pairs))
    if not pairs:
        assert rows == []
        return
    [row] = rows
    assert sum(c.labelled for c in row.classes) == row.labelled == len(pairs)
    assert sum(c.correct for c in row.classes) == row.correct
    assert sum(row.confusion.values()) == row.labelled
    assert row.correct == sum(n for (t, p), n in row.confusion.items() if t == p)
    for c in row.classes:
        assert c.labelled == sum(1 for t, _ in pairs if t == c.label)


def test_each_version_and_tenant_is_scored_on_its_own() -> None:
    rows = score(
        [
            *_labelled([("a", "a"), ("b", "a")], "v1"),
            *_labelled([("a", "a")], "v2"),
            Labelled("bolt", "digits", "v1", "c", "b"),
        ]
    )
    assert [(r.tenant, r.version, r.labelled, r.correct) for r in rows] == [
        ("acme", "v1", 2, 1),
        ("acme", "v2", 1, 1),
        ("bolt", "v1", 1, 0),
    ]
    assert rows[0].confusion == {("a", "a"): 1, ("b", "a"): 1}
    assert [(c.label, c.accuracy) for c in rows[0].classes] == [("a", 1.0), ("b", 0.0)]


def _label(
    store: Store,
    clock: VirtualClock,
    request_id: str,
    label: str,
    row: int = 0,
    *,
    tenant: str = "acme",
    source: Source = "customer",
) -> None:
    """A true label, as `POST /v1/feedback` or the review queue stores it."""
    with store.begin() as conn:
        write_feedback(
            conn,
            [Feedback(tenant, "digits", request_id, row, label, source, "someone", clock.now())],
        )


def test_three_right_and_one_wrong_is_three_quarters(store: Store, clock: VirtualClock) -> None:
    for i, predicted in enumerate(["a", "a", "b", "c"]):
        log_prediction(store, f"r{i}", [predicted], at=clock.now())
    for i, true in enumerate(["a", "a", "b", "a"]):
        _label(store, clock, f"r{i}", true, source="review" if i == 3 else "customer")
    with store.begin() as conn:
        [row] = accuracy(conn, model="digits")
    assert (row.tenant, row.version, row.labelled, row.correct, row.accuracy) == (
        "acme",
        "v1",
        4,
        3,
        0.75,
    )
    assert [(c.label, c.labelled, c.correct) for c in row.classes] == [("a", 3, 2), ("b", 1, 1)]
    assert row.confusion == {("a", "a"): 2, ("b", "b"): 1, ("a", "c"): 1}


def test_each_row_of_a_request_is_scored_against_its_own_answer(
    store: Store, clock: VirtualClock
) -> None:
    log_prediction(store, "batch", ["a", "b", "c"], at=clock.now())
    _label(store, clock, "batch", "a", 0)
    _label(store, clock, "batch", "c", 1)
    _label(store, clock, "batch", "c", 2)
    _label(store, clock, "batch", "c", 7)  # no such row: nothing to compare with
    with store.begin() as conn:
        [row] = accuracy(conn)
    assert (row.labelled, row.correct) == (3, 2)


def test_a_relabelled_row_counts_once_with_its_new_label(store: Store, clock: VirtualClock) -> None:
    log_prediction(store, "r1", ["a"], at=clock.now())
    _label(store, clock, "r1", "b")
    _label(store, clock, "r1", "a")
    with store.begin() as conn:
        [row] = accuracy(conn)
    assert (row.labelled, row.correct) == (1, 1)


def test_a_label_on_another_tenants_request_id_never_scores_that_tenant(
    store: Store, clock: VirtualClock
) -> None:
    log_prediction(store, "bolt-1", ["a"], at=clock.now(), tenant="bolt")
    _label(store, clock, "bolt-1", "b", tenant="acme")  # acme names bolt's request id
    with store.begin() as conn:
        assert accuracy(conn) == []
        assert accuracy(conn, tenant="bolt") == []
    _label(store, clock, "bolt-1", "a", tenant="bolt")
    with store.begin() as conn:
        [row] = accuracy(conn)
    assert (row.tenant, row.labelled, row.correct) == ("bolt", 1, 1)


def test_labels_wait_for_their_prediction_and_since_limits_the_window(
    store: Store, clock: VirtualClock
) -> None:
    _label(store, clock, "late", "a")  # its worker has not flushed yet
    with store.begin() as conn:
        assert accuracy(conn) == []
    log_prediction(store, "late", ["a"], at=clock.now(), version="v2")
    log_prediction(store, "old", ["b"], at=clock.now() - timedelta(days=3))
    _label(store, clock, "old", "a")
    with store.begin() as conn:
        assert [(r.version, r.labelled) for r in accuracy(conn)] == [("v1", 1), ("v2", 1)]
        since = clock.now() - timedelta(days=1)
        assert [(r.version, r.correct) for r in accuracy(conn, since=since)] == [("v2", 1)]
        assert accuracy(conn, model="other") == []


def test_a_regressors_values_are_not_scored(store: Store, clock: VirtualClock) -> None:
    log_prediction(store, "price", [12.5], at=clock.now())
    _label(store, clock, "price", "12.5")
    with store.begin() as conn:
        assert accuracy(conn) == []
