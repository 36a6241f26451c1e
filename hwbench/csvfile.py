"""CSV text from a list of records (dicts), with the standard library: no pandas for writing a table.

The columns are the records' keys in first-seen order; a missing key, `None` or a non-finite float is an
empty cell (what `pandas.read_csv` reads back as NaN); floats are written in full (`repr`) or with
`float_format`, e.g. "%.6g"."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from typing import Any


def _cell(value: Any, float_format: str | None) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) or type(value).__name__.startswith("float"):  # numpy float32/64 too
        v = float(value)
        if not math.isfinite(v):
            return ""
        return float_format % v if float_format else repr(v)
    return value


def records_csv(records: Iterable[Mapping[str, Any]], *, float_format: str | None = None) -> str:
    """`records` as CSV text with a header line ("" when there are no records and so no columns)."""
    rows = list(records)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    if not columns:
        return ""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c), float_format) for c in columns])
    return buf.getvalue()
