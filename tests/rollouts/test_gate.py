"""The quality gate, on the retail-vision example's real versions and on small python models."""

from __future__ import annotations

import hashlib
import json
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from modelfleet.config import Model, load_fleet
from modelfleet.config.schema import Feature, GateSpec
from modelfleet.rollouts.gate import (
    NO_EVALUATION_DATA,
    Check,
    GateReport,
    evaluate_gate,
    p95_ms,
    recall,
    schema_differences,
)
from modelfleet.runtime import VersionSpec

# What train.py promises of v3: within 2.5 points of v1 overall, so an accuracy gate this loose
# lets it through, and far worse on two products.
RETAIL_GATE = GateSpec(min_accuracy=0.9, max_accuracy_drop=0.025, max_recall_drop=0.05)
SWEETS = (3, 8)  # donut, icecream: the products v3 mistakes


class FakeTimer:
    """Seconds that pass only when read (`tick` each time) or slept through: exact timings."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now = 0.0
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def evaluation(trained_example: Path) -> str:
    return str(trained_example / "artifacts" / "evaluation.npz")


@pytest.fixture(scope="session")
def versions(trained_example: Path) -> dict[str, VersionSpec]:
    """v1-v3 of fleet.yaml as the registry hands them to the gate: absolute paths, sha256."""
    FLEET = trained_example / "fleet.yaml"  # noqa: N806
    fleet = load_fleet([FLEET])
    model = next(m for m in fleet.models if m.name == "product-recognizer")
    assert isinstance(model, Model) and model.spec.output.labels is not None
    specs = {}
    for v in fleet.versions:
        if v.name not in ("v1", "v2", "v3"):
            continue
        artifact = FLEET.parent / v.spec.artifact
        specs[v.name] = VersionSpec(
            model=v.spec.model,
            version=v.name,
            format=v.spec.format,
            artifact=str(artifact),
            sha256=hashlib.sha256(artifact.read_bytes()).hexdigest(),
            features=tuple(model.spec.input.features),
            labels=tuple(model.spec.output.labels),
        )
    return specs


@pytest.fixture(scope="module")
def v2_report(versions: dict[str, VersionSpec], evaluation: str) -> GateReport:
    return evaluate_gate(
        versions["v2"], versions["v1"], evaluation, RETAIL_GATE, timer=FakeTimer(0.001)
    )


@pytest.fixture(scope="module")
def v3_report(versions: dict[str, VersionSpec], evaluation: str) -> GateReport:
    return evaluate_gate(
        versions["v3"], versions["v1"], evaluation, RETAIL_GATE, timer=FakeTimer(0.001)
    )


def python_version(
    tmp_path: Path,
    source: str,
    like: VersionSpec,
    features: tuple[Feature, ...] | None = None,
) -> VersionSpec:
    """A `python` candidate of `like`'s model, from `source` defining `predict(batch)`."""
    path = tmp_path / "candidate.py"
    path.write_text(textwrap.dedent(source))
    return VersionSpec(
        model=like.model,
        version="candidate",
        format="python",
        artifact=f"{path}:predict",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        features=like.features if features is None else features,
        labels=like.labels,
    )


def by_name(report: GateReport) -> dict[str, Check]:
    return {c.name: c for c in report.checks}


def failed(report: GateReport) -> list[str]:
    return [c.name for c in report.failures]


UNIFORM = """
    import numpy as np

    def predict(batch):
        n = len(next(iter(batch.values())))
        return np.full((n, 10), 0.1)
"""


# -- the example's versions ----------------------------------------------------------------------


def test_v2_against_stable_v1_passes_every_check(v2_report: GateReport) -> None:
    assert v2_report.passed, v2_report.summary()
    assert v2_report.candidate == "product-recognizer/v2"
    assert v2_report.stable == "product-recognizer/v1"
    assert v2_report.summary() == "product-recognizer/v2 passed all 17 checks"


def test_the_report_lists_every_check_in_order(v2_report: GateReport) -> None:
    labels = ["apple", "banana", "carrot", "donut", "egg", "fig", "grape", "honey", "icecream"]
    assert [c.name for c in v2_report.checks] == [
        "load",
        "load_time",
        "schema",
        "evaluation_data",
        "accuracy",
        "accuracy_vs_stable",
        *(f"recall[{label}]" for label in [*labels, "juice"]),
        "latency",
    ]


