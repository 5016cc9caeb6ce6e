"""CI's first step is a new user's: the README's set-up and test commands, word for word, before anything else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "# --- the README's commands ---", "# --- end of the README's commands ---"


def commands(lines: list[str]) -> list[str]:
    """The command lines of a shell fragment: comments, blank lines and echo banners left out."""
    kept = [line.strip() for line in lines]
    return [line for line in kept if line and not line.startswith("#") and not line.startswith("echo ")]


def readme_block(heading: str) -> list[str]:
    """The lines of the first ```bash block under a README heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, f"the README's section {heading!r} shows no bash block"
    return block.group(1).splitlines()


def ci_first_step() -> tuple[list[str], int, int]:
    """.ci/run's lines and where its README block starts and ends."""
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    start, end = script.index(START), script.index(END)
    return script, start, end


def test_ci_runs_the_readmes_commands_word_for_word():
    script, start, end = ci_first_step()
    readme = commands(readme_block("Set up (two commands)")) + commands(readme_block("Run the tests"))
    assert len(readme) == 3, readme
    assert commands(script[start + 1 : end]) == readme


def test_nothing_runs_before_the_readmes_commands():
    script, start, _ = ci_first_step()
    before = commands(script[:start])
    # Only the shell's own set-up: strict mode, the checkout as the working folder, and no venv left from before.
    assert before == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "rm -rf .venv"]
