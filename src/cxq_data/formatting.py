"""Render a list of row dicts as a table, CSV or JSON (the ``--format`` option of every command).

JSON follows the project conventions: dates ``YYYY-MM-DD``, timestamps ISO 8601 UTC with ``Z``,
NaN -> null, numbers stay numbers, ``[]`` when empty. No pandas here (the query path stays light).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any


class OutputFormat(str, Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


FORMAT_CHOICES = [f.value for f in OutputFormat]


def json_value(value: Any) -> Any:
    """Convert one cell to a JSON-safe value following the conventions above."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, int):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        text = value.astimezone(dt.UTC).isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return json_value(value.item())
    return str(value)


def to_json(rows: Any) -> str:
    return json.dumps(json_value(rows), indent=2, allow_nan=False)


def _cell_text(value: Any) -> str:
    value = json_value(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3) else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def to_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Fixed-width text table with a header rule; numbers right-aligned."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    cells = [[_cell_text(r.get(c)) for c in cols] for r in rows]
    numeric = [all(isinstance(json_value(r.get(c)), (int, float)) or r.get(c) is None for r in rows) for c in cols]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def fmt(values: Iterable[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    lines = [fmt(cols), "  ".join("-" * w for w in widths)]
    lines += [fmt(row) for row in cells]
    return "\n".join(lines)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    buf = io.StringIO()
    cols = list(columns or (rows[0].keys() if rows else []))
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for r in rows:
        writer.writerow(["" if (v := json_value(r.get(c))) is None else v for c in cols])
    return buf.getvalue().rstrip("\n")


def render(rows: Sequence[Mapping[str, Any]], fmt: str | OutputFormat, columns: Sequence[str] | None = None) -> str:
    fmt = OutputFormat(fmt)
    if fmt is OutputFormat.JSON:
        return to_json(list(rows))
    if fmt is OutputFormat.CSV:
        return to_csv(rows, columns)
    return to_table(rows, columns)