def test_load_time_and_latency_are_measured_with_the_given_timer(v2_report: GateReport) -> None:
    checks = by_name(v2_report)
    # The timer advances 1 ms per read: one read before and one after each timed call.
    assert checks["load_time"].value == pytest.approx(0.001)
    assert checks["latency"].value == pytest.approx(1.0)
    assert checks["latency"].threshold == 100.0


def test_v3_fails_exactly_its_two_weak_products_though_its_accuracy_passes(
    v3_report: GateReport,
) -> None:
    assert failed(v3_report) == ["recall[donut]", "recall[icecream]"]
    checks = by_name(v3_report)
    assert checks["accuracy"].passed and checks["accuracy_vs_stable"].passed
    assert len(v3_report.checks) == 17  # a failing gate still reports every check
    donut, icecream = checks["recall[donut]"], checks["recall[icecream]"]
    assert donut.value == pytest.approx(27 / 37) and donut.threshold == pytest.approx(
        36 / 37 - 0.05
    )
    assert icecream.value == pytest.approx(22 / 35)
    assert icecream.threshold == pytest.approx(31 / 35 - 0.05)
    summary = v3_report.summary()
    assert summary.startswith("product-recognizer/v3 failed 2 of 17 checks: recall[donut]")
    assert "recall[icecream]" in summary and "\n" not in summary


def test_the_default_gate_also_refuses_v3_on_accuracy(
    versions: dict[str, VersionSpec], evaluation: str
) -> None:
    report = evaluate_gate(
        versions["v3"], versions["v1"], evaluation, GateSpec(), timer=FakeTimer()
    )
    assert failed(report) == ["accuracy_vs_stable", "recall[donut]", "recall[icecream]"]


def test_without_a_stable_version_only_the_candidates_own_numbers_are_judged(
    versions: dict[str, VersionSpec], evaluation: str
) -> None:
    report = evaluate_gate(versions["v3"], None, evaluation, RETAIL_GATE, timer=FakeTimer())
    checks = by_name(report)
    assert report.passed and report.stable is None
    assert "accuracy_vs_stable" not in checks
    assert checks["recall[donut]"].value == pytest.approx(27 / 37)
    assert checks["recall[donut]"].threshold is None


def test_the_report_is_json_ready(v3_report: GateReport) -> None:
    data = json.loads(json.dumps(v3_report.to_dict()))
    assert data["passed"] is False and data["stable"] == "product-recognizer/v1"
    assert data["checks"][0] == {
        "name": "load",
        "status": "pass",
        "value": None,
        "threshold": None,
        "detail": v3_report.checks[0].detail,
    }
    assert len(data["checks"]) == 17


# -- candidates that fail before any statistics ---------------------------------------------------


def test_a_candidate_that_does_not_load_fails_load_and_every_check_that_needs_it(
    versions: dict[str, VersionSpec], evaluation: str
) -> None:
    v2 = versions["v2"]
    tampered = VersionSpec(v2.model, "v2", v2.format, v2.artifact, "0" * 64, v2.features, v2.labels)
    report = evaluate_gate(tampered, versions["v1"], evaluation, RETAIL_GATE, timer=FakeTimer())
    checks = by_name(report)
    assert "sha256" in checks["load"].detail and not checks["load"].passed
    needing_the_model = ["load_time", "accuracy", "accuracy_vs_stable", "recall[donut]", "latency"]
    for name in needing_the_model:
        assert checks[name].detail == "not run: the candidate did not load", name
    assert checks["schema"].passed and checks["evaluation_data"].passed


def test_a_candidate_with_another_input_shape_fails_schema(
    tmp_path: Path, versions: dict[str, VersionSpec], evaluation: str
) -> None:
    square = (Feature(name="pixels", dtype="float32", shape=[8, 8]),)
    candidate = python_version(tmp_path, UNIFORM, versions["v1"], features=square)
    report = evaluate_gate(candidate, versions["v1"], evaluation, RETAIL_GATE, timer=FakeTimer())
    schema = by_name(report)["schema"]
    assert not schema.passed
    assert schema.detail == "input pixels is float32[8, 8], stable has float32[64]"
    # The evaluation rows are 64 pixels too: they cannot feed this candidate either.
    assert "expected shape" in by_name(report)["evaluation_data"].detail
    assert by_name(report)["latency"].passed  # timed on zeros of the candidate's own shape


