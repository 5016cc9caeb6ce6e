"""The release history (`python -m bench.versions --history`): releases from the index, all interleaved, change points.

Workers are the fakes of test_versions_paired (synthetic times with a known
effect per release), so these tests know where the truth is.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
from test_versions_paired import MACHINE, World, fake_cases, fake_ensure

from bench import versions
from bench.cases.grid import HISTORY_CASES, grid_case_entries
from bench.report.html_history import history_section, history_svg
from bench.report.load import read_results
from bench.report.markdown import section_history
from bench.report.records import record_kind
from bench.versions import compare, dispatch, history, index
from bench.versions.modes import mode_settings

PUBLISHED = ["0.2.0", "0.26.3", "0.26.5", "0.27.1", "0.28.0rc1", "0.28.0", "0.29.0", "0.29.1", "0.30.0"]
BACKEND = ["0.26.5", "0.27.1", "0.28.0", "0.29.0", "0.29.1", "0.30.0"]
STEP_CASE = "linear-mlx-v3-step-cpu-n1000-d10"


def parse(tmp_path, *argv):
    return versions.parse_args([*argv, "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")])


def run(tmp_path, world, *argv, available=PUBLISHED, backend=BACKEND):
    args = parse(tmp_path, "--history", *argv, "--cpus", "none")
    status = history.run_history(
        mode_settings(args),
        versions.EnvCache(tmp_path / "c"),
        versions.PinSet(()),
        world.start,
        dispatch.paired_settings(args),
        fake_ensure,
        available=available,
        backend=backend,
    )
    document = json.loads((tmp_path / "r" / history.HISTORY_JSON).read_text())
    assert record_kind(document) == (history.HISTORY_KIND, None)  # the report reads what the runner writes
    return status, document


def test_the_range_is_the_final_releases_that_install_here():
    releases, left_out = index.releases_in_range(PUBLISHED, BACKEND, None, None, "mlx-cpu")
    assert releases == ["0.26.5", "0.27.1", "0.28.0", "0.29.0", "0.29.1", "0.30.0"]  # no rc, no 0.2.0, no 0.26.3
    assert set(left_out) == {"0.2.0", "0.26.3"} and "mlx-cpu" in left_out["0.26.3"]
    assert index.releases_in_range(PUBLISHED, BACKEND, "0.27.1", "0.29.0")[0] == ["0.27.1", "0.28.0", "0.29.0"]
    assert index.releases_in_range(PUBLISHED, None, "0.26.3", "0.27.1") == (["0.26.3", "0.26.5", "0.27.1"], {})


def test_history_arguments(tmp_path):
    args = parse(tmp_path, "--history")
    assert args.history and args.sizes == "history" and args.releases == []
    assert parse(tmp_path, "--history", "0.29.0", "--sizes", "quick").sizes == "quick"
    for bad in (["--history", "--mode", "runs"], ["--history", "--self-test", "0.30.0"]):
        with pytest.raises(SystemExit):
            parse(tmp_path, *bad)
    explicit = mode_settings(parse(tmp_path, "--history", "0.26.5", "0.28.0", "0.30.0"))
    assert history.plan_releases(explicit, PUBLISHED, BACKEND) == (["0.26.5", "0.28.0", "0.30.0"], {})
    ranged = mode_settings(parse(tmp_path, "--history", "0.27.1", "0.29.1"))
    assert history.plan_releases(ranged, PUBLISHED, BACKEND)[0] == ["0.27.1", "0.28.0", "0.29.0", "0.29.1"]


def test_the_history_grid_is_the_documented_cases_in_groups():
    found, skipped = grid_case_entries("history", None, ("mlx", "numpy"))
    ids = [entry["case_id"] for entry in found]
    assert ids == list(HISTORY_CASES) and not skipped
    # A worker serves one (backend, model, size) group at a time: a group must not come back later.
    groups = [
        (e["case"]["backend"], e["case"]["model"], e["size"]["n_examples"], e["size"]["n_features"]) for e in found
    ]
    seen = []
    for group in groups:
        if not seen or seen[-1] != group:
            assert group not in seen, f"group {group} split"
            seen.append(group)
    assert any("-b32-" in i for i in ids) and any("-b256-" in i for i in ids)
    assert {b for i in ids for b in ("step", "round", "sync") if f"-{b}-" in i} == {"step", "round", "sync"}
    assert any(i.startswith("mlp-mlx") for i in ids) and any(i.startswith("mlp-numpy") for i in ids)


def test_a_step_in_one_release_is_its_one_change_point_and_stays_against_the_oldest(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    slow_from = ["0.29.0", "0.29.1", "0.30.0"]
    world = World(cases=fake_cases(12, 4), effects={r: {STEP_CASE: 0.35} for r in slow_from})
    status, document = run(tmp_path, world)
    assert status == versions.EXIT_OK  # the range's unavailable releases are left out, not failures
    assert document["kind"] == history.HISTORY_KIND and document["releases"][0] == "0.26.5"
    assert set(document["not_measured"]) == {"0.2.0", "0.26.3"}
    points = document["change_points"]
    assert [(p["case_id"], p["older"], p["newer"], p["verdict"]) for p in points] == [
        (STEP_CASE, "0.28.0", "0.29.0", "regression")
    ]
    assert points[0]["ci_low_pct"] < 35 < points[0]["ci_high_pct"]
    rows = {(r["case_id"], r["release"]): r for r in document["rows"]}
    assert rows[STEP_CASE, "0.26.5"]["verdict_vs_oldest"] == "baseline"
    assert rows[STEP_CASE, "0.30.0"]["verdict_vs_oldest"] == "regression"
    assert (
        rows[STEP_CASE, "0.30.0"]["ci_low_pct"]
        < rows[STEP_CASE, "0.30.0"]["pct_vs_oldest"]
        < rows[STEP_CASE, "0.30.0"]["ci_high_pct"]
    )
    assert rows[STEP_CASE, "0.30.0"]["change_verdict"] != "regression"  # no second step
    for key, row in rows.items():
        assert row["steps_per_s_ci_low"] <= row["steps_per_s"] <= row["steps_per_s_ci_high"], key
    # Every release timed in every block: all releases interleaved, not pairwise.
    sessions = json.loads((tmp_path / "r" / "paired-measurements.json").read_text())["cases"][STEP_CASE]["sessions"]
    assert all(sorted(order) == sorted(document["releases"]) for s in sessions for order in s["orders"])
    with open(tmp_path / "r" / history.HISTORY_CSV) as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(world.cases) * len(document["releases"]) and table[0]["release"] == "0.26.5"
    out = capsys.readouterr().out
    assert "0.28.0 -> 0.29.0" in out and "left out" in out
    assert document["settings"]["alpha_per_pair"] == pytest.approx(0.01 / 5)


def test_an_a_a_history_has_no_change_point(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    status, document = run(tmp_path, World(cases=fake_cases(12, 4), seed=3))
    assert document["change_points"] == [] and status == versions.EXIT_OK


def test_a_release_that_does_not_install_is_listed_and_the_run_is_incomplete(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    status, document = run(tmp_path, World(cases=fake_cases(12, 4)), "0.29.0", "0.99.0", backend=None,
                           available=["0.29.0", "0.30.0", "0.99.0"])  # fmt: skip
    assert status == versions.EXIT_INCOMPLETE
    assert document["releases"] == ["0.29.0", "0.30.0"] and "0.99.0" in document["not_measured"]


def test_too_few_releases_is_a_usage_error(tmp_path, capsys):
    args = mode_settings(parse(tmp_path, "--history", "0.30.0", "--cpus", "none"))
    status = history.run_history(args, None, None, None, None, None, available=PUBLISHED, backend=BACKEND)
    assert status == versions.EXIT_USAGE and "at least two releases" in capsys.readouterr().out


def test_the_report_shows_the_history_and_lists_its_change_points(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    world = World(cases=fake_cases(12, 4), effects={r: {STEP_CASE: 0.35} for r in ("0.29.0", "0.29.1", "0.30.0")})
    run(tmp_path, world)
    loaded = read_results([tmp_path / "r"], warn=lambda line: None)
    assert len(loaded.histories) == 1
    page = history_section(loaded.histories, 0.10)
    assert page.count('<svg class="history"') == len(world.cases)
    assert "0.28.0→0.29.0 +" in page and 'id="history"' in page
    digest = section_history(loaded.histories)
    assert f"{STEP_CASE}: 0.28.0 → 0.29.0" in digest and "**regression**" in digest


def test_a_chart_marks_its_change_points_and_survives_missing_figures():
    points = [
        {"release": "0.1", "pct": 0.0, "low": 0.0, "high": 0.0},
        {"release": "0.2", "pct": None, "low": None, "high": None},
        {"release": "0.3", "pct": 30.0, "low": 25.0, "high": 35.0},
    ]
    svg = history_svg(points, {"0.3": "regression"}, 10)
    assert svg.count("<circle") == 2 and "#D55E00" in svg and "not measured" not in svg.split("<circle")[0]
    assert "+30.0% against 0.1 (95% interval +25.0% to +35.0%); regression" in svg


def test_an_older_or_foreign_history_file_is_skipped_with_its_reason(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps({"kind": history.HISTORY_KIND, "schema_version": 2, "rows": []}))
    notes = []
    loaded = read_results([tmp_path], warn=notes.append)
    assert loaded.histories == [] and "schema_version 2" in notes[0]


def test_published_index_lists_are_read_from_pip_output(monkeypatch):
    class Done:
        stdout = "mlx (0.32.4)\nAvailable versions: 0.32.4, 0.32.3rc1, 0.26.5\n"

    monkeypatch.setattr(index.subprocess, "run", lambda *a, **k: Done())
    assert index.published_releases("mlx") == ["0.32.4", "0.32.3rc1", "0.26.5"]
    assert index.final_releases(index.published_releases("mlx")) == ["0.26.5", "0.32.4"]


SIX = ["0.26.5", "0.27.1", "0.28.0", "0.29.0", "0.29.1", "0.30.0"]


def test_a_13_percent_step_that_adjacent_pairs_leave_undecided_is_a_change_point(tmp_path, monkeypatch, capsys):
    # Six releases, 4 sessions, about 3% noise per session: the pair test at alpha / 5 cannot call +13%,
    # the segmentation with the noise pooled over the table names it, with its interval.
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    world = World(cases=fake_cases(12, 4), effects={r: {STEP_CASE: 0.13} for r in SIX[3:]}, process_sd=0.03, seed=4)
    status, document = run(tmp_path, world)
    points = document["change_points"]
    assert [(p["case_id"], p["older"], p["newer"], p["verdict"], p["status"]) for p in points] == [
        (STEP_CASE, "0.28.0", "0.29.0", "regression", "ok")
    ]
    assert points[0]["ci_low_pct"] < 13 < points[0]["ci_high_pct"] and points[0]["t"] > 4
    rows = {(r["case_id"], r["release"]): r for r in document["rows"]}
    assert rows[STEP_CASE, "0.29.0"]["step_verdict"] == "regression"
    assert rows[STEP_CASE, "0.29.0"]["change_verdict"] != "regression"  # the pair test alone misses it
    assert document["machine_changes"] == [] and document["detector"]["families"]["mlx"]["cases"] == 12
    out = capsys.readouterr().out
    assert "NumPy controls: no step" in out and "0.28.0 -> 0.29.0" in out
    with open(tmp_path / "r" / history.HISTORY_CSV) as handle:
        table = {(r["case_id"], r["release"]): r for r in csv.DictReader(handle)}
    assert (
        table[STEP_CASE, "0.29.0"]["step_verdict"] == "regression"
        and float(table[STEP_CASE, "0.29.0"]["noise_pct"]) > 0
    )


def test_a_control_that_steps_is_a_machine_change_and_voids_that_release(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    control = "linear-numpy-v0-eager-cpu-n1000-d10"
    effects = {r: {STEP_CASE: 0.35, control: 0.30} for r in SIX[3:]}
    world = World(cases=fake_cases(12, 4), effects=effects)
    status, document = run(tmp_path, world, "--fail-on-regression")
    assert [(m["case_id"], m["newer"]) for m in document["machine_changes"]] == [(control, "0.29.0")]
    (point,) = document["change_points"]
    assert point["status"] == "inconclusive" and control in point["reason"]
    assert status == compare.EXIT_INCONCLUSIVE  # a regression it cannot vouch for is not a pass, nor a failure
    assert "1 step(s) beyond ±5%, a machine change" in capsys.readouterr().out
    loaded = read_results([tmp_path / "r"], warn=lambda line: None)
    assert "The NumPy controls stepped" in history_section(loaded.histories, 0.10)
    assert f"NumPy control {control} stepped 0.28.0 → 0.29.0" in section_history(loaded.histories)


def test_a_step_within_the_threshold_is_listed_but_is_no_change_point(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    world = World(cases=fake_cases(12, 4), effects={r: {STEP_CASE: 0.05} for r in SIX[3:]}, process_sd=0.003)
    status, document = run(tmp_path, world, "--fail-on-regression")
    assert document["change_points"] == [] and status == versions.EXIT_OK
    assert [(s["case_id"], s["newer"], s["verdict"]) for s in document["steps"]] == [(STEP_CASE, "0.29.0", "small")]


def test_a_control_step_within_half_the_threshold_is_listed_but_is_no_machine_change():
    """The gate's rule for a control (bench.stats.verdict_engine): significant *and* beyond half the threshold.
    A real history on a 2-core AMD EPYC VM found a -1.4% step in one NumPy control: listed, not a machine change."""
    from types import SimpleNamespace

    def step(case_id, pct):
        change = math.log1p(pct / 100)
        return SimpleNamespace(case_id=case_id, older="0.30.0", newer="0.30.1", ci_pct=(pct - 0.5, pct + 0.5),
                               pct_change=pct, log_change=change, se=0.002, df=15, segment_before=[], segment_after=[])  # fmt: skip

    detections = {"numpy": SimpleNamespace(steps=[step("small-control", -1.4), step("moved-control", -7.0)])}
    found = history.step_records(detections, threshold=0.10)
    assert [s["case_id"] for s in history.machine_changes(found)] == ["moved-control"]
    document = {"releases": ["0.30.0", "0.30.1"], "not_measured": {}, "change_points": [], "steps": found,
                "machine_changes": history.machine_changes(found), "rows": []}  # fmt: skip
    lines = "\n".join(history.history_lines(document, 0.10))
    assert "1 step(s) beyond ±5%, a machine change" in lines and "listed only" in lines and "small-control" in lines
