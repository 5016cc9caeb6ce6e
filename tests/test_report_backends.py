"""Every backend against every other: NumPy baselines for PyTorch and JAX, fastest against fastest, device
classes, the side-by-side digest, old files' ids in today's spelling, and ids that grep against pytest's."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import report_browser
import report_synth as synth

from bench.cases.case import Case
from bench.cases.sizes import Size
from bench.report import main, views
from bench.report.load import load_results
from bench.report.row_figures import add_figures
from bench.report.schema import case_label
from bench.report.speedup import backends_table, fastest_cases, speedup_table
from bench.results.releases import COMPARED_BACKENDS

DATA = Path(__file__).parent / "data" / "report"


def rows(path):
    """The rows of a CSV file as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def peers(tmp_path):
    """One saved run of NumPy, MLX (cpu, gpu), PyTorch (cpu, cuda) and JAX (cpu, cuda) timed in three passes."""
    synth.write(tmp_path / "results" / "m", "0001_run", synth.peer_run(seed=3))
    return tmp_path / "results"


@pytest.fixture
def frame(peers):
    return add_figures(load_results([peers]))


def pytest_ids(cases=synth.PEER_CASES, models=("linear", "mlp"), sizes=synth.PEER_SIZES) -> set[str]:
    """The ids pytest gives these cases (bench.cases.case.Case.case_id), the ones `pytest -k` filters by."""
    ids = set()
    for model in models:
        shape = {"hidden": 64, "batch_size": 256} if model == "mlp" else {}
        for n, d in sizes:
            for backend, variant, barrier, device, _ in cases:
                ids.add(Case(model, backend, variant, barrier, device, **shape).case_id(Size(n, d)))
    return ids


def test_every_backend_is_compared_with_its_numpy_baseline(frame):
    table = speedup_table(frame).set_index("case_id")
    non_numpy = [c for c in synth.PEER_CASES if c[0] != "numpy"]
    assert len(table) == 2 * 2 * len(non_numpy)  # models x sizes x cases
    assert set(table["backend"]) == {"mlx", "torch", "jax"} and set(table["baseline_backend"]) == {"numpy"}
    assert set(table["baseline_variant"]) == {"analytic"} and set(table["baseline_barrier"]) == {"eager"}
    # Planted: PyTorch's compiled CPU case takes 0.4 of NumPy's step time, JAX's CUDA case 0.4, JAX's CPU case 1.6.
    torch = table.loc["linear-torch-compiled-eager-cpu-n1000-d10"]
    assert torch["speedup"] == pytest.approx(2.5, rel=0.01) and torch["faster"] == "torch"
    assert torch["baseline_case_id"] == "linear-numpy-analytic-eager-cpu-n1000-d10"
    assert torch["backend_version"] == "2.5.1" and torch["baseline_backend_version"] == "2.1.0"
    assert table.loc["mlp-jax-fori-round-cuda-h64-b256-n2000-d20", "speedup"] == pytest.approx(2.5, rel=0.01)
    slow = table.loc["linear-jax-jit-step-cpu-n2000-d20"]
    assert slow["speedup"] == pytest.approx(1 / 1.6, rel=0.01) and slow["faster"] == "numpy"
    assert (table["passes"] == 3).all() and table["ci_method"].str.contains("across passes").all()


def test_mlx_rows_are_what_they_were_with_peers_beside_them(peers, frame, tmp_path):
    # The same MLX and NumPy cases without the peers: MLX's speedup rows must not change.
    doc = json.loads(next(peers.rglob("*.json")).read_text())
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b["extra_info"]["backend"] in ("numpy", "mlx")]
    synth.write(tmp_path / "alone" / "m", "0001_run", doc)
    alone = speedup_table(add_figures(load_results([tmp_path / "alone"])))
    together = speedup_table(frame)
    together = together[together["backend"] == "mlx"].reset_index(drop=True)
    columns = ["case_id", "baseline_case_id", "speedup", "speedup_ci_low", "speedup_ci_high", "faster", "passes"]
    assert alone[columns].equals(together[columns])


