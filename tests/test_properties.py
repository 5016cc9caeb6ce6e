"""Generated bad input for the report and the release runner's command line: never a traceback, nothing lost.

The report (bench.report's main, in-process) gets saved results cut short,
foreign, non-finite, extreme or huge, the release runner's records with
wrong-typed fields, and command lines with odd exports; the
release runner's parse_args gets random argument lists. Whatever comes in: an
exit status from the documented set, stderr lines that are one warning per
input or one error (never a traceback), inputs unchanged byte for byte, and
the report folder either complete or exactly as the previous report left it.
Hostfiles (bench.distributed.hostfile) are read or refused in one line, and the
worker protocol's line reader (bench.engine.protocol) returns every line
however the bytes arrive.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest

# A development dependency (requirements-dev.txt, which CI installs): without it these tests skip, saying so.
pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -r requirements-dev.txt)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench import versions
from bench.report import main as report_main
from bench.report.make_report import OUTPUT_FILES

SAMPLE = next((Path(__file__).parent / "data" / "report" / "results").rglob("*.json"))
SAMPLE_DOC = json.loads(SAMPLE.read_text())
REPORT_EXITS = {0, 1, 2, 4}  # bench.report's docstring
RUNNER_EXITS = {0, 2}  # parse_args: --help, or a usage error (docs/releases.md, "Compare MLX releases")
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- generated results files ---------------------------------------------------------------

extreme_numbers = st.sampled_from(
    [math.nan, math.inf, -math.inf, 0, 0.0, -1, -100, -1e-300, 1e-320, 1e308, 10**30, -(10**30), 2**63, 0.5, 1.5]
)
odd_values = st.one_of(
    extreme_numbers,
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.lists(extreme_numbers, max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)
EXTRA_KEYS = ["steps_per_round", "n_examples", "n_features", "batch_size", "schema_version", "round_times_s"]
EXTRA_KEYS += ["round_pass", "case_id", "model", "backend", "hidden", "device"]
STATS_KEYS = ["data", "median", "q1", "q3", "rounds"]


def dumps(doc) -> bytes:
    """JSON as Python writes it, NaN and Infinity included (as a buggy or foreign writer would)."""
    return json.dumps(doc, allow_nan=True).encode()


@st.composite
def mutated_results(draw) -> bytes:
    """The sample result with some of its benchmarks' fields replaced by odd values, or a top-level field broken."""
    doc = copy.deepcopy(SAMPLE_DOC)
    for _ in range(draw(st.integers(1, 4))):
        bench = doc["benchmarks"][draw(st.integers(0, len(doc["benchmarks"]) - 1))]
        where = draw(st.sampled_from(["extra_info", "stats", "benchmark"]))
        if where == "benchmark":
            bench[draw(st.sampled_from(["extra_info", "stats", "name"]))] = draw(odd_values)
        elif isinstance(bench.get(where), dict):
            keys = EXTRA_KEYS if where == "extra_info" else STATS_KEYS
            bench[where][draw(st.sampled_from(keys))] = draw(odd_values)
    if draw(st.booleans()):  # and, last, a whole top-level field
        doc[draw(st.sampled_from(["benchmarks", "machine_info", "datetime", "commit_info"]))] = draw(odd_values)
    return dumps(doc)


@st.composite
def truncated_results(draw) -> bytes:
    text = dumps(SAMPLE_DOC)
    return text[: draw(st.integers(0, len(text) - 1))]


@st.composite
def huge_results(draw) -> bytes:
    """Many copies of the benchmarks (a long run), some with a non-finite median."""
    doc = copy.deepcopy(SAMPLE_DOC)
    copies = draw(st.integers(20, 60))
    doc["benchmarks"] = [copy.deepcopy(b) for _ in range(copies) for b in SAMPLE_DOC["benchmarks"]]
    for bench in doc["benchmarks"][:: draw(st.integers(3, 50))]:
        bench["stats"]["median"] = draw(extreme_numbers)
    return dumps(doc)


results_files = st.one_of(
    mutated_results(),
    truncated_results(),
    huge_results(),
    json_values.map(dumps),  # another tool's JSON, or no object at all
    st.binary(max_size=200),  # not text
)

