"""Text for one line of stderr: a message that quotes user input stays on its line.

A file name, a release name or an argument may hold a line break or another
character that terminals and ``str.splitlines`` treat as one (``\\x1e``,
``\\u2028``); printed as is, one error would read as several lines. Every
such character is written as its escape instead.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """`text` with every non-printable character (line breaks included) as its backslash escape."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))
