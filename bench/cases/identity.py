"""The one identity of a benchmark case: how it is named everywhere.

pytest ids, the saved ``case_id``, the terminal summary, the report's tables
and CSVs and the data-parallel cases all spell a case the same way, so a row of
``versions.csv`` can be grepped against ``pytest -k``:

    <model>-<backend>-<variant>-<barrier>-<device>[-h<hidden>][-b<batch>][-<distributed backend>-<N>ranks]-n<examples>-d<features>

e.g. ``linear-mlx-compiled-step-cpu-n1000-d100``,
``mlp-torch-compiled-eager-cpu-h64-b256-n10000-d100`` and
``linear-mlx-data-parallel-step-cpu-ring-2ranks-n100000-d100``. A batch size
appears only for mini-batches (fewer rows than the problem has).
"""

from __future__ import annotations

from collections.abc import Mapping


def size_id(n_examples: int, n_features: int) -> str:
    """``n1000-d100``."""
    return f"n{int(n_examples)}-d{int(n_features)}"


def implementation_id(
    backend: str,
    variant: str,
    barrier: str,
    device: str,
    hidden: int | None = None,
    batch_size: int | None = None,
    distributed_backend: str | None = None,
    n_ranks: int = 1,
) -> str:
    """The case without its model and size, e.g. ``mlx-nn-step-cpu-h64-b256``."""
    parts = [backend, variant, barrier, device]
    if hidden:
        parts.append(f"h{int(hidden)}")
    if batch_size:
        parts.append(f"b{int(batch_size)}")
    if distributed_backend:
        parts.append(f"{distributed_backend}-{int(n_ranks)}ranks")
    elif int(n_ranks) != 1:
        parts.append(f"{int(n_ranks)}ranks")
    return "-".join(parts)


def case_id(model: str, implementation: str, n_examples: int, n_features: int) -> str:
    """The full id: model, implementation, size."""
    return f"{model}-{implementation}-{size_id(n_examples, n_features)}"


def case_id_of(fields: Mapping) -> str:
    """The id of a saved case from its result-schema fields (extra_info, or a row of the report's table).

    Defaults stand in for fields that older results lack: no hidden layer, full
    batch, one rank.
    """
    n = int(fields["n_examples"])
    batch = fields.get("batch_size")
    minibatch = int(batch) if batch is not None and batch == batch and int(batch) < n else None  # NaN-safe
    implementation = implementation_id(
        str(fields["backend"]),
        str(fields["variant"]),
        str(fields["barrier"]),
        str(fields["device"]),
        hidden=int(fields.get("hidden") or 0),
        batch_size=minibatch,
        distributed_backend=str(fields.get("distributed_backend") or ""),
        n_ranks=int(fields.get("n_ranks") or 1),
    )
    return case_id(str(fields["model"]), implementation, n, int(fields["n_features"]))
