"""Data-parallel runs: hostfiles, ports, the launcher's faults, correctness, and two machines' results.

The launcher tests start real ranks on 127.0.0.1 (ring backend) at a tiny
size: each takes a few seconds, most of it MLX's ring connecting.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from bench.cases.checks import ERROR_BOUNDS, CorrectnessError, relative_error
from bench.cases.datasets import make_problem
from bench.cases.models import LEARNING_RATE
from bench.cases.sizes import Size
from bench.distributed import control, launcher
from bench.distributed.hostfile import (
    HostfileError,
    free_ports,
    parse_hostfile,
    read_hostfile,
    read_ring_hostfile,
    ring_hostfile,
)
from bench.distributed.launcher import DistributedError, LaunchSpec, RankGroup
from bench.distributed.measure import DistCase, DistSettings, check_weights, describe, launch_spec, scaling
from bench.distributed.pytest_plugin import parse_ranks, settings_from_options
from bench.distributed.rank import INJECTED_CRASH_STATUS
from bench.distributed.scaling import format_table, scaling_frame
from bench.engine.passes import Measurement, Schedule
from bench.engine.protocol import request_line
from bench.stats.intervals import RunTerm
from bench.stats.run_terms import RunTerms
from reference import reference_weights

REPO = Path(__file__).resolve().parents[1]
SIZE = Size(400, 25)
STEPS = 30
TIMEOUT_S = 20.0  # generous for a loaded 2-core machine; a crash must end far sooner
HANG_TIMEOUT_S = 3.0


def spec(n_ranks: int, fault: str | None = None, timeout_s: float = TIMEOUT_S, model: str = "linear") -> LaunchSpec:
    """A local ring launch of a tiny problem."""
    dist = DistSettings(ranks=(n_ranks,), timeout_s=timeout_s)
    return launch_spec(DistCase(model, n_ranks), SIZE, LEARNING_RATE, dist, fault)


def processes_in_groups(pgids: list[int]) -> list[int]:
    """Every process (zombies included) whose process group is one of `pgids`, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it ended while we looked
        pgrp = int(stat.rsplit(")", 1)[1].split()[2])  # fields after "(comm)": state, ppid, pgrp
        if pgrp in pgids:
            found.append(int(entry))
    return found


def assert_no_orphans(group: RankGroup) -> None:
    """No process the group started or heard from is left, nor anything in its process groups."""
    assert group.pids, "the group never started a process"
    for pid in group.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    if Path("/proc/self/stat").exists():
        assert processes_in_groups(group.pgids) == []


# -- hostfiles ---------------------------------------------------------------------------


def test_hostfile_in_mlx_launch_format_is_read(tmp_path):
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps([{"ssh": "m1", "ips": ["10.0.0.1"]}, {"ssh": "m2", "ips": ["10.0.0.2"]}]))
    hosts = read_hostfile(path)
    assert [h.ssh for h in hosts.hosts] == ["m1", "m2"] and hosts.hosts[1].ips == ("10.0.0.2",)
    assert not hosts.is_local
    assert hosts.first(1).hosts == hosts.hosts[:1]
    local = {"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}
    wrapped = parse_hostfile(json.dumps({"backend": "ring", "envs": ["A=1"], "hosts": [local]}))
    assert wrapped.is_local and wrapped.backend == "ring" and wrapped.envs == ("A=1",)
    assert parse_hostfile('[{"ssh": "m1"}]', require_ips=False).hosts[0].ips == ()  # MPI needs names only


@pytest.mark.parametrize(
    "text, says",
    [
        ('[{"ssh": "m1", "ips": ["10.0.0.1"]', "not valid JSON (line 1"),
        ("42", "expected a list of hosts"),
        ("[]", "lists no hosts"),
        ('{"nodes": []}', 'needs a "hosts" list'),
        ('["m1", "m2"]', "host 0 (rank 0) must be an object"),
        ('[{"ips": ["10.0.0.1"]}]', 'has no "ssh" host name'),
        ('[{"ssh": "m1", "ips": ["10.0.0.300"]}]', "'10.0.0.300' is not an IP address"),
        ('[{"ssh": "m1", "ips": "10.0.0.1"}]', '"ips" must be a list'),
        ('[{"ssh": "m1", "ips": ["10.0.0.1"]}, {"ssh": "m2"}]', 'host 1 (rank 1) (m2) lists no "ips"'),
        ('["127.0.0.1:5000", "127.0.0.1:5001"]', "this is a ring MLX_HOSTFILE"),
        ('{"hosts": [{"ssh": "m1", "ips": []}], "envs": "A=1"}', '"envs" must be a list'),
    ],
)
def test_malformed_hostfile_is_one_clear_line(tmp_path, text, says):
    path = tmp_path / "hosts.json"
    path.write_text(text)
    with pytest.raises(HostfileError) as error:
        read_hostfile(path)
    message = str(error.value)
    assert says in message and str(path) in message and "\n" not in message


def test_missing_hostfile_and_bad_options_are_one_line(tmp_path):
    with pytest.raises(HostfileError, match=r"^--dist-hostfile .*nope\.json: no such file$"):
        settings_from_options("1,2", "ring", str(tmp_path / "nope.json"), 60.0)
    with pytest.raises(ValueError, match="--dist-backend"):
        settings_from_options("1,2", "gloo", None, 60.0)
    with pytest.raises(ValueError, match="--dist-timeout"):
        settings_from_options("1,2", "ring", None, 0.0)
    assert parse_ranks("2, 1,2") == (1, 2)
    for bad in ("", "0,1", "two", "1;2"):
        with pytest.raises(ValueError, match="--dist-ranks"):
            parse_ranks(bad)


@pytest.mark.slow
def test_pytest_reports_a_malformed_hostfile_in_one_line(tmp_path):
    path = tmp_path / "hosts.json"
    path.write_text('[{"ssh": "m1", "ips": ["10.0.0.1"]}, {"ssh": "m2", "ips": ["not-an-ip"]}]')
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "bench.distributed.pytest_plugin", "--dist-hostfile", str(path),
         "--collect-only", "-q", "benchmarks/test_distributed.py"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 4  # pytest's usage error
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "not-an-ip" in line]
    assert errors == [f"ERROR: --dist-hostfile {path}: host 1 (rank 1): 'not-an-ip' is not an IP address"]


def test_ring_hostfile_round_trip_and_validation():
    assert read_ring_hostfile(ring_hostfile([20_001, 20_002])) == [[("127.0.0.1", 20_001)], [("127.0.0.1", 20_002)]]
    for bad in ('["127.0.0.1:1"]', '["127.0.0.1:x", "127.0.0.1:2"]', '["localhost:1", "127.0.0.1:2"]', "{"):
        with pytest.raises(HostfileError, match="^ring hostfile: "):
            read_ring_hostfile(bad)


# -- ports and the control protocol ------------------------------------------------------


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(4)
    assert len(set(ports)) == 4
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_free_ports_avoid_a_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert taken not in free_ports(2, first=taken)
        block = free_ports(3, first=taken - 1, consecutive=True)
        assert taken not in block and block == list(range(block[0], block[0] + 3))


