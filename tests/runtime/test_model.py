"""`Outputs`: one shape for every format, split into requests' rows and joined back."""

from __future__ import annotations

import numpy as np
import pytest

from modelfleet.errors import PredictionError
from modelfleet.runtime import Outputs


def probabilities(rows: int) -> Outputs:
    p = np.random.default_rng(rows).dirichlet(np.ones(4), size=rows)
    return Outputs.from_probabilities(p, rows, ["a", "b", "c", "d"])


def test_probabilities_give_argmax_predictions_and_max_confidences() -> None:
    out = Outputs.from_probabilities(np.array([[0.1, 0.9], [0.7, 0.3]]), 2, ["no", "yes"])
    np.testing.assert_array_equal(out.predictions, [1, 0])
    np.testing.assert_array_equal(out.confidences, [0.9, 0.7])
    assert out.predictions.dtype == np.int64 and len(out) == 2


def test_rows_split_and_concat_joins_back_to_the_same_outputs() -> None:
    whole = probabilities(10)
    parts = [whole.rows(0, 3), whole.rows(3, 4), whole.rows(4, 10)]
    joined = Outputs.concat(parts)

    assert [len(p) for p in parts] == [3, 1, 6]
    for field in ("predictions", "confidences", "probabilities"):
        np.testing.assert_array_equal(getattr(joined, field), getattr(whole, field))


def test_regression_outputs_concat_without_probabilities() -> None:
    parts = [Outputs.from_predictions(np.array([1.5, 2.5]), 2, None)] * 2
    joined = Outputs.concat(parts)
    np.testing.assert_array_equal(joined.predictions, [1.5, 2.5, 1.5, 2.5])
    assert joined.probabilities is None and joined.confidences is None


def test_outputs_with_and_without_probabilities_do_not_concat() -> None:
    with pytest.raises(ValueError, match="with and without probabilities"):
        Outputs.concat([probabilities(2), Outputs.from_predictions(np.array([1, 2]), 2, None)])


@pytest.mark.parametrize(
    ("raw", "labels", "reason"),
    [
        (np.array([[0.5, 0.5]]), ["a", "b"], r"expected \(2, k\)"),
        (np.array([[1, 0], [0, 1]]), ["a", "b"], r"float probabilities, got int64"),
        (np.full((2, 3), 1 / 3), ["a", "b"], "3 class probabilities but 2 labels"),
    ],
)
def test_malformed_probabilities_are_a_prediction_error(
    raw: np.ndarray, labels: list[str], reason: str
) -> None:
    with pytest.raises(PredictionError, match=reason):
        Outputs.from_probabilities(raw, 2, labels)


@pytest.mark.parametrize(
    ("raw", "labels", "reason"),
    [
        (np.array([1.0, 2.0, 3.0]), None, "expected 2 predictions"),
        (np.array(["a", "b"]), None, "must be numbers"),
        (np.array([0.0, 1.0]), ["a", "b"], "must predict class indices"),
        (np.array([0, 2]), ["a", "b"], r"must lie in \[0, 2\)"),
    ],
)
def test_malformed_predictions_are_a_prediction_error(
    raw: np.ndarray, labels: list[str] | None, reason: str
) -> None:
    with pytest.raises(PredictionError, match=reason):
        Outputs.from_predictions(raw, 2, labels)