def test_fastest_case_of_each_backend_per_device_class(frame):
    best = fastest_cases(frame)
    assert set(best.loc[best["dtype"] == "float64", "case_id"]) == {  # the seed case is only its own dtype's fastest
        f"{m}-numpy-seed-eager-cpu{'-h64-b256' if m == 'mlp' else ''}-n{n}-d{d}"
        for m in ("linear", "mlp")
        for n, d in synth.PEER_SIZES
    }
    best = best[best["dtype"] == "float32"].set_index(["model", "n_examples", "device_class", "backend"])["case_id"]
    assert best[("linear", 1_000, "cpu", "mlx")] == "linear-mlx-compiled-step-cpu-n1000-d10"
    assert best[("linear", 1_000, "accelerator", "mlx")] == "linear-mlx-compiled-round-gpu-n1000-d10"
    assert best[("linear", 1_000, "cpu", "numpy")] == "linear-numpy-analytic-eager-cpu-n1000-d10"
    assert best[("mlp", 2_000, "accelerator", "torch")] == "mlp-torch-compiled-step-cuda-h64-b256-n2000-d20"
    assert ("linear", 1_000, "accelerator", "numpy") not in best.index  # NumPy has no accelerator


def test_any_backend_against_any_other_with_planted_ratios(frame):
    table = backends_table(frame)
    groups = table.groupby(["model", "n_examples", "device_class"])
    # Every ordered pair of the backends present: 4 on the CPU (12 pairs), 3 on the accelerators (6).
    sizes = groups.size().unstack("device_class")
    assert set(sizes["cpu"]) == {12} and set(sizes["accelerator"]) == {6}
    assert not (table["backend"] == table["other_backend"]).any()
    pair = table.set_index(["model", "n_examples", "device_class", "backend", "other_backend"])
    # The planted 2x: PyTorch's fastest is twice MLX's, on the CPU and on the accelerators alike.
    for device in ("cpu", "accelerator"):
        mlx_torch = pair.loc[("linear", 1_000, device, "mlx", "torch")]
        assert mlx_torch["ratio"] == pytest.approx(0.5, rel=0.01) and mlx_torch["faster"] == "torch"
        assert mlx_torch["ratio_ci_low"] < 0.5 * 1.01 and mlx_torch["ratio_ci_high"] > 0.5 * 0.99
        assert pair.loc[("linear", 1_000, device, "mlx", "jax"), "ratio"] == pytest.approx(2, rel=0.01)
        back = pair.loc[("linear", 1_000, device, "torch", "mlx"), "ratio"]
        assert back == pytest.approx(1 / mlx_torch["ratio"], rel=1e-6)  # both orders, reciprocal
    numpy_mlx = pair.loc[("mlp", 2_000, "cpu", "mlx", "numpy")]
    assert numpy_mlx["ratio"] == pytest.approx(1 / 0.8, rel=0.01) and numpy_mlx["faster"] == "mlx"
    # Taken pass by pass, as the suite times all backends' cases of a size next to each other.
    assert (table["passes"] == 3).all() and table["ci_method"].str.contains("across passes").all()


def test_mlx_gpu_meets_torch_cuda_never_the_cpu(frame):
    table = backends_table(frame)
    accelerator = table[table["device_class"] == "accelerator"]
    assert set(accelerator["device"]) | set(accelerator["other_device"]) == {"gpu", "cuda"}
    mlx_torch = accelerator[(accelerator["backend"] == "mlx") & (accelerator["other_backend"] == "torch")]
    assert set(mlx_torch["device"]) == {"gpu"} and set(mlx_torch["other_device"]) == {"cuda"}
    cpu = table[table["device_class"] == "cpu"]
    assert set(cpu["device"]) == set(cpu["other_device"]) == {"cpu"}


def test_a_float64_case_is_never_compared_with_float32_ones(frame):
    table = backends_table(frame)
    assert set(table["dtype"]) == {"float32"}
    assert not table["case_id"].str.contains("-seed-").any() and not table["other_case_id"].str.contains("-seed-").any()


