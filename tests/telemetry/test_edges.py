"""Feature columns for the gateway's histograms, and their edges from reference data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelfleet.config.schema import Feature
from modelfleet.telemetry.edges import column_names, feature_columns, reference_edges

FEATURES = [
    Feature(name="age", dtype="int64"),
    Feature(name="image", dtype="float32", shape=[2, 2]),
    Feature(name="city", dtype="string"),
]


def test_every_numeric_element_is_a_column_and_strings_are_left_out() -> None:
    assert column_names(FEATURES) == ["age", "image[0]", "image[1]", "image[2]", "image[3]"]
    batch = {
        "age": np.array([30, 40]),
        "image": np.arange(8, dtype=np.float32).reshape(2, 2, 2),
        "city": np.array(["a", "b"], dtype=object),
    }
    columns = feature_columns(batch, FEATURES)
    assert list(columns) == column_names(FEATURES)
    assert columns["age"].tolist() == [30.0, 40.0]
    assert columns["image[2]"].tolist() == [2.0, 6.0]


def test_reference_edges_are_deciles_per_column_framed_by_the_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "ref.npz"
    np.savez(path, age=rng.integers(0, 100, 1000), image=rng.normal(size=(1000, 2, 2)))
    edges = reference_edges(path, FEATURES)
    assert list(edges) == column_names(FEATURES)
    assert all(len(e) == 11 for e in edges.values())
    image0 = np.load(path)["image"].reshape(1000, -1)[:, 0]
    np.testing.assert_allclose(edges["image[0]"][1:-1], np.quantile(image0, np.arange(1, 10) / 10))
    assert edges["image[0]"][0] == image0.min()
    assert edges["image[0]"][-1] == np.nextafter(image0.max(), np.inf)


def test_only_values_outside_the_reference_range_fall_in_the_outer_bins() -> None:
    from modelfleet.stats import Histogram
    from modelfleet.telemetry.edges import range_edges

    reference = np.array([0.0, 0.0, 3.0, 16.0, 16.0])
    histogram = Histogram(range_edges(reference))
    histogram.add_many([-0.5, 0.0, 16.0, 16.5, 8.0])
    counts = histogram.counts
    assert counts[0] == 1 and counts[-1] == 1 and sum(counts[1:-1]) == 3
    constant = Histogram(range_edges(np.zeros(10)))
    constant.add_many([0.0, 0.0, 1.0])
    assert constant.counts == (0, 2, 1)


def test_a_feature_missing_from_the_reference_gets_no_histogram(tmp_path: Path) -> None:
    path = tmp_path / "ref.npz"
    np.savez(path, age=np.arange(100))
    assert list(reference_edges(path, FEATURES)) == ["age"]
