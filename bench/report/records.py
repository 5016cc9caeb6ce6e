"""The release runner's own records the report shows: told apart from results by their `kind`, checked, kept whole.

`python -m bench.versions` writes release-verdicts.json (a paired comparison),
self-test.json (the gate checking itself) and history.json (the release
history); each names its kind and schema version. A record of a known kind
but another schema version, or without its main field, is skipped with the
reason, like any unusable file.
"""

from __future__ import annotations

# The "kind" of the release runner's records, and the schema version this report reads.
RELEASE_VERDICTS_KIND = "mlx-sgd-bench-release-verdicts"
SELF_TEST_KIND = "mlx-sgd-bench-self-test"
HISTORY_KIND = "mlx-sgd-bench-release-history"
RECORD_KINDS = {RELEASE_VERDICTS_KIND: ("rows", list), SELF_TEST_KIND: ("status", str), HISTORY_KIND: ("rows", list)}


def record_kind(doc) -> tuple[str | None, str | None]:
    """(kind, None) for a usable release-verdicts, self-test or history record, (kind, why) for an unusable one,
    (None, None) for any other document."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if not isinstance(kind, str) or kind not in RECORD_KINDS:
        return None, None
    if doc.get("schema_version") != 1:
        return kind, f"{kind} of schema_version {doc.get('schema_version')!r}; this report reads version 1"
    key, kind_type = RECORD_KINDS[kind]
    if not isinstance(doc.get(key), kind_type):
        return kind, f"{kind} without its {key!r} field"
    return kind, None