report_options = st.lists(
    st.one_of(
        st.sampled_from(["--latest", "--fail-on-regression", "--no-plots", "--correction", "bh", "--model"]),
        st.sampled_from(["--threshold", "--machine", "--model"]).flatmap(
            lambda option: st.sampled_from(["10%", "0", "-5", "nan", "1e309", "linear", "", "abc"]).map(
                lambda value: [option, value]
            )
        ),
        st.sampled_from(["EXPORT_NEW", "EXPORT_INPUT", "EXPORT_SUMMARY", "EXPORT_MISSING", "EXPORT_LINK"]),
        st.sampled_from(["--export", "--out", "--bogus"]),
    ),
    max_size=3,
)


def digest(folder: Path) -> dict[str, str]:
    """Every file below `folder` (hidden ones too) and its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture(scope="module")
def previous_report(tmp_path_factory) -> Path:
    """A report of the sample, as a user's report/ folder holds it before the next one."""
    out = tmp_path_factory.mktemp("previous") / "report"
    with contextlib.redirect_stdout(io.StringIO()):
        assert report_main([str(SAMPLE), "--out", str(out), "--no-plots"]) == 0
    return out


def run_captured(call) -> tuple[int, str]:
    """(exit status, stderr) of call(), SystemExit included."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = call()
        except SystemExit as stop:
            status = stop.code
    return status, err.getvalue()


def assert_one_line_each(stderr: str, inputs: int) -> None:
    """One warning line per input at most, one error line at most, never a traceback."""
    lines = stderr.splitlines()
    assert "Traceback" not in stderr
    assert all(line.startswith(("warning: ", "error: ")) for line in lines), lines
    assert sum(line.startswith("error: ") for line in lines) <= 1, lines
    assert len(lines) <= inputs + 1, lines


@PROPERTY
@given(files=st.lists(results_files, min_size=1, max_size=3), with_sample=st.booleans(), options=report_options)
def test_the_report_on_generated_results(previous_report, files, with_sample, options):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = tmp / "results" / "Linux-CPython-3.11-64bit"
        results.mkdir(parents=True)
        for number, content in enumerate(files, start=1):
            (results / f"{number:04d}_generated.json").write_bytes(content)
        if with_sample:
            shutil.copy(SAMPLE, results / "0000_sample.json")
        out = tmp / "report"
        shutil.copytree(previous_report, out)
        (tmp / "victim").write_text("the user's file")
        (tmp / "link.json").symlink_to(tmp / "victim")
        exports = {
            "EXPORT_NEW": tmp / "bench.json",
            "EXPORT_INPUT": results / "0001_generated.json",
            "EXPORT_SUMMARY": out / "summary.md",
            "EXPORT_MISSING": tmp / "missing" / "bench.json",
            "EXPORT_LINK": tmp / "link.json",
        }
        argv = [str(tmp / "results"), "--out", str(out)]
        for option in options:
            if isinstance(option, list):
                argv += option
            elif option in exports:
                argv += ["--export", "github-action-benchmark", str(exports[option])]
            else:
                argv.append(option)
        if "--no-plots" not in argv:
            argv.append("--no-plots")  # plots take seconds each; their writing is the same all-or-nothing path
        outs = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--out"]
        written = (tmp / outs[-1]).resolve()  # the last --out wins; a bare one took the next word
        existed = written.exists()
        inputs_before = digest(tmp / "results")
        previous = digest(out)
        victim_before = (tmp / "victim").read_text()

        with contextlib.chdir(tmp):  # a bare --out takes the next word as a folder: never the checkout's
            status, stderr = run_captured(lambda: report_main(argv))

        assert status in REPORT_EXITS, (status, stderr)
        assert_one_line_each(stderr, len(files) + with_sample)
        assert digest(tmp / "results") == inputs_before  # nothing read was changed
        assert (tmp / "victim").read_text() == victim_before and (tmp / "link.json").is_symlink()
        assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
        if status == 2 or written != out.resolve():
            assert digest(out) == previous  # untouched: the previous report as it was
        if status == 2:
            assert written.exists() == existed  # no folder made for a report that was not written
        else:
            assert set(OUTPUT_FILES) <= {p.name for p in written.iterdir()}  # complete
            assert not [p.name for p in written.iterdir() if p.name.startswith(".")]
            if written == out.resolve():
                assert digest(out)["summary.md"] != previous["summary.md"]  # the new report, not the old


# -- generated command lines of the release runner -----------------------------------------

RUNNER_OPTIONS = sorted(
    option
    for action in versions.build_parser()._actions
    for option in action.option_strings
    if option not in ("-h", "--help", "--results", "--out", "--cache-dir")  # paths: set below, inside a temp folder
)
runner_tokens = st.one_of(
    st.sampled_from(RUNNER_OPTIONS),
    st.sampled_from(["0.30.0", "0.32.4", "0.30.0/../..", "0.99", "nan", "-1", "inf", "1e309", "0", "3", "a;b"]),
    st.sampled_from(["zzz-*", "linear-*", "linear-mlx-compiled-step-cpu-b32-n1000-d10", "1000x10", "banana", "--"]),
    st.sampled_from(["paired", "runs", "cpu", "gpu", "all", "grid", "shuffle", "10%", "-k", "x.whl", "-"]),
    st.sampled_from(["compare", "history", "bisect", "self-test"]),  # the subcommands, first or misplaced
    st.text(max_size=6),
)


@settings(max_examples=100, deadline=None)
@given(argv=st.lists(runner_tokens, max_size=7))
def test_the_release_runners_command_line_on_generated_argv(argv):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "keep.txt").write_text("the user's file")
        cut = argv.index("--") if "--" in argv else len(argv)  # ours before the first --, pytest's after
        full = [*argv[:cut], "--results", str(tmp / "r"), "--cache-dir", str(tmp / "c"), *argv[cut:]]
        before = digest(tmp)

        with contextlib.chdir(tmp):
            status, stderr = run_captured(lambda: versions.parse_args(full))

        status = 0 if status is None or not isinstance(status, int) else status  # a Namespace: parsed
        assert status in RUNNER_EXITS, (status, stderr)
        assert "Traceback" not in stderr
        assert len(stderr.splitlines()) <= 1 and (status == 0 or stderr.startswith("python -m bench.versions: error:"))
        assert digest(tmp) == before and sorted(p.name for p in tmp.iterdir()) == ["keep.txt"]  # parsing writes nothing


# -- hostfiles and the worker protocol's line reader -------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["ssh", "ips", "hosts", "x"]), inner),
    max_leaves=12,
)
hostfile_texts = st.one_of(
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.integers(2, 60_000).map(lambda depth: "[" * depth + "]" * depth),  # nested past the parser's recursion
    st.integers(4_301, 6_000).map(lambda digits: "[" + "7" * digits + "]"),  # past Python's integer digit limit
    st.integers(4_301, 6_000).map(lambda digits: f'[{{"ssh": "h", "ips": ["10.0.0.1"], "n": {"9" * digits}}}]'),
)


@PROPERTY
@given(text=hostfile_texts, require_ips=st.booleans())
def test_a_generated_hostfile_is_read_or_refused_in_one_line(text, require_ips):
    from bench.distributed.hostfile import Hostfile, HostfileError, parse_hostfile, read_ring_hostfile

    for read in (lambda: parse_hostfile(text, "hosts.json", require_ips), lambda: read_ring_hostfile(text)):
        try:
            result = read()
        except HostfileError as error:
            assert "\n" not in str(error) and str(error)
        else:
            assert isinstance(result, (Hostfile, list))


@PROPERTY
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8),
    tail=st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")),
    cuts=st.lists(st.integers(0, 400), max_size=10),
)
def test_the_line_reader_returns_every_line_whatever_the_chunks(lines, tail, cuts):
    from bench.engine.protocol import LineBuffer, answer_of

    stream = b"".join(line + b"\n" for line in lines) + tail
    bounds = sorted({0, len(stream), *(c for c in cuts if c <= len(stream))})
    buffer, got = LineBuffer(), []
    for start, stop in zip(bounds, bounds[1:]):
        got += buffer.feed(stream[start:stop])
    assert got == lines and buffer.partial == tail
    for line in [*lines, tail]:
        answer = answer_of(line)  # any bytes at all: an answer (an object with "ok") or None, never an exception
        assert answer is None or (isinstance(answer, dict) and "ok" in answer)


# -- generated release-runner records ------------------------------------------------------

_VERDICT_ROW = {
    "machine": "vm", "case_id": "linear-mlx-compiled-step-cpu-n1000-d10", "model": "linear", "backend": "mlx",
    "control": False, "older": "0.30.0", "newer": "0.32.4", "pct_change": 12.0, "ci_low_pct": 4.0,
    "ci_high_pct": 20.0, "p_value": 0.001, "p_value_adjusted": 0.01, "verdict": "regression",
    "min_detectable_pct": 6.0, "passes_needed": 3, "n_older": 4, "n_newer": 4, "method": "paired", "reason": "",
    "noise_pct": 3.0, "steps_per_round": 100, "p_faster_adjusted": 1.0,
}  # fmt: skip
_COMPARISON = {"older": "0.30.0", "newer": "0.32.4", "status": "ok", "reason": ""}
_COMMON = {"schema_version": 1, "created": "2026-02-01T00:00:00+00:00", "machine": {"node": "vm"}}
RECORDS = {
    "release-verdicts.json": {
        "kind": "mlx-sgd-bench-release-verdicts",
        **_COMMON,
        "settings": {"threshold": 0.1},
        "comparisons": [_COMPARISON],
        "rows": [_VERDICT_ROW, dict(_VERDICT_ROW, backend="numpy", control=True, verdict="same")],
    },
    "self-test.json": {
        "kind": "mlx-sgd-bench-self-test",
        **_COMMON,
        "release": "0.32.4",
        "status": "pass",
        "summary": "ok",
        "false_regressions": 0,
        "noise_pct_median": 3.0,
        "min_detectable_pct_median": 8.0,
        "fit_to_gate": True,
        "planted": [{"case_id": _VERDICT_ROW["case_id"], "slowdown_pct": 30.0, "pct_change": 29.0, "caught": True}],
        "calibration": {"coverage_95": 0.95, "ks_p_value": 0.4, "cases": 40, "p_below_0_01": 0.0, "p_below_0_05": 0.05},
        "unfit_reasons": [],
        "detection_curve": [{"slowdown_pct": 30.0, "caught": 1.0}],
    },
    "history.json": {
        "kind": "mlx-sgd-bench-release-history",
        **_COMMON,
        "settings": {"threshold": 0.1},
        "releases": ["0.30.0", "0.32.4"],
        "not_measured": {"0.31.0": "could not install"},
        "comparisons": [_COMPARISON],
        "change_points": [dict(_VERDICT_ROW, status="ok")],
        "pair_rows": [],
        "rows": [
            dict(_VERDICT_ROW, release="0.30.0", pct_vs_oldest=0.0),
            dict(_VERDICT_ROW, release="0.32.4", pct_vs_oldest=12.0),
        ],
    },
}


@st.composite
def mutated_record(draw) -> tuple[str, bytes]:
    """One of the release runner's records with a few fields, top-level or inside a row, given odd values."""
    name = draw(st.sampled_from(sorted(RECORDS)))
    doc = copy.deepcopy(RECORDS[name])
    for _ in range(draw(st.integers(1, 3))):
        holders = [doc] + [item for value in doc.values() if isinstance(value, list) for item in value]
        holders += [value for value in doc.values() if isinstance(value, dict)]
        holder = draw(st.sampled_from([h for h in holders if isinstance(h, dict)]))
        keys = sorted(k for k in holder if k not in ("kind", "schema_version")) or ["x"]
        holder[draw(st.sampled_from(keys))] = draw(odd_values)
    return name, dumps(doc)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(mutated_record(), min_size=1, max_size=3, unique_by=lambda r: r[0]))
def test_the_report_on_generated_release_records(records):
    # Wrong-typed fields in a release runner's record: the record is refused in one line, the report still built.
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = tmp / "results"
        results.mkdir()
        shutil.copy(SAMPLE, results / "0001_sample.json")
        for name, content in records:
            (results / name).write_bytes(content)
        status, stderr = run_captured(lambda: report_main([str(results), "--out", str(tmp / "report"), "--no-plots"]))
        assert status == 0, (status, stderr)  # the sample is reported whatever the records hold
        assert_one_line_each(stderr, len(records) + 1)
        assert set(OUTPUT_FILES) <= {p.name for p in (tmp / "report").iterdir()}