def test_schema_differences_name_missing_new_and_relabelled_parts(
    versions: dict[str, VersionSpec],
) -> None:
    v1 = versions["v1"]
    other = VersionSpec(
        v1.model,
        "other",
        "sklearn",
        v1.artifact,
        v1.sha256,
        (Feature(name="store", dtype="string"),),
        ("apple", "banana"),
    )
    assert schema_differences(other, v1) == [
        "input pixels is missing",
        "input store is new",
        f"labels are ['apple', 'banana'], stable has {list(v1.labels or [])}",
    ]
    assert schema_differences(v1, versions["v2"]) == []


def test_a_slow_candidate_fails_latency(
    tmp_path: Path,
    versions: dict[str, VersionSpec],
    monkeypatch: pytest.MonkeyPatch,
    evaluation: str,
) -> None:
    timer = FakeTimer()
    monkeypatch.setattr(time, "sleep", timer.sleep)  # the model's sleep moves the fake time only
    slow = """
        import time
        import numpy as np

        def predict(batch):
            time.sleep(0.25)
            return np.full((len(batch["pixels"]), 10), 0.1)
    """
    candidate = python_version(tmp_path, slow, versions["v1"])
    report = evaluate_gate(candidate, None, evaluation, GateSpec(), timer=timer)
    assert failed(report) == ["latency"]
    latency = by_name(report)["latency"]
    assert latency.value == pytest.approx(250.0) and latency.threshold == 100.0


def test_a_candidate_slow_to_load_fails_load_time(
    tmp_path: Path,
    versions: dict[str, VersionSpec],
    monkeypatch: pytest.MonkeyPatch,
    evaluation: str,
) -> None:
    timer = FakeTimer()
    monkeypatch.setattr(time, "sleep", timer.sleep)
    warming = "import time\ntime.sleep(45)\n" + textwrap.dedent(UNIFORM)
    candidate = python_version(tmp_path, warming, versions["v1"])
    report = evaluate_gate(candidate, None, evaluation, GateSpec(), timer=timer)
    assert failed(report) == ["load_time"]
    assert by_name(report)["load_time"].value == pytest.approx(45.0)


def test_a_candidate_whose_predict_raises_fails_accuracy_with_the_message(
    tmp_path: Path, versions: dict[str, VersionSpec], evaluation: str
) -> None:
    broken = """
        def predict(batch):
            raise RuntimeError("weights file is empty")
    """
    candidate = python_version(tmp_path, broken, versions["v1"])
    report = evaluate_gate(candidate, versions["v1"], evaluation, RETAIL_GATE, timer=FakeTimer())
    checks = by_name(report)
    assert not checks["accuracy"].passed
    assert "weights file is empty" in checks["accuracy"].detail
    assert checks["recall[apple]"].detail.startswith("not run: the candidate failed")
    assert "weights file is empty" in checks["latency"].detail
    assert checks["load"].passed and checks["schema"].passed


def test_a_candidate_giving_malformed_outputs_fails_accuracy(
    tmp_path: Path, versions: dict[str, VersionSpec], evaluation: str
) -> None:
    wrong = """
        import numpy as np

        def predict(batch):
            return np.full((len(batch["pixels"]), 3), 1 / 3)
    """
    candidate = python_version(tmp_path, wrong, versions["v1"])
    report = evaluate_gate(candidate, versions["v1"], evaluation, RETAIL_GATE, timer=FakeTimer())
    assert "3 class probabilities but 10 labels" in by_name(report)["accuracy"].detail


# -- evaluation data -----------------------------------------------------------------------------


def test_missing_evaluation_data_fails_with_what_to_declare(
    versions: dict[str, VersionSpec], evaluation: str
) -> None:
    report = evaluate_gate(versions["v2"], versions["v1"], None, RETAIL_GATE, timer=FakeTimer())
    checks = by_name(report)
    assert checks["evaluation_data"].detail == NO_EVALUATION_DATA
    assert NO_EVALUATION_DATA == "no evaluation data: declare evaluation_data on the ModelVersion"
    for name in ("accuracy", "accuracy_vs_stable", "recall"):
        assert not checks[name].passed
        assert checks[name].detail.startswith("not run:"), name
    assert checks["latency"].passed  # on zeros


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"label": np.zeros(3, np.int64)}, "no array named pixels"),
        ({"pixels": np.zeros((3, 64), np.float32)}, "no array named label"),
        (
            {"pixels": np.zeros((3, 64), np.float32), "label": np.zeros(2, np.int64)},
            "label must be 3 class indices",
        ),
        (
            {"pixels": np.zeros((3, 64), np.float64), "label": np.zeros(3, np.int64)},
            "expected float32, got float64",
        ),
    ],
)
def test_unusable_evaluation_data_fails_saying_why(
    tmp_path: Path,
    versions: dict[str, VersionSpec],
    arrays: dict[str, np.ndarray],
    expected: str,
) -> None:
    path = tmp_path / "evaluation.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    report = evaluate_gate(versions["v2"], None, str(path), RETAIL_GATE, timer=FakeTimer())
    assert expected in by_name(report)["evaluation_data"].detail


def test_an_unreadable_evaluation_file_fails_without_raising(
    tmp_path: Path, versions: dict[str, VersionSpec]
) -> None:
    path = tmp_path / "evaluation.npz"
    path.write_text("not an archive")
    report = evaluate_gate(versions["v2"], None, str(path), RETAIL_GATE, timer=FakeTimer())
    assert by_name(report)["evaluation_data"].detail.startswith(f"cannot read {path}")


# -- segments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sweets", "staples"), [("sweets", "staples"), (1, 0)])
def test_segments_are_each_held_to_the_stable_versions_accuracy(
    tmp_path: Path,
    versions: dict[str, VersionSpec],
    sweets: str | int,
    staples: str | int,
    evaluation: str,
) -> None:
    with np.load(evaluation) as data:
        pixels, label = data["pixels"], data["label"]
    aisle = np.where(np.isin(label, SWEETS), sweets, staples)
    path = tmp_path / "evaluation.npz"
    np.savez(path, pixels=pixels, label=label, aisle=aisle)
    spec = RETAIL_GATE.model_copy(update={"segment_field": "aisle"})
    report = evaluate_gate(versions["v3"], versions["v1"], str(path), spec, timer=FakeTimer())
    assert failed(report) == ["recall[donut]", "recall[icecream]", f"segment[{sweets}]"]
    checks = by_name(report)
    assert checks[f"segment[{staples}]"].passed
    assert checks[f"segment[{sweets}]"].value == pytest.approx((27 + 22) / 72)
    assert checks[f"segment[{sweets}]"].threshold == pytest.approx((36 + 31) / 72 - 0.05)


def test_a_declared_segment_field_without_its_array_fails(
    versions: dict[str, VersionSpec], evaluation: str
) -> None:
    spec = RETAIL_GATE.model_copy(update={"segment_field": "aisle"})
    report = evaluate_gate(versions["v2"], versions["v1"], evaluation, spec, timer=FakeTimer())
    assert failed(report) == ["segments"]
    assert "no array 'aisle'" in by_name(report)["segments"].detail


# -- the pure parts ------------------------------------------------------------------------------


def test_p95_is_the_nearest_rank_latency_in_milliseconds() -> None:
    durations = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    assert p95_ms(durations) == pytest.approx(95.0)
    assert p95_ms([0.002]) == pytest.approx(2.0)


def test_recall_is_the_share_of_a_class_predicted_as_itself() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 1, 0, 0, 1, 0])
    assert recall(predicted, truth, 0) == 0.75
    assert recall(predicted, truth, 1) == 0.5


def test_a_report_passes_only_when_every_check_does() -> None:
    ok = Check("load", "pass", None, None, "")
    bad = Check("accuracy", "fail", 0.5, 0.9, "")
    assert GateReport("m/v2", None, (ok,)).passed
    report = GateReport("m/v2", "m/v1", (ok, bad))
    assert not report.passed and report.failures == (bad,)
    assert report.summary() == "m/v2 failed 1 of 2 checks: accuracy (0.500, threshold 0.900)"
