"""Every command block and code example of README.md and docs/ runs, as written, in a scratch copy of the checkout.

The Markdown-testing plugins (pytest-examples, pytest-markdown-docs,
mktestdocs) run Python blocks, or shell blocks verbatim; these blocks are
shell commands that time a grid for minutes or install MLX releases, so they
run here with three visible changes, and nothing else:

- every pytest run takes a tiny grid through PYTEST_ADDOPTS (TINY_GRID: one
  size, one pass, the linear model; an option the block gives itself wins);
- `python -m bench.versions` (and `mlx-sgd-bench versions|history`) gets
  `--dry-run`: it parses and checks the command line, then prints its plan
  instead of installing releases from the package index;
- a Python block is a file that the blocks after it use: the comment before it
  says where it goes (`<!-- run as benchmarks/test_mymodel.py, with "mymodel"
  read as "linear" -->`: the string "mymodel" in it becomes "linear", so a
  placeholder model is read as one that exists).

A block that cannot run in a unit test says why in the Markdown, in a comment
just before it that a reader sees in the source: `<!-- not run: REASON -->`.
A fenced block without a language (or `text`) is a listing, not an example.
The blocks run in order, README.md first, then docs/ by name, in one scratch
checkout, so a page's report reads the runs the pages before it saved.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TINY_GRID = '--sizes 200x5 --passes 1 -k "linear and not blog" --dist-ranks 1 -q -p no:randomly'
SHELL = {"bash", "sh", "shell"}
LISTING = {"", "text"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
RUN_AS = re.compile(r'^\s*<!--\s*run as (?P<path>\S+?)(?:, with "(?P<old>[^"]+)" read as "(?P<new>[^"]+)")?\s*-->\s*$')
VERSIONS = re.compile(
    r"^(?P<command>(?:python -m bench\.versions|mlx-sgd-bench (?:versions|history))\b[^#]*?)(?P<rest>\s+--\s.*|\s+#.*)?$"
)
COPIED = ("bench", "benchmarks", "reference", "tests", "conftest.py", "pytest.ini", "pyproject.toml")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text, and the comment just before it."""

    page: Path
    line: int
    lang: str
    text: str
    comment: str

    @property
    def where(self) -> str:
        """page:line, for a failure message."""
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the line before each (indented blocks in lists included)."""
    found, lines, index = [], page.read_text().splitlines(), 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, end = len(opening["indent"]), index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        before = [line for line in lines[:index] if line.strip()]
        text = "\n".join(line[indent:] for line in lines[index + 1 : end])
        found.append(Block(page, index + 1, opening["lang"], text + "\n", before[-1].strip() if before else ""))
        index = end + 1
    return found


def every_block() -> list[Block]:
    """Every fenced block of README.md and docs/, in the order they run."""
    return [block for page in PAGES for block in blocks(page)]


def dry_run(script: str) -> str:
    """The script with --dry-run added to every release-runner command (before `--` and a trailing comment)."""
    lines = []
    for line in script.splitlines():
        match = VERSIONS.match(line.strip())
        lines.append(f"{match['command'].rstrip()} --dry-run{match['rest'] or ''}" if match else line)
    return "\n".join(lines) + "\n"


def scratch_checkout(folder: Path) -> dict[str, str]:
    """A copy of the checkout's code in `folder`, a home and a cache of its own; the environment to run blocks in."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    for requirements in ROOT.glob("requirements*.txt"):
        shutil.copy2(requirements, folder / requirements.name)
    tools = folder / "bin"
    tools.mkdir()
    # what `pip install -e .` installs: the console command, which is `python -m bench`
    shim = tools / "mlx-sgd-bench"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bench "$@"\n')
    shim.chmod(0o755)
    (folder / "home").mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "MLX_SGD_BENCH"))}
    env |= {
        "PATH": os.pathsep.join([str(tools), str(Path(sys.executable).parent), env.get("PATH", "")]),
        "HOME": str(folder / "home"),
        "MLX_SGD_BENCH_CACHE": str(folder / "envs"),
        "PYTEST_ADDOPTS": TINY_GRID,
        "PYTHONPATH": str(folder),
    }
    return env


def run_block(block: Block, folder: Path, env: dict[str, str]) -> str | None:
    """Run one block in the scratch checkout; None when it passed, else why it failed."""
    if block.lang == "python":
        target = RUN_AS.match(block.comment)
        # the placeholder is a Python string: "mymodel" -> "linear" renames the model, not the test
        text = block.text.replace(f'"{target["old"]}"', f'"{target["new"]}"') if target["old"] else block.text
        (folder / target["path"]).write_text(text)
        return None
    script = dry_run(block.text)
    try:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return f"{block.where}: still running after 300 s:\n{script}"
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-3_000:]
        return f"{block.where}: exit {done.returncode}:\n{script}--- output (end) ---\n{output}"
    return None


def test_every_block_is_run_or_says_why_not():
    unexplained = []
    for block in every_block():
        skipped = NOT_RUN.match(block.comment)
        if skipped:
            if not skipped["reason"]:
                unexplained.append(f"{block.where}: 'not run:' without a reason")
        elif block.lang == "python" and not RUN_AS.match(block.comment):
            unexplained.append(f"{block.where}: a Python block needs <!-- run as PATH --> or <!-- not run: REASON -->")
        elif block.lang not in SHELL | LISTING | {"python"}:
            unexplained.append(
                f"{block.where}: a {block.lang} block cannot run here; say why: <!-- not run: REASON -->"
            )
    assert unexplained == []


def test_only_a_few_blocks_are_left_unrun():
    # a guard against marking a block "not run" to silence a failure: each one must be a real limit of a unit test
    left = [block.where for block in every_block() if NOT_RUN.match(block.comment)]
    # ten as the docs stood, plus the calibration check (three pairs of default runs) and the reproducer (a history
    # run's file and the package index)
    assert len(left) <= 12, left


def test_the_release_runner_gets_dry_run_before_its_pytest_arguments_and_comments():
    script = "python -m bench.versions 0.1 0.2 --mode runs -- -k x  # note\npython -m bench.versions --list-envs\nls\n"
    assert dry_run(script) == (
        "python -m bench.versions 0.1 0.2 --mode runs --dry-run -- -k x  # note\n"
        "python -m bench.versions --list-envs --dry-run\nls\n"
    )
    assert dry_run("mlx-sgd-bench history 0.30.0\n") == "mlx-sgd-bench history 0.30.0 --dry-run\n"


def test_a_block_is_found_with_the_comment_before_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- not run: needs a GPU -->\n\n```bash\nnvidia-smi\n```\n\n1. step\n\n   ```python\n   x = 1\n   ```\n"
    )
    found = blocks(page)
    assert [(b.line, b.lang, b.text) for b in found] == [(5, "bash", "nvidia-smi\n"), (11, "python", "x = 1\n")]
    assert NOT_RUN.match(found[0].comment)["reason"] == "needs a GPU"
    assert found[1].comment == "1. step"


@pytest.mark.slow
def test_every_example_of_the_readme_and_the_docs_runs(tmp_path):
    env = scratch_checkout(tmp_path)
    failures, ran = [], 0
    for block in every_block():
        if NOT_RUN.match(block.comment) or block.lang not in SHELL | {"python"}:
            continue  # a listing, or a block the test above holds to account
        failure = run_block(block, tmp_path, env)
        ran += 1
        if failure:
            failures.append(failure)
    assert failures == [], "\n\n".join(failures)
    assert ran >= 9  # the pages hold this many runnable blocks; fewer means the collector lost some
