"""index.html and the summary.md digest: what they show, the release runner's records, and the page in a real browser."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import report_browser
import report_synth as synth

from bench.report import compare_versions, load_results, main, read_results, views
from bench.report.html_figures import speedup_heatmap, speedup_norm
from bench.report.row_figures import add_figures
from bench.report.speedup import speedup_table

DATA = Path(__file__).parent / "data" / "report"
RESULTS = DATA / "results"
SLOW_CASE = "linear-mlx-compiled-step-cpu-n2000-d20"
MACHINE = {"node": "ci-mac", "system": "Darwin", "machine": "arm64"}


def verdict_record(rows, comparisons, schema_version=1) -> dict:
    """A release-verdicts.json document as the release runner writes it."""
    return {
        "kind": "mlx-sgd-bench-release-verdicts",
        "schema_version": schema_version,
        "created": "2026-02-01T00:00:00+00:00",
        "machine": MACHINE,
        "settings": {"passes": 3},
        "comparisons": comparisons,
        "rows": rows,
    }


def self_test_record(status="unfit", fit=False) -> dict:
    """A self-test.json document as the release runner writes it."""
    return {
        "kind": "mlx-sgd-bench-self-test",
        "schema_version": 1,
        "created": "2026-02-01T01:00:00+00:00",
        "release": "0.32.4",
        "machine": MACHINE,
        "settings": {"passes": 3},
        "status": status,
        "false_regressions": 3,
        "cases": 40,
        "planted": [
            {
                "case_id": "linear-mlx-compiled-step-cpu-n1000-d10",
                "slowdown_pct": 20.0,
                "pct_change": 19.1,
                "verdict": "regression",
                "caught": True,
            }
        ],
        "noise_pct_median": 7.5,
        "min_detectable_pct_median": 18.0,
        "fit_to_gate": fit,
        "summary": "3 false regressions among 40 unchanged cases: too noisy to gate a release",
    }


VERDICT_ROW = {
    "machine": "ci-mac", "case_id": SLOW_CASE, "model": "linear", "backend": "mlx", "control": False,
    "older": "0.30.0", "newer": "0.31.0", "pct_change": 31.0, "ci_low_pct": 24.0, "ci_high_pct": 38.5,
    "p_value": 0.001, "p_value_adjusted": 0.01, "verdict": "regression", "min_detectable_pct": 6.0,
    "passes_needed": 3, "n_older": 3, "n_newer": 3, "method": "paired", "reason": "",
}  # fmt: skip


@pytest.fixture
def two_versions(tmp_path):
    """Three runs each of MLX 0.30.0 and 0.31.0 on one machine, interleaved; SLOW_CASE 30% slower in 0.31.0."""
    folder = tmp_path / "results" / "Darwin-CPython-3.12-64bit"
    for i in range(3):
        for j, version in enumerate(("0.30.0", "0.31.0")):
            grid = synth.grid_benchmarks(seed=10 * j + i, slow=SLOW_CASE, slowdown=1.3 if j else 1.0)
            date = f"2026-01-0{1 + i}T0{j}:00:00+00:00"
            synth.write(folder, f"000{2 * i + j + 1}_run", synth.run(grid, mlx_version=version, date=date))
    return tmp_path / "results"


def _session(two_versions: Path) -> Path:
    """The two-version results plus the release runner's records, as a session folder holds them."""
    old_row = {k: v for k, v in VERDICT_ROW.items() if k not in ("ci_low_pct", "ci_high_pct", "passes_needed")}
    record = verdict_record(
        [VERDICT_ROW, {**old_row, "case_id": "linear-numpy-analytic-eager-cpu-n1000-d10", "backend": "numpy",
                       "control": True, "pct_change": 0.4, "verdict": "same"}],
        [{"older": "0.30.0", "newer": "0.31.0", "status": "inconclusive", "reason": "NumPy controls moved 12%"}],
    )  # fmt: skip
    (two_versions / "release-verdicts.json").write_text(json.dumps(record))
    (two_versions / "self-test.json").write_text(json.dumps(self_test_record()))
    return two_versions


