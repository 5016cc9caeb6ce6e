"""The blog post's published figures, loaded from ``blog_figures.json``."""

from __future__ import annotations

import json
from pathlib import Path

BLOG_FIGURES_PATH = Path(__file__).with_name("blog_figures.json")


def load_blog_figures() -> dict:
    """Return the blog's figures: source, machine and one entry per (model, backend)."""
    return json.loads(BLOG_FIGURES_PATH.read_text())