def test_shards_cover_every_example_once():
    for n, ranks in ((400, 2), (1_001, 3), (5, 5)):
        bounds = [control.shard_bounds(n, ranks, r) for r in range(ranks)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_protocol_messages_round_trip():
    assert control.decode(control.encode("run", steps=5)) == {"op": "run", "steps": 5}
    with pytest.raises(control.ProtocolError):
        control.decode(b"[1, 2]")
    assert control.is_address_in_use(RuntimeError("[ring] Couldn't bind socket (error: 98)"))
    assert not control.is_address_in_use(RuntimeError("[ring] Connection refused"))


# -- real ranks ---------------------------------------------------------------------------


@pytest.mark.slow
def test_two_ranks_match_the_single_process_reference():
    problem = make_problem("linear", SIZE)
    with RankGroup(spec(2)) as group:
        assert [r["stop"] - r["start"] for r in group.ready_info] == [200, 200]
        group.run(STEPS)
        weights = group.weights()
        check = check_weights(group, DistCase("linear", 2), SIZE, LEARNING_RATE)
    expected = reference_weights("linear", problem.X, problem.y, problem.w0, LEARNING_RATE, STEPS)
    assert np.array_equal(weights[0], weights[1])  # all_sum gives every rank the same sum
    assert relative_error(weights[0], expected) <= ERROR_BOUNDS[np.dtype(np.float32)]
    assert relative_error(problem.w0.astype(np.float64), expected) > 0.1  # the weights really moved
    assert check["ranks_identical"] and check["max_rel_error"] <= check["error_bound"]
    assert_no_orphans(group)


@pytest.mark.slow
def test_a_gradient_that_is_not_summed_fails_the_check():
    # Each rank steps on its own half's gradient: plausible numbers, wrong algorithm.
    with RankGroup(spec(2, fault="no-allreduce:all")) as group:
        with pytest.raises(CorrectnessError, match="differ from the float64 reference"):
            check_weights(group, DistCase("linear", 2), SIZE, LEARNING_RATE)


@pytest.mark.slow
def test_a_request_a_rank_cannot_answer_comes_back_as_its_error_and_stops_the_group():
    # The ranks answer in the worker protocol (bench.engine.protocol): a failed request is {"ok": false, "error"}.
    with RankGroup(spec(1)) as group:
        assert group.command("ping", "ping") == [{"ok": True}]
        with pytest.raises(
            DistributedError, match=r"rank 0 .*failed during 'jump': ValueError: unknown request 'jump'"
        ):
            group.command("jump", "jump")
        with pytest.raises(DistributedError, match="the rank group is stopped"):
            group.run(1)
    assert_no_orphans(group)


@pytest.mark.slow
def test_a_taken_port_is_avoided_by_starting_again():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        picks = []

        def picker(count, **kwargs):  # the first pick collides, as a port taken after it was chosen would
            picks.append(free_ports(count, **kwargs))
            return [taken] + picks[-1][1:] if len(picks) == 1 else picks[-1]

        with RankGroup(spec(2), port_picker=picker) as group:
            assert group.attempts == 2 and group.run(2) == 2
    assert_no_orphans(group)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault, during, says",
    [
        ("crash:1", "run", f"rank 1 (pid {{pid}}) exited with status {INJECTED_CRASH_STATUS} during 'run 5 steps'"),
        (
            "crash-at-start:0",
            "start",
            f"exited with status {INJECTED_CRASH_STATUS} during 'start (2 ranks, ring backend)'",
        ),
    ],
)
def test_a_crashing_rank_ends_the_run_at_once(fault, during, says):
    group = RankGroup(spec(2, fault), keep_logs_on_failure=False)
    start = time.monotonic()
    with pytest.raises(DistributedError) as error:
        with group:
            group.run(5)
    elapsed = time.monotonic() - start
    message = str(error.value)
    pid = group.pids[1] if fault.endswith(":1") else group.pids[0]
    assert says.format(pid=pid) in message and "injected fault" in message and "\n" not in message
    assert elapsed < TIMEOUT_S  # noticed from the dead rank, not by waiting for the timeout
    assert_no_orphans(group)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault, says",
    [("hang:1", "did not answer 'run 5 steps' within 3 s"), ("hang-at-start:1", "0 of 2 ranks ready after 3 s")],
)
def test_a_hanging_rank_ends_the_run_within_the_timeout(fault, says):
    # The hanging rank ignores SIGTERM, as stuck native code can: only SIGKILL ends it.
    group = RankGroup(spec(2, fault, timeout_s=HANG_TIMEOUT_S), keep_logs_on_failure=False)
    start = time.monotonic()
    with pytest.raises(DistributedError) as error:
        with group:
            group.run(5)
    elapsed = time.monotonic() - start
    assert says in str(error.value) and "\n" not in str(error.value)
    assert elapsed < 2 * HANG_TIMEOUT_S + 10  # start-up, the timeout, then SIGTERM's grace and SIGKILL
    assert_no_orphans(group)


