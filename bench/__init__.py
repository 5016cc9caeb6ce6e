"""MLX SGD Bench: how fast MLX trains classic models with SGD, against NumPy."""

# The one place the version is written: pyproject.toml reads it, every result records it.
__version__ = "0.1.0"
