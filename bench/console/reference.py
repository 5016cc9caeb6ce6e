"""The reference pages docs/reference/<command>.md, written from each command's own parser.

    python -m bench.console.reference            # write every page that differs
    python -m bench.console.reference --check    # write nothing; exit 1 naming each page that differs

A page lists every option the parser accepts, with its default and its help
text, so the documentation of an option cannot drift from `--help`: the test
suite fails when a page differs from what its parser gives now
(tests/test_reference_pages.py). The pytest plugin's options (section
"mlx-sgd-bench" of `pytest --help`) are recorded through the same hooks pytest
calls, by a stand-in for pytest's parser that keeps them in an argparse parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.console.entry import run
from bench.console.oneline import one_line
from bench.report.outputs import write_text

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = ROOT / "docs" / "reference"
REGENERATE = "python -m bench.console.reference"
GENERATED_NOTE = (
    f"<!-- generated from the command's parser by `{REGENERATE}`; edit the parser's help, not this page -->"
)


@dataclass(frozen=True)
class Command:
    """One command line: its page's file name, how a user types it, its parser, and the docs page that explains it."""

    page: str
    title: str
    parser: Callable[[], argparse.ArgumentParser]
    guide: str  # the page that explains the command, relative to docs/reference/
    console: str  # the same command through mlx-sgd-bench, or "" where there is none


class _PytestGroup:
    """Stands in for pytest's OptionGroup: addoption() takes pytest's (argparse's) arguments."""

    def __init__(self, group: argparse._ArgumentGroup):
        self._group = group

    def addoption(self, *names: str, **attrs) -> None:
        """Record one option as pytest would register it."""
        self._group.add_argument(*names, **attrs)


class _PytestParser:
    """Stands in for pytest's Parser in a plugin's pytest_addoption hook: only the suite's own group is kept."""

    def __init__(self, parser: argparse.ArgumentParser):
        self._parser = parser
        self._groups: dict[str, _PytestGroup] = {}

    def getgroup(self, name: str, description: str = "") -> _PytestGroup:
        """The option group `name`, made on first use, as pytest's getgroup does."""
        if name not in self._groups:
            self._groups[name] = _PytestGroup(self._parser.add_argument_group(name, description or None))
        return self._groups[name]


def pytest_options_parser() -> argparse.ArgumentParser:
    """The suite's pytest options (conftest.py's plugins that add options) as one argparse parser."""
    from bench.distributed import pytest_plugin
    from bench.session import options

    parser = argparse.ArgumentParser(
        prog="pytest",
        add_help=False,
        usage="pytest --benchmark-only [options]",
        description="The main job's options, section \"mlx-sgd-bench\" of `pytest --help`, beside pytest's and "
        "pytest-benchmark's own. A bad value is a one-line usage error (exit 4).",
    )
    stand_in = _PytestParser(parser)
    for plugin in (options, pytest_plugin):
        plugin.pytest_addoption(stand_in)
    return parser


def _report_parser() -> argparse.ArgumentParser:
    from bench.report.make_report import build_parser

    return build_parser()


def _versions_parser() -> argparse.ArgumentParser:
    from bench.versions.arguments import build_parser

    return build_parser()


def _agreement_parser() -> argparse.ArgumentParser:
    from bench.report.agreement import build_parser

    return build_parser()


def _calibration_parser() -> argparse.ArgumentParser:
    from bench.report.calibration import build_parser

    return build_parser()


def _pinning_parser() -> argparse.ArgumentParser:
    from bench.engine.pinning import build_parser

    return build_parser()


COMMANDS = (
    Command("pytest-options.md", "pytest --benchmark-only", pytest_options_parser, "../measurement.md", ""),
    Command("report.md", "python -m bench.report", _report_parser, "../reports.md", "mlx-sgd-bench report"),
    Command(
        "versions.md",
        "python -m bench.versions",
        _versions_parser,
        "../releases.md",
        "mlx-sgd-bench versions (mlx-sgd-bench history is the same with --history)",
    ),
    Command(
        "agreement.md",
        "python -m bench.report.agreement",
        _agreement_parser,
        "../stable-numbers.md",
        "mlx-sgd-bench agreement",
    ),
    Command(
        "calibration.md",
        "python -m bench.report.calibration",
        _calibration_parser,
        "../stable-numbers.md",
        "mlx-sgd-bench calibration",
    ),
    Command("pinning.md", "python -m bench.pinning", _pinning_parser, "../stable-numbers.md", "mlx-sgd-bench pinning"),
)
CONSOLE_PAGE = "mlx-sgd-bench.md"


