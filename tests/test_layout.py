"""The house rules of the package: no import circles, no module over 500 lines, a docstring on every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "reference")
MAX_LINES = 500


def modules() -> dict[str, Path]:
    """Every module of the suite's packages by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The suite's modules that `name` imports anywhere in its body (a lazy import inside a function counts)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def test_no_module_imports_itself_through_others():
    table = modules()
    graph = {name: imports_of(name, path, set(table)) for name, path in table.items()}
    # A package's __init__ re-exporting its own modules is not a circle through other modules.
    graph = {n: {t for t in targets if not n.startswith(t + ".")} for n, targets in graph.items()}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_no_module_is_over_500_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_module_says_what_it_is_for():
    missing = [
        name
        for name, path in modules().items()
        if path.stat().st_size and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert missing == []


def headings(page: Path) -> set[str]:
    """The section headings of a Markdown page, outside its code blocks."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            found.add(line.lstrip("#").strip())
    return found


# `docs/measurement.md, "How a case is timed", "Isolation"`, or `README, "Set up (two commands)"`.
CITATION = re.compile(r'\b(README|docs/[\w./-]+\.md),? ((?:"[^"]+"(?:, )?)+)')
# A message printed to the terminal cites with single quotes: `see README, 'Getting stable numbers'`.
QUOTED_CITATION = re.compile(r"\b(README|docs/[\w./-]+\.md), '([^']+)'")


def citations() -> set[tuple[str, str]]:
    """Every (page, section) the suite's code, tests and conftest.py cite."""
    files = [*modules().values(), *(ROOT / "tests").rglob("*.py"), ROOT / "conftest.py"]
    found = set()
    for path in files:
        if path.name == "test_layout.py":
            continue
        text = " ".join(path.read_text().split())  # a citation may wrap over lines
        for page, names in CITATION.findall(text):
            found |= {(page, name) for name in re.findall(r'"([^"]+)"', names)}
        found |= set(QUOTED_CITATION.findall(text))
    return {("README.md" if page == "README" else page, name) for page, name in found}


def test_every_docs_section_a_comment_cites_exists():
    cited = citations()
    pages = {page for page, _ in cited}
    assert {"docs/measurement.md", "docs/stable-numbers.md", "docs/releases.md"} <= pages
    missing_pages = sorted(page for page in pages if not (ROOT / page).is_file())
    assert missing_pages == []
    missing = sorted(f"{page}: {name}" for page, name in cited if name not in headings(ROOT / page))
    assert missing == []


def test_a_citation_of_a_missing_section_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Kept\n\n```\n# not a heading\n```\n")
    assert headings(page) == {"Title", "Kept"}
    text = 'x (docs/page.md, "Kept", "Gone") y'
    names = [re.findall(r'"([^"]+)"', n) for _, n in CITATION.findall(text)]
    assert names == [["Kept", "Gone"]] and "Gone" not in headings(page)
