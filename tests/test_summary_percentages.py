"""summary.md's unstable rows: the pass-spread column is written as a percentage to one decimal, not a raw float."""

from __future__ import annotations

import pandas as pd

from bench.report import markdown, views


def test_the_pass_spread_is_written_to_one_decimal():
    frame = pd.DataFrame({"case": ["linear-mlx-compiled-step-cpu-n1000-d10"], "pass_spread_pct": [57.656798123703865]})
    text = markdown.table(frame, views.DETAIL_FORMATS)
    assert "57.7%" in text and "57.656" not in text
