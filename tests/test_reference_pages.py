"""docs/reference/: one page per command, exactly what its parser gives now, linked from the page that explains it."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.console import reference
from bench.console.command import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]


def test_every_reference_page_is_what_its_parser_gives_now():
    stale = reference.stale()
    assert stale == [], f"docs/reference/{', '.join(stale)} differ from the parsers: run `{reference.REGENERATE}`"


def test_no_page_in_docs_reference_is_left_from_a_command_that_is_gone():
    assert {p.name for p in reference.REFERENCE_DIR.glob("*.md")} == set(reference.pages())


def test_every_option_of_every_parser_is_on_its_page():
    for command in reference.COMMANDS:
        page = (reference.REFERENCE_DIR / command.page).read_text()
        for action in command.parser()._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for flag in action.option_strings:
                assert f"`{flag}" in page, f"{flag} is not on docs/reference/{command.page}"


def test_a_changed_help_text_makes_the_check_fail_and_writing_mends_it(tmp_path, capsys):
    assert reference.main(["--out", str(tmp_path)]) == 0
    assert reference.main(["--check", "--out", str(tmp_path)]) == 0
    page = tmp_path / "report.md"
    page.write_text(page.read_text().replace("folder for the report's files", "folder for the files"))
    assert reference.main(["--check", "--out", str(tmp_path)]) == 1
    assert f"report.md differs from its parser: run `{reference.REGENERATE}`" in capsys.readouterr().err
    assert reference.main(["--out", str(tmp_path)]) == 0
    assert reference.main(["--check", "--out", str(tmp_path)]) == 0


def test_the_pytest_page_holds_the_options_pytest_registers():
    # the stand-in parser must see what pytest's own does: every option of the plugins named in conftest.py
    text = (reference.REFERENCE_DIR / "pytest-options.md").read_text()
    for flag in ("--sizes", "--passes", "--no-overhead-check", "--mlx-device", "--torch-device", "--dist-ranks"):
        assert f"`{flag} " in text or f"`{flag}`" in text


def test_each_command_s_docs_page_links_its_reference_page():
    for command in reference.COMMANDS:
        guide = (reference.REFERENCE_DIR / command.guide).resolve()
        assert f"reference/{command.page}" in guide.read_text(), f"{guide.relative_to(ROOT)} does not link it"
    assert "docs/reference/mlx-sgd-bench.md" in (ROOT / "README.md").read_text()


def test_the_console_page_lists_every_subcommand():
    text = (reference.REFERENCE_DIR / reference.CONSOLE_PAGE).read_text()
    assert all(f"| `{name}` |" in text for name in SUBCOMMANDS)
