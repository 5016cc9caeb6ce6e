"""The one atomic writer (bench.results.files): complete or untouched, no hard links, the umask's mode."""

from __future__ import annotations

import errno
import json
import os
from types import SimpleNamespace

import pytest

from bench.results import files
from bench.session import benchmark_adapter
from bench.versions import verdict_files


def _no_links(monkeypatch):
    def link(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", link)


def test_a_run_saves_on_a_file_system_without_hard_links(tmp_path, monkeypatch):
    # Case: on FAT/exFAT or a network mount os.link fails with EPERM; the session's results were lost.
    from pytest_benchmark.storage.file import FileStorage

    _no_links(monkeypatch)
    storage = FileStorage(tmp_path, SimpleNamespace(info=lambda text: None), default_machine_id="m")
    benchmark_adapter.exclusive_saves(SimpleNamespace(_benchmarksession=SimpleNamespace(storage=storage)))
    storage.save({"run": 1}, "abc")
    storage.save({"run": 2}, "abc")
    folder = tmp_path / "m"
    assert sorted(p.name for p in folder.iterdir()) == ["0001_abc.json", "0002_abc.json"]
    assert [json.loads((folder / n).read_text())["run"] for n in ("0001_abc.json", "0002_abc.json")] == [1, 2]


def test_every_writer_works_without_hard_links(tmp_path, monkeypatch):
    _no_links(monkeypatch)
    verdict_files.write_json(tmp_path / "self-test.json", {"kind": "x"})
    files.write_atomic(tmp_path / "a.txt", "text")
    assert json.loads((tmp_path / "self-test.json").read_text()) == {"kind": "x"}
    assert (tmp_path / "a.txt").read_text() == "text"


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_leaves_the_previous_file_and_nothing_else_changed(tmp_path, monkeypatch, where):
    # Case: a full disk truncated the previous complete record in place.
    target = tmp_path / "versions-run.json"
    target.write_text('{"complete": true}\n')
    neighbour = tmp_path / ".versions-run.json.mine"  # a user's hidden file of a similar name
    neighbour.write_text("mine")

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(files.os, "fsync", full)
        content = '{"complete": false}'
    else:

        def content(handle):
            handle.write('{"half')
            full()

    with pytest.raises(OSError) as raised:
        files.write_atomic(target, content)
    assert raised.value.errno == errno.ENOSPC
    assert files.describe_error(raised.value) == "No space left on device"
    assert target.read_text() == '{"complete": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [".versions-run.json.mine", "versions-run.json"]


def test_an_interrupted_save_leaves_no_temporary_file(tmp_path):
    def interrupted(handle):
        handle.write("part")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(tmp_path / "out.json", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_a_numbered_save_that_fails_gives_back_its_number(tmp_path, monkeypatch):
    (tmp_path / "0001_run.json").write_text("another run's")

    def failing_replace(src, dst):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(OSError):
        files.save_numbered(tmp_path, "run.json", b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001_run.json"]
    assert (tmp_path / "0001_run.json").read_text() == "another run's"


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield 0o640
    finally:
        os.umask(old)


def test_every_output_has_the_mode_the_umask_gives(tmp_path, umask_027):
    # Case: the release runner's records were written 0600 while the report's outputs followed the umask.
    from bench.report.outputs import all_or_nothing, write_text
    from bench.versions.dispatch import Manifest

    verdicts = verdict_files.verdicts_document({}, {}, [], [])
    json_path, csv_path = verdict_files.write_verdicts(tmp_path, verdicts)
    verdict_files.write_json(tmp_path / verdict_files.SELF_TEST_JSON, {"status": "pass"})
    manifest = Manifest(tmp_path, {"releases": []})
    saved = files.save_numbered(tmp_path, "run.json", b"{}")
    with all_or_nothing(tmp_path / "report") as out:
        page = write_text("<html>", out / "index.html")
    written = [json_path, csv_path, tmp_path / verdict_files.SELF_TEST_JSON, manifest.path, saved, page]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: oct(umask_027) for p in written}


def test_one_table_of_exit_statuses_used_by_every_command_and_documented():
    import re
    from pathlib import Path

    from bench.console import command, entry, exit_codes
    from bench.report import make_report
    from bench.stats import verdict_engine
    from bench.versions import common, compare, selftest

    table = exit_codes.ALL
    assert len(set(table.values())) == len(table)  # no status means two things
    assert (make_report.EXIT_OK, make_report.EXIT_REGRESSION, make_report.EXIT_ERROR) == (0, 1, table["USAGE"])
    assert make_report.EXIT_INCONCLUSIVE == verdict_engine.EXIT_INCONCLUSIVE == compare.EXIT_INCONCLUSIVE == 4
    assert (common.EXIT_USAGE, common.EXIT_INCOMPLETE, selftest.EXIT_UNFIT) == (2, 3, 5)
    assert command.EXIT_USAGE == table["USAGE"] and entry.EXIT_BROKEN_PIPE == table["BROKEN_PIPE"]
    docs = (Path(__file__).resolve().parents[1] / "docs" / "reports.md").read_text()
    documented = dict(re.findall(r"^\| (\d+) \| ([A-Z_]+) \|", docs, re.M))
    assert {name: int(status) for status, name in documented.items()} == table
