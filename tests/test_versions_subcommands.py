"""The release runner's modes as subcommands: the same as their flags, each with its own help and typed settings."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from bench import versions
from bench.console import command
from bench.versions import arguments, modes
from bench.versions.modes import BisectSettings, CompareSettings, HistorySettings, SelfTestSettings, mode_settings

CASE = "linear-mlx-compiled-step-cpu-b32-n1000-d10"

# (subcommand form, flag form, settings type): each pair must parse alike.
FORMS = [
    (["compare", "0.30.0", "0.32.4"], ["0.30.0", "0.32.4"], CompareSettings),
    (
        ["compare", "0.30.0", "0.32.4", "--mode", "runs", "--passes", "2", "--", "-k", "linear"],
        ["0.30.0", "0.32.4", "--mode", "runs", "--passes", "2", "--", "-k", "linear"],
        CompareSettings,
    ),
    (["history"], ["--history"], HistorySettings),
    (["history", "0.27.1", "0.29.1", "--sessions", "8"], ["--history", "0.27.1", "0.29.1", "--sessions", "8"], None),
    (
        ["bisect", CASE, "0.30.0", "0.32.4", "--cpus", "none"],
        ["--bisect", CASE, "0.30.0", "0.32.4", "--cpus", "none"],
        BisectSettings,
    ),  # fmt: skip
    (
        ["self-test", "0.32.4", "--case-order", "shuffle"],
        ["--self-test", "0.32.4", "--case-order", "shuffle"],
        SelfTestSettings,
    ),  # fmt: skip
]


def _parse(argv: list[str], tmp_path) -> argparse.Namespace:
    cut = argv.index("--") if "--" in argv else len(argv)
    paths = ["--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    return versions.parse_args([*argv[:cut], *paths, *argv[cut:]])


@pytest.mark.parametrize(("subcommand", "flags", "kind"), FORMS)
def test_a_subcommand_parses_as_its_flag_does(tmp_path, subcommand, flags, kind):
    by_name, by_flag = _parse(subcommand, tmp_path), _parse(flags, tmp_path)
    assert vars(by_name) == vars(by_flag)
    assert by_name.command == subcommand[0]
    settings = mode_settings(by_name)
    assert settings == mode_settings(by_flag)
    assert kind is None or type(settings) is kind


def test_each_mode_gets_its_own_frozen_settings(tmp_path):
    bisect = mode_settings(_parse(["bisect", CASE, "0.30.0", "0.32.4", "--sessions", "6"], tmp_path))
    assert (bisect.case_id, bisect.old, bisect.new) == (CASE, "0.30.0", "0.32.4")
    assert bisect.paired.sessions == 6 and bisect.results == (tmp_path / "r").resolve()
    assert not hasattr(bisect, "passes")  # compare's --mode runs options are compare's alone
    history = mode_settings(_parse(["history", "0.27.1", "0.29.1"], tmp_path))
    assert history.releases == ("0.27.1", "0.29.1") and history.sizes == "history"
    compare = mode_settings(_parse(["compare", "0.30.0", "0.32.4", "--cases", "linear-*"], tmp_path))
    assert compare.cases == ("linear-*",) and [t.label for t in compare.targets] == ["0.30.0", "0.32.4"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        compare.threshold = 0.5  # a mode cannot change what another part of the run reads


def test_claiming_the_results_folder_gives_a_copy_with_the_folder_made(tmp_path):
    settings = mode_settings(_parse(["self-test", "0.32.4"], tmp_path))
    claimed = arguments.claim_results(settings)
    assert claimed.results.is_dir() and claimed == settings  # a named folder: used as it is, once empty


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bisect", CASE], "the following arguments are required: OLD, NEW"),
        (["self-test"], "the following arguments are required: RELEASE"),
        (["compare", "0.30.0"], "name at least two different ones"),
        (["--sizes", "quick", "history", "0.30.0"], "history is a subcommand: it comes first"),
        (["history", "--history"], "unrecognized arguments: --history"),
        (["bisect", "linear-mlx-nosuch", "0.30.0", "0.32.4"], "--bisect 'linear-mlx-nosuch' is not a case"),
    ],
)
def test_a_bad_subcommand_line_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        versions.parse_args(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m bench.versions: error:") and message in err[0]


@pytest.mark.parametrize("name", modes.MODES)
def test_each_subcommand_has_its_own_help(name, capsys):
    with pytest.raises(SystemExit) as stop:
        versions.parse_args([name, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m bench.versions {name} ")
    assert "--sessions" in out and "Exit status:" in out  # every option, and the statuses


def test_the_commands_help_lists_the_subcommands_first(capsys):
    with pytest.raises(SystemExit):
        versions.parse_args(["--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    for name in modes.MODES:
        assert f"python -m bench.versions {name} " in usage
    assert "(the same, as flags)" in usage


@pytest.mark.parametrize(
    ("subcommand", "flags"),
    [
        (["compare", "0.30.0", "0.32.4"], ["0.30.0", "0.32.4"]),
        (["compare", "0.30.0", "0.32.4", "--mode", "runs"], ["0.30.0", "0.32.4", "--mode", "runs"]),
        (["self-test", "0.32.4"], ["--self-test", "0.32.4"]),
        (["bisect", CASE, "0.30.0", "0.32.4"], ["--bisect", CASE, "0.30.0", "0.32.4"]),
    ],
)
def test_a_dry_run_prints_the_same_plan_either_way_and_through_the_console_command(tmp_path, capsys, subcommand, flags):
    paths = ["--dry-run", "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    printed = []
    for run in (
        lambda: versions.main([*subcommand, *paths]),
        lambda: versions.main([*flags, *paths]),
        lambda: command.main(["versions", *subcommand, *paths]),
    ):
        assert run() == versions.EXIT_OK
        printed.append(capsys.readouterr().out)
    assert printed[0].startswith("plan: ") and printed[0] == printed[1] == printed[2]
    assert not (tmp_path / "r").exists()  # a dry run claims no folder
