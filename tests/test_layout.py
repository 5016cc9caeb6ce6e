"""The house rules of the package: no import circles, no module over 500 lines, a docstring on every module,
modules grouped by concern under distinct names, the benchmarks apart, and a Layout that lists every module."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "benchmarks", "reference")
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


# One module per backend package for each model (bench/backends/<library>/linear.py, mlp.py): the same name on purpose.
NAMES_REPEATED_BY_DESIGN = {"__init__", "__main__", "linear", "mlp"}
# What stays at the top of the tool package: the package, `python -m bench`, and `python -m bench.pinning` kept working.
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "pinning.py"}


def test_no_two_modules_of_the_tool_share_a_name():
    paths = defaultdict(list)
    for path in (ROOT / "bench").rglob("*.py"):
        if path.stem not in NAMES_REPEATED_BY_DESIGN and path != ROOT / "bench" / "pinning.py":  # the old name, kept
            paths[path.stem].append(str(path.relative_to(ROOT)))
    assert {stem: found for stem, found in paths.items() if len(found) > 1} == {}


def test_the_tool_package_is_grouped_by_concern_and_the_benchmarks_live_apart():
    assert {path.name for path in (ROOT / "bench").glob("*.py")} == TOP_LEVEL_MODULES
    assert [str(path.relative_to(ROOT)) for path in (ROOT / "bench").rglob("test_*.py")] == []
    assert {path.stem for path in (ROOT / "benchmarks").glob("test_*.py")} >= {
        "test_linear",
        "test_logistic",
        "test_mlp",
    }


def layout_block(page: Path) -> list[str]:
    """The lines of the code block under the page's "Layout" heading."""
    lines = page.read_text().split("## Layout", 1)[1].splitlines()
    start = lines.index("```") + 1
    return lines[start : lines.index("```", start)]


def listed_modules(block: list[str]) -> set[str]:
    """Every module path the Layout names: `bench/x.py ...`, or `  y.py ...` under a `bench/pkg/` heading line;
    a backend's subpackage line (`  mlx/  __init__ (...), linear, mlp; compat ...`) names its modules by stem."""
    listed, folder, subpackage = set(), "", None
    for line in block:
        words = line.split()
        if not words:
            continue
        if not line.startswith(" ") and words[0].endswith("/"):
            folder, subpackage = words[0], None
        elif not line.startswith(" "):
            listed.add(words[0])
            subpackage = None
        elif line.startswith("  ") and not line.startswith("   "):
            if words[0].endswith("/"):
                subpackage = folder + words[0]
                listed |= {subpackage + stem + ".py" for stem in re.findall(r"\w+", line)}
            else:
                subpackage = None
                listed.add(folder + words[0])
        elif subpackage:  # a continuation line of a backend's subpackage
            listed |= {subpackage + stem + ".py" for stem in re.findall(r"\w+", line)}
    return listed


def test_the_layout_lists_every_module():
    listed = listed_modules(layout_block(ROOT / "docs" / "extending.md"))
    modules_on_disk = {
        str(path.relative_to(ROOT)) for package in ("bench", "benchmarks") for path in (ROOT / package).rglob("*.py")
    }
    assert sorted(modules_on_disk - listed) == []
    assert (
        sorted(
            name
            for name in listed - modules_on_disk
            if name.endswith(".py") and "/" in name and not name.startswith(("bench/backends/",))
        )
        == []
    )


def test_a_module_missing_from_the_layout_is_caught():
    block = [
        "bench/engine/    the engine",
        "  timing.py    the loop",
        "bench/backends/   backends",
        "  mlx/   linear, mlp",
    ]
    listed = listed_modules(block)
    assert {"bench/engine/timing.py", "bench/backends/mlx/linear.py", "bench/backends/mlx/mlp.py"} <= listed
    assert "bench/engine/worker.py" not in listed