def _prose(text: str) -> str:
    """Help text as Markdown shows it literally: no emphasis from a glob's `*`, no `<name>` taken for an HTML tag."""
    return str(text).replace("*", "\\*").replace("<", "&lt;")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _metavar(action: argparse.Action) -> str:
    """What follows the option's flag in a command line: ``DIR``, ``FORMAT FILE``, ``{a,b}``, or nothing."""
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        names = action.metavar if isinstance(action.metavar, tuple) else (action.metavar,)
    elif action.choices is not None:
        names = ("{" + ",".join(map(str, action.choices)) + "}",)
    else:
        names = (action.dest.upper(),)
    if isinstance(action.nargs, int):
        names = names if len(names) == action.nargs else names * action.nargs
        return " ".join(names)
    if action.nargs == "*":
        return f"[{names[0]} ...]"
    if action.nargs == "+":
        return f"{names[0]} [{names[0]} ...]"
    if action.nargs == "?":
        return f"[{names[0]}]"
    return names[0]


def _default(action: argparse.Action) -> str:
    """The default as a user would type it, or empty where there is none to show."""
    value = action.default
    if value is None or value is False or value == [] or value == argparse.SUPPRESS or action.nargs == 0:
        return ""
    return f"`{value}`"


def _help(action: argparse.Action, prog: str) -> str:
    """The help text with argparse's %-placeholders filled, as --help prints it."""
    text = action.help or ""
    if "%" in text:
        text = text % {**vars(action), "prog": prog}
    return text


def _rows(actions: list[argparse.Action], prog: str) -> list[str]:
    """One table row per documented option or argument."""
    rows = []
    for action in actions:
        if action.help == argparse.SUPPRESS:
            continue
        metavar = _metavar(action)
        if action.option_strings:
            shown = ", ".join(f"`{flag}{' ' + metavar if metavar else ''}`" for flag in action.option_strings)
        else:
            shown = f"`{metavar}` (argument)"
        rows.append(f"| {_cell(shown)} | {_cell(_default(action))} | {_cell(_prose(_help(action, prog)))} |")
    return rows


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage lines: the parser's own where it has them, else the program, [options] and its arguments."""
    if parser.usage:
        return "usage: " + parser.usage % {"prog": parser.prog}
    # argparse's own usage line wraps at the terminal's width; this one does not, so the page is the same everywhere
    positionals = [_metavar(a) for a in parser._actions if not a.option_strings and a.help != argparse.SUPPRESS]
    return " ".join(["usage:", parser.prog, "[options]", *positionals])


def parser_page(command: Command) -> str:
    """The Markdown reference page of one argparse command: usage, every option in one table, the epilog."""
    parser = command.parser()
    lines = [f"# `{command.title}`", "", GENERATED_NOTE, ""]
    if parser.description:
        lines += [_prose(parser.description), ""]
    lines += ["```text", _usage(parser), "```", ""]
    lines += ["| option | default | what it does |", "| --- | --- | --- |", *_rows(parser._actions, parser.prog), ""]
    if parser.epilog:
        lines += [_prose(parser.epilog), ""]
    if command.console:
        lines += [f"Also as `{command.console}` ([the console command](mlx-sgd-bench.md)).", ""]
    lines += [f"What it does and how to read it: [{command.guide.removeprefix('../')}]({command.guide}).", ""]
    return "\n".join(lines)


def console_page() -> str:
    """The reference page of mlx-sgd-bench, from its usage text and its table of subcommands."""
    from bench.console.command import SUBCOMMANDS, usage

    pages = {"report": "report.md", "versions": "versions.md", "history": "versions.md"}
    pages |= {"agreement": "agreement.md", "calibration": "calibration.md", "pinning": "pinning.md"}
    lines = ["# `mlx-sgd-bench`", "", GENERATED_NOTE, "", "```text", usage(), "```", ""]
    lines += ["| subcommand | what it does | options |", "| --- | --- | --- |"]
    for name, (_, _, text) in SUBCOMMANDS.items():
        lines.append(f"| `{name}` | {_cell(text)} | [{pages[name]}]({pages[name]}) |")
    lines += ["", "What it does: the README, [The console command](../../README.md#the-console-command).", ""]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    """Every reference page: file name -> its text as the parsers give it now."""
    found = {command.page: parser_page(command) for command in COMMANDS}
    found[CONSOLE_PAGE] = console_page()
    return found


def stale(folder: Path = REFERENCE_DIR) -> list[str]:
    """The pages in `folder` that are missing or differ from what the parsers give now."""
    return [
        name for name, text in pages().items() if not (folder / name).is_file() or (folder / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the reference pages; return the exit status."""
    parser = argparse.ArgumentParser(prog=f"{REGENERATE}", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page differs")
    parser.add_argument("--out", type=Path, default=REFERENCE_DIR, metavar="DIR", help="folder of the pages")
    args = parser.parse_args(argv)
    differ = stale(args.out)
    if args.check:
        for name in differ:
            print(f"{one_line(args.out / name)} differs from its parser: run `{REGENERATE}`", file=sys.stderr)
        return 1 if differ else 0
    args.out.mkdir(parents=True, exist_ok=True)
    texts = pages()
    for name in differ:
        write_text(texts[name], args.out / name)  # atomic: a page is whole or untouched
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    run(main)
