"""Generic daily CSV files (``generic_csv``): user exports, yfinance ``to_csv`` output, other vendors.

Header: ``Date, Open, High, Low, Close`` required; ``Adj Close``, ``Volume``, ``Dividends`` and
``Stock Splits`` optional; any order and any case (``adj_close``, ``Adj. Close``, ``Adjusted Close``
all work); other columns are ignored. Rows may come in any order (yfinance exports are newest
first). Dates are ISO (``2024-06-06``), ``YYYYMMDD`` or a timestamp with a UTC offset
(``2022-06-06 00:00:00+01:00``): the trading date is the local date part as written, never the
date converted to UTC.

Prices are stored as the file states them (the file does not say whether its Close is as traded or
split-adjusted; yfinance's is split-adjusted). ``Dividends`` > 0 and ``Stock Splits`` other than 0
or 1 become actions (split ratio = new shares per old share, as yfinance writes it; ``2:1`` and
``1:10`` are accepted too). Two rows for one date: the later row in the file wins - a data-quality
finding (``duplicate_date``), not a reason to refuse the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from cxq_data.normalize.base import Normalized, ParseRequest
from cxq_data.normalize.tables import (
    ActionRows,
    BarColumns,
    actions_table,
    bars_table,
    decode_text,
    file_error,
    parse_float,
    parse_volume,
)

_ALIASES = {
    "date": "date", "datetime": "date", "timestamp": "date",
    "open": "open", "high": "high", "low": "low", "close": "close",
    "adjclose": "adjusted_close", "adjustedclose": "adjusted_close",
    "volume": "volume", "vol": "volume",
    "dividends": "dividend", "dividend": "dividend",
    "stocksplits": "split_ratio", "stocksplit": "split_ratio", "splits": "split_ratio", "split": "split_ratio",
    "splitratio": "split_ratio",
}
REQUIRED = ("date", "open", "high", "low", "close")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T].*)?$")
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_RATIO_RE = re.compile(r"^\s*([0-9.]+)\s*[:/]\s*([0-9.]+)\s*$")


def canonical_column(name: str) -> str | None:
    """``"Adj. Close"`` -> ``"adjusted_close"``; None for columns the schema does not use."""
    return _ALIASES.get(re.sub(r"[^a-z0-9]", "", name.lower()))


def header_columns(header: list[str], name: str) -> dict[str, int]:
    """Canonical column -> position; errors for missing or doubled columns."""
    positions: dict[str, int] = {}
    for i, raw in enumerate(header):
        canon = canonical_column(raw)
        if canon is None:
            continue
        if canon in positions:
            raise file_error(name, f"line 1: columns {header[positions[canon]]!r} and {raw!r} both mean {canon}")
        positions[canon] = i
    missing = [c for c in REQUIRED if c not in positions]
    if missing:
        raise file_error(name, f"line 1: missing column(s) {', '.join(missing)}; header is {','.join(header)!r}")
    return positions


def parse_generic_csv(req: ParseRequest) -> Normalized:
    if req.intraday:
        raise file_error(req.name, "generic CSV import holds daily bars only")
    reader = csv.reader(io.StringIO(decode_text(req.data, req.name, provider=False)))
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise file_error(req.name, "empty file: no header")
    positions = header_columns([h.strip() for h in header], req.name)
    bars, actions = BarColumns(), ActionRows()
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise file_error(req.name, f"line {reader.line_num}: {len(row)} fields, header has {len(header)}")
        _add_row(bars, actions, row, positions, header, f"line {reader.line_num}", req.name)
    return Normalized(bars_table(bars, req.fetched_at, req.keep_duplicates), actions_table(actions, req.fetched_at))


def _add_row(bars: BarColumns, actions: ActionRows, row: list[str], positions: dict[str, int],
             header: list[str], where: str, name: str) -> None:
    def cell(column: str) -> str | None:
        return row[positions[column]] if column in positions else None

    def number(column: str) -> float | None:
        text = cell(column)
        at = f"{where} column {header[positions[column]].strip()}" if column in positions else where
        return None if text is None else parse_float(text, name, at, provider=False)

    day = parse_date(cell("date") or "", name, f"{where} column {header[positions['date']].strip()}")
    prices = [number(c) for c in ("open", "high", "low", "close")]
    volume_text = cell("volume")
    volume = None
    if volume_text is not None:
        volume = parse_volume(volume_text, name, f"{where} column {header[positions['volume']].strip()}", False)
    if any(p is not None for p in prices):  # a dividend-only row has no bar
        bars.append(day, *prices, number("adjusted_close"), volume)
    split_text = cell("split_ratio")
    split = None
    if split_text is not None:
        split = parse_split(split_text, name, f"{where} column {header[positions['split_ratio']].strip()}")
    actions.add(day, dividend=number("dividend"), split_ratio=split)


def parse_date(text: str, name: str, where: str) -> dt.date:
    """The local date part of an ISO date/timestamp (``2022-06-06 00:00:00+01:00`` -> 2022-06-06)."""
    value = text.strip()
    match = _DATE_RE.match(value) or _COMPACT_DATE_RE.match(value)
    if match:
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    raise file_error(name, f"{where}: not a date (YYYY-MM-DD[ HH:MM:SS+HH:MM]): {value[:40]!r}")


def parse_split(text: str, name: str, where: str) -> float | None:
    """``2.0`` / ``2:1`` -> 2.0, ``0.1`` / ``1:10`` -> 0.1; 0, 1 and empty -> None (no split)."""
    match = _RATIO_RE.match(text)
    if match:
        try:
            num, den = float(match[1]), float(match[2])
        except ValueError:
            raise file_error(name, f"{where}: not a split ratio: {text[:40]!r}") from None
        if num <= 0 or den <= 0:
            raise file_error(name, f"{where}: split ratio must be positive: {text[:40]!r}")
        return num / den
    ratio = parse_float(text, name, where, provider=False)
    if ratio is not None and ratio < 0:
        raise file_error(name, f"{where}: negative split ratio {text[:40]!r}")
    return None if ratio in (None, 0.0, 1.0) else ratio