def test_page_is_one_self_contained_file_beside_the_csvs(tmp_path):
    out = tmp_path / "report"
    assert main([str(RESULTS), "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # Nothing fetched from elsewhere: no external script, style, image or font.
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page and "@import" not in page
    assert page.count('src="data:image/png;base64,') == len(list(out.glob("*.png"))) > 0
    # The answer first: the speedup heat map comes before the details and the plots.
    assert (
        page.index('id="answer"') < page.index('id="blog"') < page.index('id="releases"') < page.index('id="details"')
    )
    assert page.index('class="heatmap"') < page.index('id="details"')
    for header in ("steps/s", "median round (ms)", "IQR (% of median)", "speedup (×, &gt;1: faster than NumPy)"):
        assert f">{header}</th>" in page, header
    assert '<tr class="unstable">' in page and "⚠ unstable" in page  # the sample's unstable blog rows
    assert "reference (netlib) BLAS" in page
    for name in ("throughput.csv", "speedup.csv", "versions.csv"):
        assert f'href="{name}"' in page


def test_no_plots_still_draws_the_headline(tmp_path):
    out = tmp_path / "report"
    assert main([str(RESULTS), "--out", str(out), "--no-plots"]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "data:image/png" not in page and 'class="heatmap"' in page


def test_heatmap_cells_say_the_figure_and_mark_the_too_close(two_versions):
    frame = load_results([two_versions])
    speedup = speedup_table(add_figures(frame))
    cells = views.speedup_cells(speedup)
    assert set(cells["mlx_version"]) == {"0.31.0"}  # each machine's newest release
    linear = cells[cells["model"] == "linear"]
    html = speedup_heatmap(linear, speedup_norm(linear["speedup"]))
    row = linear.iloc[0]
    assert f"{row['speedup']:.2g}×" in html and "1,000×10" in html and "2,000×20" in html
    assert html.count('<td class="hm') == len(linear)
    close = linear.assign(faster="neither")
    assert speedup_heatmap(close, speedup_norm(close["speedup"])).count("hm-close") == len(linear)


def test_release_records_are_read_and_shown_self_test_first(two_versions, tmp_path, capsys):
    session = _session(two_versions)
    loaded = read_results([session])
    assert [r["status"] for r in loaded.self_tests] == ["unfit"]
    assert len(loaded.release_verdicts) == 1 and not loaded.skipped
    out = tmp_path / "out"
    assert main([str(session), "--out", str(out), "--no-plots"]) == 0
    assert "skipping" not in capsys.readouterr().err
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.index("Self-test of MLX 0.32.4") < page.index('id="answer"')
    assert 'class="status st-unfit"' in page and "not fit to gate a release" in page
    assert "MLX 0.30.0 → 0.31.0 on ci-mac: inconclusive" in page and "NumPy controls moved 12%" in page
    # The runner's regression with its interval; the control row without interval columns renders too.
    assert 'aria-label="+31.0% (95% CI +24.0% to +38.5%)"' in page
    assert "linear-numpy-analytic-eager-cpu-n1000-d10" in page
    summary = (out / "summary.md").read_text()
    assert summary.index("## Self-test") < summary.index("## Regressions")
    assert "**UNFIT**" in summary and "release runner, MLX 0.30.0 → 0.31.0: **inconclusive**" in summary


@pytest.mark.parametrize(
    "doc, why",
    [
        (verdict_record([], [], schema_version=2), "schema_version 2"),
        ({**self_test_record(), "status": None}, "without its 'status' field"),
        (verdict_record(None, []), "without its 'rows' field"),
    ],
)
def test_unusable_release_records_are_skipped_with_one_line(two_versions, doc, why):
    (two_versions / "record.json").write_text(json.dumps(doc))
    warnings = []
    loaded = read_results([two_versions], warnings.append)
    assert not loaded.release_verdicts and not loaded.self_tests
    assert len(warnings) == 1 and why in warnings[0] and "record.json" in warnings[0]


def test_only_release_records_is_nothing_to_report(tmp_path, capsys):
    (tmp_path / "self-test.json").write_text(json.dumps(self_test_record()))
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: no usable benchmark results")


def test_versions_csv_rows_become_verdict_rows(two_versions):
    versions = compare_versions(load_results([two_versions]))
    rows = views.verdict_rows(versions)
    assert list(rows.columns[:4]) == ["machine", "case_id", "model", "backend"]
    assert {"older", "newer", "pct_change", "verdict", "regression", "n_older", "n_newer"} <= set(rows.columns)
    assert len(rows) == (versions["against"] == "previous").sum()  # adjacent pairs, as the runner reports them
    flagged = rows[views.is_regression(rows)]
    assert set(flagged["case_id"]) == {"linear-mlx-compiled-step-cpu-n2000-d20"} and (flagged["pct_change"] > 25).all()
    # A newer frame that says "regression" in its verdict and has no regression column.
    newer = views.verdict_rows(pd.DataFrame([VERDICT_ROW]))
    assert views.is_regression(newer).tolist() == [True] and "ci_low_pct" in newer


def test_undecided_rows_are_marked(tmp_path):
    # Three rounds a side cannot reach significance: every comparison is undecided.
    first = synth.run(synth.grid_benchmarks(seed=2, rounds=3, models=("linear",)), mlx_version="0.30.0")
    second = synth.relabel(first, "0.31.0", "2026-02-01T00:00:00+00:00")
    folder = tmp_path / "results" / "m"
    synth.write(folder, "a", first)
    synth.write(folder, "b", second)
    out = tmp_path / "out"
    assert main([str(tmp_path / "results"), "--out", str(out), "--no-plots"]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert '<tr class="undecided">' in page and '<span class="badge v-undecided">undecided</span>' in page


def test_digest_fits_a_few_screens_and_points_to_the_rest(tmp_path, monkeypatch):
    # A quick-grid-sized history: 5 sizes, 3 runs of 2 releases.
    folder = tmp_path / "results" / "m"
    monkeypatch.setattr(synth, "SIZES", ((1_000, 10), (1_000, 100), (10_000, 100), (10_000, 1_000), (100_000, 100)))
    for i, version in enumerate(("0.30.0", "0.30.0", "0.30.0", "0.31.0", "0.31.0", "0.31.0")):
        doc = synth.run(synth.grid_benchmarks(seed=i), mlx_version=version, date=f"2026-01-0{i + 1}T00:00:00+00:00")
        synth.write(folder, f"run{i}", doc)
    out = tmp_path / "out"
    assert main([str(tmp_path / "results"), "--out", str(out), "--no-plots"]) == 0
    summary = (out / "summary.md").read_text()
    throughput = (out / "throughput.csv").read_text().splitlines()
    assert len(throughput) == 1 + 6 * 2 * 5 * len(synth.CASES)  # the CSV keeps every row
    assert len(summary.splitlines()) < 120 and len(summary) < 20_000
    for pointer in ("index.html", "throughput.csv", "speedup.csv", "versions.csv"):
        assert f"]({pointer})" in summary
    for section in ("## Regressions", "## MLX against NumPy", "## MLX versions", "## Machines", "## Unstable rows"):
        assert section in summary


@pytest.mark.slow  # starts a browser: about 4 s
@pytest.mark.skipif(report_browser.find_chromium() is None, reason="no chromium on PATH (Debian package: chromium)")
def test_page_in_a_real_browser(two_versions, tmp_path):
    session = _session(two_versions)
    out = tmp_path / "out"
    assert main([str(session), str(RESULTS), "--out", str(out)]) == 0
    found = report_browser.probe(out / "index.html", report_browser.find_chromium())
    assert found["errors"] == []
    assert all(found["sections"].values()), found["sections"]
    # At 1,400 px every table fits the window or scrolls inside its own box: nothing is cut off at the right.
    assert found["cut_off"] == [] and found["page_overflow"] <= 0, (found["cut_off"], found["page_overflow"])
    assert found["figures"] >= 1 and found["heatmaps"] >= 1
    # A header click sorts the throughput table by that column, a second click the other way.
    ascending, descending = found["ascending"], found["descending"]
    assert len(ascending) > 10 and found["before"] != ascending
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)
    assert found["aria_after_one_click"] == "ascending"
    # A drop-down filter keeps only the rows it names, and says how many.
    assert found["filter_shown"] and set(found["filter_shown"]) == {found["filter_value"]}
    assert found["filter_count"].startswith(f"{len(found['filter_shown'])} of ")
