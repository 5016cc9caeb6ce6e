"""A reproducer per change point: a standalone plain-MLX script and a README of the two environments' differences.

For each MLX change point a history names (and for a bisect's first regressed
release), `reproducers/<case>-<older>-to-<newer>.py` is the source of
bench.versions.repro_script with the case filled in: NumPy and MLX only,
runnable with `uv run --with "mlx[cpu]==A" python script.py` and `==B`, or
both interleaved in fresh processes (`--interleave A B`). Beside it,
`reproducers/README.md` names, per change point, what the suite recorded of
the two release environments: the packages that differ, the BLAS libraries
MLX loads, the workers' thread settings and CPUs (docs/releases.md,
"Release history").
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from bench.versions import repro_script, verdict_files

FOLDER = "reproducers"
README_NAME = "README.md"
PROBE_TIMEOUT_S = 120.0
_CASE_LINE = "CASE: dict = {}  # filled in by bench.versions.reproducer\n"

# Runs inside a release environment: every installed distribution, and the BLAS libraries MLX really loads.
_PROBE = """
import importlib.metadata as m, json, sys
dists = {d.metadata["Name"].lower(): d.version for d in m.distributions() if d.metadata["Name"]}
import mlx.core
try:
    with open("/proc/self/maps") as maps:
        blas = sorted({l.split()[-1] for l in maps if "blas" in l.lower() and "/" in l})
except OSError:
    blas = ["Accelerate (macOS)"] if sys.platform == "darwin" else []
print(json.dumps({"packages": dists, "blas": blas, "python": sys.version.split()[0]}))
"""


def probe_environment(python: Path) -> dict:
    """What a release environment holds: {packages, blas, python}, or {error} in one line."""
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"error": f"could not run {python}: {error}"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{python} exited {done.returncode}: {tail}"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"{python} printed no environment record"}


def worker_threads(measurements: dict, label: str) -> dict:
    """The thread variables and CPU sets the release's workers reported, over every session."""
    threads, cpus = set(), set()
    for session in measurements.get("sessions", []):
        for worker in session.get("workers", {}).get(label, []):
            threads.add(json.dumps(worker.get("threads") or {}, sort_keys=True))
            cpus.add(json.dumps(worker.get("affinity")))
    return {"threads": sorted(threads), "cpus": sorted(cpus)}


def differences(older: dict, newer: dict) -> list[str]:
    """The recorded differences of two environments, one line each (packages, BLAS, threads, CPUs, Python)."""
    lines = []
    for side, probe in (("older", older), ("newer", newer)):
        if "error" in probe:
            lines.append(f"the {side} environment could not be read: {probe['error']}")
    a, b = older.get("packages", {}), newer.get("packages", {})
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            lines.append(f"package {name}: {a.get(name, 'absent')} -> {b.get(name, 'absent')}")
    for key, what in (("blas", "BLAS libraries MLX loads"), ("python", "Python"), ("threads", "thread variables")):
        if older.get(key) != newer.get(key):
            lines.append(f"{what}: {older.get(key)} -> {newer.get(key)}")
    if older.get("cpus") != newer.get("cpus"):
        lines.append(f"worker CPU sets: {older.get('cpus')} -> {newer.get('cpus')}")
    if "blas" in older and older.get("blas") == newer.get("blas"):
        lines.append(f"same BLAS libraries: {', '.join(_short(p) for p in older['blas']) or 'none found'}")
    if older.get("threads") == newer.get("threads"):
        lines.append(f"same thread variables in the workers: {', '.join(older.get('threads') or []) or 'none'}")
    return lines


def _short(path: str) -> str:
    """A library path from site-packages on (the environment's own folder is noise)."""
    return path.split("site-packages/", 1)[-1]