LOCAL_HOSTS = [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2  # mlx.launch starts these without ssh


@pytest.mark.slow
def test_a_hostfile_run_goes_through_mlx_launch_and_stops_cleanly(tmp_path):
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(LOCAL_HOSTS))
    dist = DistSettings(ranks=(2,), hostfile=read_hostfile(path), timeout_s=TIMEOUT_S)
    assert dist.launcher == "mlx.launch"
    case = DistCase("logistic", 2, launcher=dist.launcher)
    with RankGroup(launch_spec(case, SIZE, LEARNING_RATE, dist)) as group:
        assert len(group.pids) == 3  # mlx.launch and the two ranks it started
        check = check_weights(group, case, SIZE, LEARNING_RATE)
    assert check["ranks_identical"] and check["max_rel_error"] <= check["error_bound"]
    assert_no_orphans(group)

    crashing = RankGroup(launch_spec(case, SIZE, LEARNING_RATE, dist, fault="crash:1"), keep_logs_on_failure=False)
    with pytest.raises(DistributedError, match=r"rank 1 \(pid \d+\) ended .* during 'run 5 steps'"):
        with crashing:
            crashing.run(5)
    assert_no_orphans(crashing)


@pytest.mark.slow
def test_a_failing_case_does_not_lose_the_other_results(tmp_path):
    # Rank 1 crashes in every 2-rank case; the 1-rank cases must still run and be saved.
    # TMPDIR: the failed case keeps its ranks' logs, here rather than in the system's /tmp.
    env = dict(os.environ, MLX_SGD_BENCH_DIST_FAULT="crash:1", TMPDIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_distributed.py", "-p", "bench.distributed.pytest_plugin",
         "--benchmark-only", "--sizes", "400x25", "--rounds", "3", "--round-time", "0.005", "--dist-timeout", "20",
         "-k", "linear", f"--benchmark-storage=file://{tmp_path / 'results'}", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 failed, 1 passed" in out
    failure = [line for line in out.splitlines() if "exited with status" in line]
    assert len(failure) >= 1 and "linear-mlx-data-parallel-step-cpu-ring-2ranks-n400-d25: rank 1" in failure[0]
    saved = [
        b["extra_info"] for f in tmp_path.glob("results/*/*.json") for b in json.loads(f.read_text())["benchmarks"]
    ]
    assert list(tmp_path.glob("mlx-sgd-dist-*/rank-1-1.log"))  # the logs the failure line points to
    assert [(i["n_ranks"], i["scenario"]) for i in saved] == [(1, "distributed")]


# -- figures and many machines -----------------------------------------------------------


def fake_result(steps_per_s: float, n_ranks: int, compute_s: float, collective_s: float, model: str = "linear") -> dict:
    """One saved benchmark, with the extra_info fields the suite writes."""
    size = Size(100_000, 100)
    info = describe(DistCase(model, n_ranks), size, 10, LEARNING_RATE)
    round_s = 10 / steps_per_s
    info.update(
        steps_per_s=steps_per_s,
        compute_s_per_step=compute_s,
        collective_s_per_step=collective_s,
        max_rel_error=1e-7,
        error_bound=1e-4,
        samples_per_s=steps_per_s * size.n_examples,
    )
    name = f"test_distributed[{info['case_id']}]"
    stats = {"median": round_s, "q1": round_s * 0.99, "q3": round_s * 1.01, "rounds": 5, "data": [round_s] * 5}
    return {
        "name": name,
        "fullname": f"benchmarks/test_distributed.py::{name}",
        "params": {},
        "stats": stats,
        "extra_info": info,
    }


def write_machine(root: Path, machine: str, benchmarks: list[dict]) -> Path:
    """A results/<machine>/ folder with one pytest-benchmark file, as that machine would save it."""
    folder = root / machine
    folder.mkdir(parents=True)
    doc = {
        "machine_info": {"node": machine, "mlx_version": "0.32.4", "cpu_model": f"{machine} cpu", "usable_cpus": 8},
        "commit_info": {"id": "0" * 40, "dirty": False},
        "benchmarks": benchmarks,
        "datetime": "2026-01-01T00:00:00+00:00",
        "version": "5.3.1",
    }
    path = folder / "0001_0000000_20260101_000000.json"
    path.write_text(json.dumps(doc))
    return path


TWO_MACHINES = {
    # machine: (steps/s at N=1, at N=2): one machine scales, the other's loopback all_sum eats the gain
    "studio": ((100.0, 1, 9e-3, 1e-6), (180.0, 2, 5e-3, 0.5e-3)),
    "laptop": ((80.0, 1, 12e-3, 1e-6), (60.0, 2, 7e-3, 9e-3)),
}


def test_scaling_frame_pairs_each_machine_with_its_own_one_rank_run():
    rows = [dict(fake_result(*r)["extra_info"], machine=m) for m, runs in TWO_MACHINES.items() for r in runs]
    frame = scaling_frame(rows)
    got = {(m, n): (s, e) for m, n, s, e in zip(frame["machine"], frame["N"], frame["speedup"], frame["efficiency"])}
    assert got[("studio", 2)] == pytest.approx((1.8, 0.9)) and got[("laptop", 2)] == pytest.approx((0.75, 0.375))
    assert got[("studio", 1)] == pytest.approx((1.0, 1.0))
    comm = frame.set_index(["machine", "N"])["comm share"]
    assert comm[("laptop", 2)] == pytest.approx(9 / 16)
    text = format_table(frame, markdown=True)
    assert text.splitlines()[0].startswith("| machine | model | size |") and "laptop" in text and "studio" in text
    # Without its N = 1 run a row has no speedup rather than a wrong one.
    alone = scaling_frame([fake_result(*TWO_MACHINES["studio"][1])["extra_info"]])
    assert alone["speedup"].isna().all()


def test_report_combines_two_machines(tmp_path):
    report_load = pytest.importorskip("bench.report.load")
    results = tmp_path / "results"
    for machine, runs in TWO_MACHINES.items():
        write_machine(results, machine, [fake_result(*r) for r in runs])
    tidy = report_load.load_results([results], warn=lambda message: pytest.fail(message))
    assert sorted(tidy["machine"].unique()) == ["laptop/laptop (laptop cpu)", "studio/studio (studio cpu)"]
    frame = scaling_frame(tidy)
    assert len(frame) == 4 and frame["machine"].nunique() == 2
    by = frame.set_index(["machine", "N"])
    assert by.loc[("studio/studio (studio cpu)", 2), "efficiency"] == pytest.approx(0.9)
    assert by.loc[("laptop/laptop (laptop cpu)", 2), "efficiency"] == pytest.approx(0.375)


def test_report_summary_shows_both_machines_distributed_runs(tmp_path):
    cli = pytest.importorskip("bench.report.make_report")
    results, out = tmp_path / "results", tmp_path / "report"
    for machine, runs in TWO_MACHINES.items():
        write_machine(results, machine, [fake_result(*r) for r in runs])
    assert cli.main([str(results), "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    section = summary.split("## Distributed runs", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and "linear" in line]
    assert len(rows) == 4
    assert sum("studio" in row for row in rows) == 2 and sum("laptop" in row for row in rows) == 2


def test_case_ids_are_readable_filters():
    case = DistCase("logistic", 2)
    assert case.case_id(Size(1_000, 100)) == "logistic-mlx-data-parallel-step-cpu-ring-2ranks-n1000-d100"
    assert asdict(case) == {"model": "logistic", "n_ranks": 2, "backend": "ring", "device": "cpu", "launcher": "local"}


def test_a_hostfile_ssh_name_that_ssh_would_read_as_an_option_is_refused():
    text = '[{"ssh": "-oProxyCommand=touch /tmp/x", "ips": ["10.0.0.1"]}, {"ssh": "host2", "ips": ["10.0.0.2"]}]'
    with pytest.raises(HostfileError, match='host 0 .*starts with "-"') as caught:
        parse_hostfile(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "text, says",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('[{"ssh": "h1", "ips": ["10.0.0.1"], "n": ' + "9" * 5_000 + "}]", "a number too long"),
        ("[" + "1" * 5_000 + "]", "a number too long"),
    ],
)
def test_a_deeply_nested_or_huge_number_hostfile_is_the_one_line_hostfile_error(tmp_path, text, says):
    path = tmp_path / "hosts.json"
    path.write_text(text)
    for read in (lambda: read_hostfile(path), lambda: read_ring_hostfile(text)):
        with pytest.raises(HostfileError, match=says) as caught:
            read()
        assert "\n" not in str(caught.value)


def _fake_rank(address: str, token: str, rank: int, closed: list) -> None:
    """A process-less rank: hello with `token`, then ready; records whether the parent closed it unanswered."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        try:
            sock.sendall(control.encode("hello", pid=None, rank=rank, host=f"fake-{token[:4]}", token=token))
            sock.sendall(control.encode("ready", rank=rank, size=1, host=f"fake-{token[:4]}"))
            answer = sock.makefile("rb").readline()  # the quit request at the end for a rank of the group
        except (ConnectionResetError, BrokenPipeError):
            answer = b""  # closed with our "ready" unread: the kernel answers with a reset
        closed.append((token, answer))  # b"" when the parent dropped us


def test_a_rank_without_the_groups_token_is_dropped(monkeypatch):
    import threading

    group = RankGroup(spec(1), keep_logs_on_failure=False)
    closed: list = []

    def spawn(args):
        address, token = args[args.index("--control") + 1], group.token
        impostors = [
            threading.Thread(target=_fake_rank, args=(address, wrong, 0, closed), daemon=True)
            for wrong in ("0" * len(token), "")  # a guessed token, and none
        ]

        def genuine():
            for impostor in impostors:  # the impostors first: the group must be waiting still when they are cut off
                impostor.start()
                impostor.join()
            _fake_rank(address, token, 0, closed)

        threading.Thread(target=genuine, daemon=True).start()

    monkeypatch.setattr(group, "_spawn_local", spawn)
    with group:
        assert [r["host"] for r in group.ready_info] == [f"fake-{group.token[:4]}"]
        assert len(group.token) == 32 and group.token != RankGroup(spec(1)).token
    deadline = time.monotonic() + 5
    while len(closed) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dict(closed) == {"0" * 32: b"", "": b"", group.token: request_line("quit")}  # impostors: no answer


def test_a_silent_connection_during_start_up_is_dropped_and_the_run_goes_on(monkeypatch):
    import threading

    monkeypatch.setattr(launcher, "HELLO_DEADLINE_S", 0.3)
    group = RankGroup(spec(1), keep_logs_on_failure=False)
    closed: list = []
    silent_heard: list = []

    def silent(address: str) -> None:  # connects, says nothing, waits to be dropped
        host, _, port = address.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            silent_heard.append(sock.recv(100))  # b"" once the parent closed it

    def spawn(args):
        address = args[args.index("--control") + 1]
        threading.Thread(target=silent, args=(address,), daemon=True).start()
        time.sleep(0.1)  # the silent one is accepted first; the rank comes while it is still connected
        threading.Thread(target=_fake_rank, args=(address, group.token, 0, closed), daemon=True).start()

    monkeypatch.setattr(group, "_spawn_local", spawn)
    with group:  # a TypeError here before: the silent connection was counted as a rank without "ready"
        assert [r["host"] for r in group.ready_info] == [f"fake-{group.token[:4]}"]
    deadline = time.monotonic() + 5
    while not silent_heard and time.monotonic() < deadline:
        time.sleep(0.01)
    assert silent_heard == [b""]


def test_the_groups_token_is_passed_in_the_environment_not_on_the_command_line(monkeypatch, tmp_path):
    group = RankGroup(spec(2), keep_logs_on_failure=False)
    started: list = []

    def record(label, argv, env):
        started.append((argv, env))

    monkeypatch.setattr(group, "_popen", record)
    group.log_dir, group.attempts = tmp_path, 1
    argv = [sys.executable, "-m", "bench.distributed.rank", "--control", "127.0.0.1:1"]
    group._spawn_local(argv)
    assert len(started) == 2
    for argv, env in started:
        assert not any(group.token in word for word in argv) and "--token" not in argv
        assert env[control.TOKEN_ENV] == group.token


def test_the_hostfile_handed_to_mlx_launch_carries_the_token_and_only_its_owner_reads_it(tmp_path):
    hosts = parse_hostfile('[{"ssh": "h1", "ips": ["10.0.0.1"]}]')
    path = hosts.write_private(tmp_path / "hostfile.json", f"{control.TOKEN_ENV}=secret")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["envs"] == [f"{control.TOKEN_ENV}=secret"]


def measured(case_id: str, step_s: list[float], probes_s: list[float]) -> Measurement:
    """A case timed in one pass per step time (3 rounds of K = 10 steps each), with the machine's probe before each."""
    measurement = Measurement(case_id, benchmark=None, steps_per_round=10, rounds_per_pass=3)
    for pass_id, (seconds, probe) in enumerate(zip(step_s, probes_s), start=1):
        measurement.round_times += [seconds * 10] * 3
        measurement.round_pass += [pass_id] * 3
        measurement.pass_probe_s[pass_id] = probe
    return measurement


def speedup_of(run_terms: RunTerms | None = None) -> dict:
    size = Size(1000, 100)
    one, two = DistCase("linear", 1), DistCase("linear", 2)
    base = measured(one.case_id(size), [2.0e-3, 2.1e-3, 2.0e-3], [1e-3] * 3)
    case = measured(two.case_id(size), [1.0e-3, 1.1e-3, 1.05e-3], [1e-3] * 3)
    return scaling(two, size, case, Schedule(measurements=[base, case], run_terms=run_terms or RunTerms()))


def test_the_speedup_is_taken_pass_by_pass_with_an_interval_that_widens_with_the_between_run_term():
    alone = speedup_of()
    term = RunTerm(0.05**2, 20.0, "test")
    with_term = speedup_of(RunTerms({"ratio/*/*": term}, "test"))
    # Pass by pass: 2.0 / 1.0, 2.1 / 1.1, 2.0 / 1.05; the figure is their median.
    assert alone["speedup"] == pytest.approx(2.1 / 1.1) == with_term["speedup"]
    assert alone["scaling_efficiency"] == pytest.approx(alone["speedup"] / 2)
    for found in (alone, with_term):
        assert found["speedup_ci_low"] < found["speedup"] < found["speedup_ci_high"]
    # The between-run term (bench.stats.run_terms) is added to the passes' own: the interval widens.
    assert (
        with_term["speedup_ci_low"] < alone["speedup_ci_low"]
        and with_term["speedup_ci_high"] > alone["speedup_ci_high"]
    )
