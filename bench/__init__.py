"""MLX SGD Bench: how fast MLX trains classic models with SGD, against NumPy."""
