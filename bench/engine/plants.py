"""Broken cases on purpose, for the release runner's self-test: a gate must call them `broken`.

"weights": the trainer reports weights 1% off what it computed, as a kernel
with a wrong gradient would; the correctness check after timing must fail.
"barrier": the round returns before its work is done, as an MLX round that
forgot its mx.eval (MLX's linear models at full batch, whose lazy step this
replaces); the barrier check after timing must fail. Nothing else in the suite
uses these.
"""

from __future__ import annotations

KINDS = ("weights", "barrier")


def break_trainer(trainer, kind: str) -> None:
    """Break `trainer` in place in the way `kind` names."""
    if kind == "weights":
        right = trainer.weights
        trainer.weights = lambda: right() * 1.01
    elif kind == "barrier":
        if not all(hasattr(trainer, name) for name in ("step", "X", "y", "w")) or getattr(trainer, "batch_rows", None):
            raise ValueError("the barrier plant needs an MLX linear trainer at full batch")

        def run_without_barrier(steps: int, stop_accuracy: float | None = None) -> int:
            w = trainer.w
            for _ in range(steps):
                w = trainer.step(w, trainer.X, trainer.y)  # lazy: a graph, never evaluated here
            trainer.w = w
            return steps

        trainer.run = run_without_barrier
    else:
        raise ValueError(f"unknown broken plant {kind!r}; known: {', '.join(KINDS)}")
