"""The docs a newcomer reads: a short README, and every link in it and in docs/ leading somewhere that exists."""

from __future__ import annotations

import re
from pathlib import Path

from test_layout import headings

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a page (outside code blocks)."""
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings(page)}


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_the_readme_lists_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    listed = {m for m in LINK.findall(readme) if m.startswith("docs/")}
    pages = {str(p.relative_to(ROOT)) for p in PAGES if p.parent != ROOT}
    assert pages <= {m.split("#")[0] for m in listed}


def test_every_local_link_and_anchor_exists():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists() or (anchor and anchor not in anchors(resolved)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []
