"""The small pieces of HTML every section of index.html is built from: a section, a paragraph, a status box."""

from __future__ import annotations

from bench.report.html_tables import esc


def section(ident: str, title: str, body: str) -> str:
    """A section of the page: its anchor, its heading and its body."""
    return f'<section id="{ident}"><h2>{esc(title)}</h2>{body}</section>'


def paragraph(text: str, cls: str = "") -> str:
    """A paragraph of HTML text, with a class when given."""
    return f'<p class="{cls}">{text}</p>' if cls else f"<p>{text}</p>"


def status_box(status: str, title: str, lines: list[str]) -> str:
    """A bordered box coloured by its status (pass, regression, ok...): a bold title, then one line each."""
    return (
        f'<div class="status st-{esc(status)}"><strong>{title}</strong>'
        + "".join(f"<br>{line}" for line in lines)
        + "</div>"
    )
