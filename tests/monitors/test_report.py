"""The monitoring report: one self-contained HTML page, judged as the controller judges, that
charts a tenant's drifted features and, built for one tenant, names no other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from modelfleet.cli import main
from modelfleet.monitors import latest_results
from modelfleet.monitors.controller import MonitorController
from modelfleet.monitors.judge import ColumnDrift, Verdict
from modelfleet.monitors.report import Bars, ReportSection, build_sections, render_report
from modelfleet.rollouts import RolloutController
from tests.monitors.test_monitors import brighter
from tests.rollouts.conftest import MODEL, Fleet, fleet  # noqa: F401  (the fixture)

VOID = {"meta", "br", "hr", "img", "link", "input"}


class Balance(HTMLParser):
    """Every element opened is closed, in order; `problems` says where not."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:]} at {self.getpos()}")
        else:
            self.open.pop()


def balanced(page: str) -> Balance:
    parser = Balance()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.open == []
    return parser


def drift_acme(fleet: Fleet) -> datetime:  # noqa: F811
    """Two minutes of acme-grocers' overexposed frames and bayside-market's clean ones,
    with the monitors profiling and judging; returns the clock's now."""
    fleet.loop.controllers = [RolloutController(fleet.store), MonitorController(fleet.store)]
    acme, bayside = fleet.drill.keys
    clean = fleet.drill.rows
    for _ in range(2):  # 220 rows each: past the monitors' min_rows of 200
        fleet.drill.keys, fleet.drill.rows = [acme], brighter(clean)
        fleet.drill.round(110, timedelta(0))
        fleet.drill.keys, fleet.drill.rows = [bayside], clean
        fleet.drill.round(110, timedelta(minutes=1))
    return fleet.clock.now()


def test_the_report_charts_the_drifted_tenants_worst_feature_as_the_controller_judged_it(
    fleet: Fleet,  # noqa: F811
) -> None:
    now = drift_acme(fleet)
    with fleet.store.begin() as conn:
        sections = build_sections(conn, MODEL, tenant=None, now=now, window=None)
        (judged,) = latest_results(conn, model=MODEL, tenant="acme-grocers")
    page = render_report(MODEL, sections, generated_at=now)

    assert [(s.tenant, s.status("drift")) for s in sections] == [
        ("acme-grocers", "alert"),
        ("bayside-market", "ok"),
    ]
    worst = judged.verdicts["drift"]["details"]["features"][0]
    acme = sections[0]
    assert (acme.features[0].name, acme.features[0].psi) == (worst["name"], worst["psi"])
    assert f"<td>{escape(worst['name'])}</td>" in page and f"{worst['psi']:.3f}" in page
    assert f"<title>{escape(worst['name'])}: reference against current window</title>" in page
    assert 0 < len(acme.charts) <= 12 and not sections[1].charts
    assert acme.classes is not None and "predicted classes" in page

    tags = balanced(page).counts
    assert tags["section"] == 2 and tags["svg"] == len(acme.charts) + 2  # + class charts
    assert "<script" not in page and "<link" not in page and " src=" not in page


def test_a_report_for_one_tenant_names_no_other(fleet: Fleet) -> None:  # noqa: F811
    now = drift_acme(fleet)
    with fleet.store.begin() as conn:
        sections = build_sections(
            conn, MODEL, tenant="bayside-market", now=now, window=timedelta(minutes=10)
        )
    page = render_report(MODEL, sections, generated_at=now)

    assert [s.tenant for s in sections] == ["bayside-market"]
    assert "bayside-market" in page
    assert "acme" not in page.lower()
    balanced(page)


def test_monitor_report_writes_the_page_and_refuses_a_model_without_profile(
    fleet: Fleet,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODELFLEET_DATABASE_URL", fleet.store.url)
    monkeypatch.setenv("COLUMNS", "200")

    def cli(*args: str) -> tuple[int | str | None, str, str]:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        captured = capsys.readouterr()
        return info.value.code, captured.out, captured.err

    to = tmp_path / "report.html"
    code, _, err = cli("monitor", "report", MODEL, "--to", str(to))
    assert code == 2 and "has no reference profile yet" in err and not to.exists()
    code, _, err = cli("monitor", "report", "no-such-model", "--to", str(to))
    assert code == 2 and "model 'no-such-model' not found" in err

    now = drift_acme(fleet)
    at = f"{now:%Y-%m-%dT%H:%M:%S}"
    code, out, _ = cli(
        "monitor", "report", MODEL, "--tenant", "acme-grocers", "--at", at, "--to", str(to)
    )
    assert code == 0
    assert f"wrote {to}" in out and "acme-grocers/v1: drift alert" in out
    page = to.read_text(encoding="utf-8")
    assert "<svg" in page and "bayside" not in page
    balanced(page)

    # One minute holds 110 rows, under min_rows: not judged, but the statistics are shown.
    code, out, _ = cli("monitor", "report", MODEL, "--window", "1m", "--at", at, "--to", str(to))
    assert code == 0 and "acme-grocers/v1: drift insufficient" in out
    assert "Input drift, worst first" in to.read_text(encoding="utf-8")
    code, _, err = cli("monitor", "report", MODEL, "--window", "soon", "--to", str(to))
    assert code == 2 and "duration" in err


def test_every_string_on_the_page_is_escaped() -> None:
    hostile = '<b onload="x">&'
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    drift = ColumnDrift(hostile, 0.5, 0.3, 0.25, None, {"psi": 0.25}, drifted=True, warning=True)
    section = ReportSection(
        tenant=hostile,
        model=MODEL,
        version="v1",
        start=start,
        end=start + timedelta(hours=1),
        rows=300,
        requests=300,
        verdicts=(Verdict("drift", "alert", f"1 of 1 features drifted: {hostile}"),),
        features=(drift,),
        charts=(Bars(hostile, (hostile, "b"), (0.5, 0.5), (0.9, 0.1)),),
        output_quality={"mean_confidence": 0.8},
        classes=Bars("predicted classes", (hostile,), (1.0,), (1.0,)),
    )
    no_profile = ReportSection(hostile, MODEL, "v2", start, start, 5, 5, note=hostile)

    page = render_report(hostile, [section, no_profile], generated_at=start)

    assert hostile not in page and "<b " not in page
    assert escape(hostile) in page
    assert balanced(page).counts["svg"] == 2