def test_case_ids_in_every_csv_are_pytest_ids(peers, tmp_path):
    out = tmp_path / "out"
    assert main([str(peers), "--out", str(out), "--no-plots"]) == 0
    expected = pytest_ids()
    assert {r["case_id"] for r in rows(out / "throughput.csv")} == expected
    speedup = rows(out / "speedup.csv")
    assert {r["case_id"] for r in speedup} | {r["baseline_case_id"] for r in speedup} <= expected
    backends = rows(out / "backends.csv")
    assert {r["case_id"] for r in backends} | {r["other_case_id"] for r in backends} <= expected
    assert "mlp-mlx-compiled-step-cpu-h64-b256-n1000-d10" in {r["case_id"] for r in speedup}  # hidden before batch


def test_versions_csv_case_ids_are_pytest_ids(tmp_path):
    doc = synth.peer_run(seed=1)
    folder = tmp_path / "results" / "m"
    for i in range(3):
        synth.write(folder, f"a{i}", synth.relabel(doc, "0.30.0", f"2026-01-0{i + 1}T00:00:00+00:00"))
        synth.write(folder, f"b{i}", synth.relabel(doc, "0.31.0", f"2026-01-0{i + 1}T01:00:00+00:00"))
    out = tmp_path / "out"
    assert main([str(tmp_path / "results"), "--out", str(out), "--no-plots"]) == 0
    # A comparison of MLX releases judges MLX and its NumPy controls only (bench.results.releases.COMPARED_BACKENDS).
    judged = [c for c in synth.PEER_CASES if c[0] in COMPARED_BACKENDS]
    assert {r["case_id"] for r in rows(out / "versions.csv")} == pytest_ids(judged)


def _old_mlp_entry(schema_version):
    """An MLP mini-batch case as files before schema 3 saved it: its id with the batch before the width."""
    entry = synth.benchmark(
        model="mlp", backend="mlx", variant="nn", barrier="step", n=1_000, d=100, hidden=64, batch_size=256,
        times=[0.01, 0.011, 0.0105, 0.0102, 0.0101], case_id="mlp-mlx-nn-step-cpu-b256-h64-n1000-d100",
    )  # fmt: skip
    if schema_version is not None:
        entry = synth.in_passes(entry, [0.01, 0.011, 0.0102], schema_version=schema_version)
    return entry


@pytest.mark.parametrize("schema_version", [None, 2])
def test_old_files_load_with_their_ids_in_todays_spelling(tmp_path, schema_version):
    distributed = synth.benchmark(
        n=100_000, d=100, times=[0.01] * 5, n_ranks=2, distributed_backend="ring", scenario="distributed",
        case_id="linear-mlx-autodiff-step-cpu-n100000-d100",  # the data-parallel case once had no rank count
    )  # fmt: skip
    synth.write(tmp_path, "run", synth.run([_old_mlp_entry(schema_version), distributed]))
    frame = load_results([tmp_path])
    want = Case("mlp", "mlx", "nn", "step", "cpu", batch_size=256, hidden=64).case_id(Size(1_000, 100))
    assert want == "mlp-mlx-nn-step-cpu-h64-b256-n1000-d100"
    assert list(frame["case_id"]) == [want, "linear-mlx-autodiff-step-cpu-ring-2ranks-n100000-d100"]
    assert case_label(frame.iloc[0]) == "mlx-nn-step-cpu-h64-b256"
    assert "torch_version" not in frame and "jax_version" not in frame  # no peers: no empty peer columns


def test_schema_3_keeps_the_saved_id(tmp_path):
    # From schema 3 on the saved id is the identity: a field the report does not know yet still names the case.
    entry = synth.in_passes(
        synth.benchmark(times=[0.01] * 5, case_id="linear-mlx-autodiff-step-cpu-x2-n1000-d10"), [0.01] * 3
    )
    synth.write(tmp_path, "run", synth.run([entry]))
    row = load_results([tmp_path]).iloc[0]
    assert row["case_id"] == "linear-mlx-autodiff-step-cpu-x2-n1000-d10"
    assert case_label(row) == "mlx-autodiff-step-cpu-x2" and case_label(row, True).endswith("-x2-n1000-d10")


