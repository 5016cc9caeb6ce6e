"""Float64 reference solvers for correctness checks, and the blog's published figures."""

from reference.blog import BLOG_FIGURES_PATH, load_blog_figures
from reference.solvers import quality, reference_weights

__all__ = ["BLOG_FIGURES_PATH", "load_blog_figures", "quality", "reference_weights"]