def file_name(case_id: str, older: str, newer: str) -> str:
    """reproducers/<case>-<older>-to-<newer>.py, with only safe characters."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{case_id}-{older}-to-{newer}") + ".py"


def script_text(entry: dict, steps_per_round: int | None, point: dict, specs: dict, header: list[str]) -> str:
    """The standalone script of one change point: repro_script's source, the case filled in, the header on top."""
    source = Path(repro_script.__file__).read_text()
    if _CASE_LINE not in source:
        raise RuntimeError("bench.versions.repro_script has lost its CASE line")
    case = dict(
        entry["case"],
        case_id=entry["case_id"],
        n_examples=entry["size"]["n_examples"],
        n_features=entry["size"]["n_features"],
        steps_per_round=steps_per_round,
        specs={label: specs[label] for label in (point["older"], point["newer"]) if label in specs},
        numpy=point.get("numpy"),
    )
    body = source.split('"""', 2)[2]  # the module docstring is replaced by this change point's header
    doc = '"""' + "\n".join(header).replace('"""', "'''").replace("\\", "/") + '\n"""'
    literal = "{" + ", ".join(f"{key!r}: {case[key]!r}" for key in sorted(case)) + "}"  # a Python literal, not JSON
    return doc + body.replace(_CASE_LINE, f"CASE: dict = {literal}\n", 1)


def header_lines(point: dict, specs: dict, machine: str, diffs: list[str], name: str) -> list[str]:
    """The script's docstring: what changed, where it was measured, how to run it, the environments' differences."""
    older, newer = point["older"], point["newer"]
    interval = ""
    if point.get("ci_low_pct") is not None:
        interval = f" [{point['ci_low_pct']:+.1f}, {point['ci_high_pct']:+.1f}] (95%)"
    lines = [
        f"Reproducer: {point['case_id']}, time per step {point['pct_change']:+.1f}%{interval} "
        f"from MLX {older} to {newer} ({point['verdict']}).",
        "",
        f"Measured by mlx-sgd-bench on {machine}. Standalone: NumPy and MLX only.",
        "",
        "Each release alone (rounds of K steps; median and quartiles per step):",
    ]
    for label in (older, newer):
        lines.append(f'    uv run --with "{specs.get(label, f"mlx=={label}")}" python {name}')
    lines += [
        "Both interleaved, round by round, in fresh processes (uv on PATH), with the change's 95% interval:",
        f"    python {name} --interleave {older} {newer}",
        "Options: --n, --d (a smaller size), --steps, --rounds, --sessions; --help lists them.",
        "",
        "The two environments as recorded (packages, BLAS, threads):",
        *(f"    {line}" for line in diffs or ["no difference recorded"]),
    ]
    return lines


def write_reproducers(
    folder: Path, points: list[dict], measurements: dict, specs: dict, pythons: dict, machine: str, probe=None
) -> list[dict]:
    """Write a script per MLX change point into folder/reproducers, and the README; one record per script.

    Each point gets `reproducer` (the script's path relative to `folder`).
    `probe(python)` reads an environment (probe_environment; a seam for tests).
    """
    probe = probe or probe_environment
    chosen = [p for p in points if p.get("status") == "ok" and p.get("verdict") in ("regression", "faster")]
    if not chosen:
        return []
    target = folder / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    probes: dict[str, dict] = {}

    def environment_of(label: str) -> dict:
        if label not in probes:
            found = probe(Path(pythons[label])) if label in pythons else {"error": "no environment"}
            probes[label] = dict(found, **worker_threads(measurements, label))
        return probes[label]

    records, readme = [], ["# Reproducers", "", f"Measured on {machine}. One standalone script per change point.", ""]
    for point in chosen:
        case = measurements["cases"].get(point["case_id"])
        if case is None:
            continue
        older, newer = environment_of(point["older"]), environment_of(point["newer"])
        diffs = differences(older, newer)
        name = file_name(point["case_id"], point["older"], point["newer"])
        numpy = older.get("packages", {}).get("numpy")
        entry = {"case_id": point["case_id"], "case": case["case"], "size": case["size"]}
        text = script_text(
            entry,
            case.get("steps_per_round"),
            dict(point, numpy=numpy),
            specs,
            header_lines(point, specs, machine, diffs, name),
        )
        compile(text, name, "exec")  # a script that is not valid Python is never written
        verdict_files.write_atomic(target / name, text)
        point["reproducer"] = f"{FOLDER}/{name}"
        records.append({"case_id": point["case_id"], "older": point["older"], "newer": point["newer"],
                        "script": point["reproducer"], "differences": diffs})  # fmt: skip
        readme += [f"## {point['case_id']}: {point['older']} -> {point['newer']}, {point['pct_change']:+.1f}%", ""]
        readme += [f"- script: `{name}` (`python {name} --interleave {point['older']} {point['newer']}`)"]
        readme += [f"- {line}" for line in diffs] + [""]
    verdict_files.write_atomic(target / README_NAME, "\n".join(readme))
    return records