def test_peer_versions_become_machine_columns(frame):
    assert set(frame["torch_version"]) == {"2.5.1"} and set(frame["jax_version"]) == {"0.4.35"}
    assert set(frame["torch_num_threads"]) == {8}
    shown = views.machines(frame)
    assert shown["PyTorch"].tolist() == ["2.5.1"] and shown["JAX"].tolist() == ["0.4.35"]


def test_summary_shows_the_backends_side_by_side(peers, tmp_path):
    out = tmp_path / "out"
    assert main([str(peers), "--out", str(out), "--no-plots"]) == 0
    summary = (out / "summary.md").read_text()
    assert "## Backends against NumPy" in summary and "## MLX against NumPy" not in summary
    assert "PyTorch faster in 6 of 6 (case, size) pairs" in summary
    side = summary.split("## Backends side by side")[1].split("\n## ")[0]
    linear = side.split("MLX 0.30.0, linear")[1].split("###")[0]
    header = next(line for line in linear.splitlines() if line.startswith("| size"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "size", "device class", "NumPy", "MLX", "PyTorch", "JAX", "MLX ÷ PyTorch", "MLX ÷ JAX",
    ]  # fmt: skip
    table = [line for line in linear.splitlines() if line.startswith("| 1,000×10")]
    cpu, accelerator = ([c.strip() for c in line.strip("|").split("|")] for line in table)
    assert cpu[1] == "cpu" and cpu[3].endswith("(compiled-step-cpu)") and cpu[4].endswith("(compiled-eager-cpu)")
    assert cpu[6:] == ["0.5×", "2×"]
    assert accelerator[1] == "accelerator" and accelerator[2] == ""  # NumPy has no accelerator case
    assert accelerator[3].endswith("(compiled-round-gpu)") and accelerator[4].endswith("(compiled-step-cuda)")
    assert accelerator[6:] == ["0.5×", "2×"]
    assert "mlp (batch 256, hidden 64, dtype float32)" in side  # what every MLP row shares, said once


def test_summary_without_peers_has_no_side_by_side(tmp_path):
    synth.write(tmp_path / "results" / "m", "0001_run", synth.run(synth.grid_benchmarks(seed=1)))
    out = tmp_path / "out"
    assert main([str(tmp_path / "results"), "--out", str(out), "--no-plots"]) == 0
    summary = (out / "summary.md").read_text()
    assert "## MLX against NumPy" in summary and "Backends side by side" not in summary
    assert "| best MLX case" in summary and "MLX faster in" in summary


def test_peers_without_mlx(tmp_path):
    # A machine without MLX: no MLX cases, and no MLX version in machine_info either.
    cases = [c for c in synth.PEER_CASES if c[0] in ("numpy", "torch")]
    doc = synth.run(synth.peer_benchmarks(seed=2, cases=cases), mlx_version=None, **synth.PEER_MACHINE)
    synth.write(tmp_path / "results" / "m", "0001_run", doc)
    out = tmp_path / "out"
    assert main([str(tmp_path / "results"), "--out", str(out), "--no-plots"]) == 0
    summary = (out / "summary.md").read_text()
    assert "## PyTorch against NumPy" in summary and "PyTorch faster in" in summary
    side = summary.split("## Backends side by side")[1]
    assert "| NumPy" in side and "PyTorch" in side and "÷" not in side.split("###")[1]  # no MLX: no MLX ratio
    assert "` no MLX, linear" in side and "| best PyTorch case" in summary  # one backend compared: named
    assert {r["backend"] for r in rows(out / "backends.csv")} == {"numpy", "torch"}
    assert "— no MLX</h3>" in (out / "index.html").read_text(encoding="utf-8")


def test_page_and_plots_show_every_backend(peers, tmp_path):
    out = tmp_path / "out"
    assert main([str(peers), "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    answer = page.split('id="answer"')[1].split('id="blog"')[0]
    for label in ("MLX", "PyTorch", "JAX"):
        assert f"<h5>{label} ÷ NumPy</h5>" in answer
    assert answer.count('class="heatmap"') == 2 * 3  # per model, one per backend compared with NumPy
    assert "Backends side by side" in answer and ">MLX ÷ PyTorch</th>" in answer and ">JAX case</th>" in answer
    assert '<span class="badge f-backend">PyTorch</span>' in answer
    details = page.split('id="details"')[1]
    assert (
        "<h3>Backends against NumPy, every case</h3>" in details
        and "<h3>Backend against backend, every pair</h3>" in details
    )
    assert "linear-torch-compiled-step-cuda-n1000-d10" in details
    names = {p.name for p in out.glob("*.png")}
    for backend in ("mlx", "torch", "jax"):
        assert any(n.startswith(f"speedup-linear-{backend}-") for n in names), names
    assert {n.split("-")[0] for n in names} == {"throughput", "speedup", "backends"}
    assert len([n for n in names if n.startswith("backends-")]) == 2  # one per model
    assert page.count('src="data:image/png;base64,') == len(names)


def test_no_hard_coded_mlx_rows_in_views_and_plots():
    report = Path(__file__).parents[1] / "bench" / "report"
    # views.py re-exports the tables of these modules: each is read.
    modules = ["views.py", "table_formats.py", "table_rows.py", "headline_tables.py", "verdict_tables.py"]
    modules += ["detail_tables.py", "machine_tables.py"]
    source = "".join((report / f).read_text() for f in (*modules, "plots.py"))
    assert 'backend="mlx"' not in source and "backend='mlx'" not in source


def test_equal_peers_are_too_close_to_call(tmp_path):
    cases = (
        ("numpy", "analytic", "eager", "cpu", 1.0),
        ("mlx", "compiled", "step", "cpu", 0.5),
        ("torch", "compiled", "eager", "cpu", 0.5),
    )
    doc = synth.run(synth.peer_benchmarks(seed=4, cases=cases, models=("linear",)), **synth.PEER_MACHINE)
    synth.write(tmp_path, "run", doc)
    table = backends_table(add_figures(load_results([tmp_path])))
    mlx_torch = table[(table["backend"] == "mlx") & (table["other_backend"] == "torch")]
    assert np.allclose(mlx_torch["ratio"], 1, rtol=0.01) and set(mlx_torch["faster"]) == {"neither"}


@pytest.mark.slow  # starts a browser: about 4 s
@pytest.mark.skipif(report_browser.find_chromium() is None, reason="no chromium on PATH (Debian package: chromium)")
def test_page_with_peers_in_a_real_browser(peers, tmp_path):
    out = tmp_path / "out"
    assert main([str(peers), "--out", str(out)]) == 0
    found = report_browser.probe(out / "index.html", report_browser.find_chromium(), table="backends")
    assert found["errors"] == [] and all(found["sections"].values()), found
    assert found["heatmaps"] == 6 and found["figures"] >= 1
    # The every-pair table sorts by its steps/s column and filters by a drop-down.
    assert found["sorted_table"] == "backends" and found["sort_column"].startswith("steps/s")
    assert found["ascending"] == sorted(found["ascending"]) and len(found["ascending"]) > 10
    assert found["filter_shown"] and set(found["filter_shown"]) == {found["filter_value"]}


def test_a_saved_field_named_like_a_side_does_not_break_the_pairing(frame):
    # The data-parallel rows save their own `baseline_steps_per_s`; pairs must still be built.
    before = speedup_table(frame)
    clashing = frame.assign(baseline_steps_per_s=np.nan, other_steps_per_s=np.nan)
    after = speedup_table(clashing)
    assert np.allclose(after["speedup"], before["speedup"]) and len(after) == len(before)
    assert len(backends_table(clashing)) == len(backends_table(frame))
