"""The suite's child processes: they die with their parent, the client's reads keep their deadline, bytecode stays private."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from bench.engine import lifetime
from bench.engine.client import MAX_TIMEOUT_S, WorkerClient, WorkerTimeout, clamp_timeout, private_pycache
from bench.versions import runs

ROOT = Path(__file__).resolve().parents[1]
GONE_WITHIN_S = 2.0  # the bound: no worker left a second or two after its parent died

posix_only = pytest.mark.skipif(os.name != "posix", reason="process groups and signals are POSIX")


def gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie waiting for init to reap it counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pid: int, within_s: float = GONE_WITHIN_S) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.02)
    return gone(pid)


def python_script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def start_parent(tmp_path: Path, body: str) -> tuple[subprocess.Popen, int]:
    """A parent process running `body`, which prints its child's pid; (the parent, the child's pid)."""
    parent = subprocess.Popen(
        python_script(tmp_path, "parent.py", body),
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    line = parent.stdout.readline()
    assert line.strip().isdigit(), f"the parent printed {line!r}"
    return parent, int(line)


def kill_everything(parent: subprocess.Popen, child: int) -> None:
    for pid in (parent.pid, child):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    parent.wait(5)


# --------------------------------------------------------------------------- workers die with their parent


@posix_only
def test_a_worker_dies_within_seconds_of_a_sigkill_of_its_parent(tmp_path):
    parent, worker = start_parent(
        tmp_path,
        """
        import time
        from bench.engine.client import WorkerClient
        worker = WorkerClient()  # the real worker module
        print(worker.pid, flush=True)
        time.sleep(60)
        """,
    )
    try:
        assert not gone(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        assert wait_gone(worker), f"worker {worker} outlived its SIGKILLed parent"
    finally:
        kill_everything(parent, worker)


@posix_only
def test_the_portable_watch_ends_a_child_whose_parent_died_without_the_kernels_help(tmp_path):
    # A child started without the death signal (as on macOS): only its own watch can end it.
    parent, child = start_parent(
        tmp_path,
        """
        import os, subprocess, sys, time
        code = "from bench.engine import lifetime; lifetime.watch_parent(0.05, kernel=False); import time; time.sleep(60)"
        # Plain Popen: no death signal from the kernel; cwd is the checkout, so `bench` imports.
        child = subprocess.Popen([sys.executable, "-c", code], env={"PYTHONPATH": os.getcwd()}, start_new_session=True)
        print(child.pid, flush=True)
        time.sleep(60)
        """,
    )
    try:
        time.sleep(0.5)  # the child is up and watching
        assert not gone(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        assert wait_gone(child), f"child {child} outlived its SIGKILLed parent"
    finally:
        kill_everything(parent, child)


@posix_only
def test_a_child_whose_named_parent_is_already_dead_ends_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{lifetime.PARENT_ENV: str(dead.pid)})
    code = "from bench.engine import lifetime; lifetime.watch_parent(); import time; time.sleep(30)"
    status = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, timeout=20).returncode
    assert status == lifetime.ORPHAN_STATUS


@posix_only
def test_a_worker_dies_when_the_release_runner_stops_its_pytest_on_timeout(tmp_path):
    # runs._stream stops a run past --timeout with SIGTERM to its process group, which ends Python at once,
    # without its clean-up: the worker (a session of its own, out of that group) must go too.
    pid_file = tmp_path / "worker.pid"
    cmd = python_script(
        tmp_path,
        "fake_pytest.py",
        f"""
        import sys, time
        from pathlib import Path
        from bench.engine.client import WorkerClient
        worker = WorkerClient(cmd=[sys.executable, "-c", "import time; time.sleep(60)"])
        Path({str(pid_file)!r}).write_text(str(worker.pid))
        time.sleep(60)
        """,
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    status = runs._stream(cmd, ROOT, env, tmp_path / "run.log", echo=False, timeout=2.0)
    assert status == -signal.SIGTERM and time.monotonic() - started < 15
    worker = int(pid_file.read_text())
    try:
        assert wait_gone(worker), f"worker {worker} outlived the pytest run stopped on its timeout"
    finally:
        if not gone(worker):
            os.kill(worker, signal.SIGKILL)


# --------------------------------------------------------------------------- the client's reads


def fake_worker(tmp_path: Path, body: str) -> WorkerClient:
    """A worker that answers its first request as `body` says (its stdout: `out`, binary)."""
    script = f"""
    import os, sys, time
    out = sys.stdout.buffer
    sys.stdin.readline()
    {textwrap.indent(textwrap.dedent(body), "    ").strip()}
    time.sleep(60)
    """
    cmd = python_script(tmp_path, "fake_worker.py", script)
    return WorkerClient("fake worker", cmd, tmp_path, {"PATH": os.environ.get("PATH", "")}, None, tmp_path / "w.log")


def test_an_answer_that_arrives_with_a_stray_line_is_read_not_timed_out(tmp_path):
    worker = fake_worker(tmp_path, """out.write(b'a stray print\\n{"ok": true, "x": 1}\\n'); out.flush()""")
    try:
        assert worker.request({"cmd": "hello"}, timeout=5) == {"ok": True, "x": 1}
        assert worker.alive  # a healthy worker is not killed
    finally:
        worker.kill()


def test_an_answer_split_across_writes_and_stray_json_beside_it_are_read(tmp_path):
    worker = fake_worker(
        tmp_path,
        """
        out.write(b'42\\n[1]\\n{"not": "an answer"}\\n{"ok": tr'); out.flush(); time.sleep(0.2)
        out.write(b'ue, "x": 2}\\n'); out.flush()
        """,
    )
    try:
        assert worker.request({"cmd": "hello"}, timeout=5) == {"ok": True, "x": 2}
    finally:
        worker.kill()


def test_a_partial_line_does_not_hold_the_reader_past_its_deadline(tmp_path):
    worker = fake_worker(tmp_path, """out.write(b'{"ok": true, "never": "finis'); out.flush()""")
    started = time.monotonic()
    with pytest.raises(WorkerTimeout, match="took over 0.5 s"):
        worker.request({"cmd": "hello"}, timeout=0.5)
    assert time.monotonic() - started < 3.0 and not worker.alive


@pytest.mark.parametrize("timeout", [1e308, float("inf"), float("nan")])
def test_an_absurd_timeout_is_clamped_not_an_overflow(tmp_path, timeout):
    worker = fake_worker(tmp_path, """out.write(b'{"ok": true}\\n'); out.flush()""")
    try:
        assert worker.request({"cmd": "hello"}, timeout=timeout) == {"ok": True}
    finally:
        worker.kill()
    assert clamp_timeout(timeout) == MAX_TIMEOUT_S and clamp_timeout(-3.0) == 0.0 and clamp_timeout(None) is None


# --------------------------------------------------------------------------- compiled bytecode


@posix_only
def test_workers_keep_bytecode_in_a_private_new_folder_not_a_predictable_shared_name(tmp_path):
    predictable = Path(tempfile.gettempdir()) / f"mlx-sgd-bench-pycache-{os.getuid()}"
    folder = private_pycache()
    assert folder is not None and folder != predictable and folder.parent == Path(tempfile.gettempdir())
    info = os.lstat(folder)
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700
    assert private_pycache() == folder  # one per session: its workers share what they compiled
    worker = fake_worker(
        tmp_path,
        """
        import json
        out.write(json.dumps({"ok": True, "prefix": os.environ.get("PYTHONPYCACHEPREFIX")}).encode() + b"\\n")
        out.flush()
        """,
    )
    try:
        assert worker.request({"cmd": "hello"}, timeout=10)["prefix"] == str(folder)
    finally:
        worker.kill()


def test_a_ctrl_c_during_a_spawn_is_delivered_after_it_never_lost():
    """A KeyboardInterrupt raised inside the interpreter's at-fork callbacks (run by a preexec_fn) is reported as
    ignored and lost: a Ctrl-C in a later pass let a run go on to its end on Python 3.13. spawning() holds it."""
    from bench.engine import lifetime

    # Python's own Ctrl-C handler, whatever this process inherited (a shell's background job starts with SIGINT
    # ignored, and Python then leaves it ignored).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_inside_spawning(lifetime)
    finally:
        signal.signal(signal.SIGINT, inherited)


def _interrupt_inside_spawning(lifetime) -> None:
    reached_the_end_of_the_block = False
    with pytest.raises(KeyboardInterrupt):
        with lifetime.spawning():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # were it not held, the KeyboardInterrupt would be raised here
            reached_the_end_of_the_block = True
    assert reached_the_end_of_the_block


@posix_only
@pytest.mark.parametrize("ignores_term", [False, True])
def test_stop_groups_ends_a_child_and_all_it_started_sigkill_after_the_grace(tmp_path, ignores_term):
    # One way to stop any child of the suite (workers, rank groups, release runs): SIGTERM to its process
    # group, SIGKILL to what is left after the grace, and a wait until the whole group is gone.
    body = f"""
        import os, signal, subprocess, sys, time
        if {ignores_term}:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as stuck native code would: only SIGKILL ends it
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(child.pid, flush=True)
        time.sleep(60)
    """
    process = subprocess.Popen(
        python_script(tmp_path, "group.py", body), stdout=subprocess.PIPE, text=True, **lifetime.start_options()
    )
    grandchild = int(process.stdout.readline())
    started = time.monotonic()
    lifetime.stop_groups([process], term_grace_s=0.5, kill_grace_s=5.0)
    # SIGTERM first; SIGKILL only for what ignored it, once the grace ran out.
    assert process.returncode == (-signal.SIGKILL if ignores_term else -signal.SIGTERM)
    assert not ignores_term or time.monotonic() - started >= 0.5
    assert gone(grandchild) and not lifetime.group_alive(process.pid)  # the whole group, waited for
    process.stdout.close()
