"""Stooq CSV (``stooq_csv``) and Stooq bulk ASCII (``stooq_bulk_txt``) -> canonical bars.

* CSV download: ``Date,Open,High,Low,Close[,Volume]``, ascending ISO dates (stooq.pl: Polish
  header ``Data,Otwarcie,Najwyzszy,Najnizszy,Zamkniecie[,Wolumen]``). ``Volume`` is absent for
  some indices and FX.
* Bulk ASCII (members of ``d_us_txt.zip``): ``<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,
  <CLOSE>,<VOL>,<OPENINT>`` with ``DATE`` = ``YYYYMMDD`` and one ticker per file.

Adjustment basis: Stooq publishes split-adjusted levels (and, irregularly, dividend-adjusted ones,
with volume scaled by the inverse factor). There is no as-traded price and no separate adjusted
series, so ``close`` is stored exactly as Stooq publishes it and ``adjusted_close`` is null. Do not
compare Stooq levels with another source's ``close`` at a tight tolerance; compare returns.
Stooq files carry no corporate actions, so ``actions`` is always empty.

Failure bodies Stooq serves with HTTP 200 (``No data``, ``Exceeded the daily hits limit``, the
API-key page and the proof-of-work HTML) are errors here. Parsing uses Arrow's CSV reader (a 20-year
file takes about a millisecond); when it refuses a file, a line-by-line pass names the line and
column that is wrong.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cxq_data.normalize.base import Normalized, ParseRequest
from cxq_data.normalize.tables import (
    bars_from_arrow,
    check_not_html,
    empty_actions,
    parse_float,
    provider_error,
)

BULK_HEADER = ("<TICKER>", "<PER>", "<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<VOL>",
               "<OPENINT>")
CSV_HEADER = ("Date", "Open", "High", "Low", "Close", "Volume")
_POLISH = {"Data": "Date", "Otwarcie": "Open", "Najwyzszy": "High", "Najnizszy": "Low", "Zamkniecie": "Close",
           "Wolumen": "Volume"}
_KNOWN_FAILURES = ("No data", "Exceeded the daily hits limit", "get your apikey", "get_apikey")


def first_line(data: bytes) -> str:
    """The first non-empty line (BOM and surrounding blanks stripped)."""
    for line in data[:4096].decode("utf-8-sig", errors="replace").splitlines():
        if line.strip():
            return line.strip()
    return ""


def is_bulk_header(line: str) -> bool:
    return tuple(part.strip().upper() for part in line.split(",")) == BULK_HEADER


def is_stooq_csv_header(line: str) -> bool:
    names = tuple(_POLISH.get(p.strip(), p.strip()) for p in line.split(","))
    return names in (CSV_HEADER, CSV_HEADER[:5])


def _check_body(req: ParseRequest, header_ok: bool, expected: str) -> None:
    text = req.data[:4096].decode("utf-8-sig", errors="replace")
    check_not_html(text, req.name, provider=True)
    if header_ok:
        return
    head = first_line(req.data)
    for failure in _KNOWN_FAILURES:
        if failure.lower() in text.lower():
            raise provider_error(req.name, f"Stooq answered {head[:120]!r} instead of data")
    if not head:
        raise provider_error(req.name, "empty body: no data")
    raise provider_error(req.name, f"line 1: expected header {expected!r}, got {head[:120]!r}")


def parse_stooq_csv(req: ParseRequest) -> Normalized:
    head = first_line(req.data)
    _check_body(req, is_stooq_csv_header(head), ",".join(CSV_HEADER))
    names = [_POLISH.get(p.strip(), p.strip()) for p in head.split(",")]
    types = {"Date": pa.date32(), **{n: pa.float64() for n in names[1:]}}
    table = _read(req, names, types)
    volume = table["Volume"] if "Volume" in names else None
    prices = {name.lower(): table[name] for name in ("Open", "High", "Low", "Close")}
    return _normalized(req, table["Date"], prices, volume)


def parse_stooq_bulk(req: ParseRequest) -> Normalized:
    _check_body(req, is_bulk_header(first_line(req.data)), ",".join(BULK_HEADER))
    names = list(BULK_HEADER)
    types = {"<TICKER>": pa.string(), "<PER>": pa.string(), "<DATE>": pa.string(), "<TIME>": pa.string(),
             **{n: pa.float64() for n in names[4:]}}
    # <TIME> and <OPENINT> are not used: not converting them halves the parse time.
    table = _read(req, names, types, include=[n for n in names if n not in ("<TIME>", "<OPENINT>")])
    _check_single_daily_ticker(table, req.name)
    prices = {name.lower(): table[f"<{name.upper()}>"] for name in ("Open", "High", "Low", "Close")}
    return _normalized(req, _yyyymmdd(table["<DATE>"], req), prices, table["<VOL>"])


def bulk_ticker(data: bytes) -> str | None:
    """The ``<TICKER>`` of the first data row of a bulk member (None when it has no rows)."""
    lines = data[:8192].decode("utf-8-sig", errors="replace").splitlines()
    rows = [line for line in lines[1:] if line.strip()]
    return rows[0].split(",", 1)[0].strip() if rows else None


def _read(req: ParseRequest, names: list[str], types: dict[str, pa.DataType],
          include: list[str] | None = None) -> pa.Table:
    try:
        return pacsv.read_csv(
            io.BytesIO(req.data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={k: v for k, v in types.items() if not include
                                                               or k in include}, include_columns=include or []),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        _locate_problem(req, names, types)
        raise provider_error(req.name, f"unreadable CSV: {exc}") from None


def _locate_problem(req: ParseRequest, names: list[str], types: dict[str, pa.DataType]) -> None:
    """Slow pass after Arrow refused the file: raise an error naming the line and column."""
    text = req.data.decode("utf-8-sig", errors="replace")
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if line_no == 1 or not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise provider_error(req.name, f"line {line_no}: {len(row)} fields, expected {len(names)} ({','.join(names)})")
        for name, cell in zip(names, row):
            if types[name] == pa.float64():
                parse_float(cell, req.name, f"line {line_no} column {name}", provider=True)
            elif types[name] == pa.date32():
                _iso_date(cell, req, f"line {line_no} column {name}")


def _iso_date(cell: str, req: ParseRequest, where: str) -> None:
    try:
        dt.date.fromisoformat(cell.strip())
    except ValueError:
        raise provider_error(req.name, f"{where}: not a date YYYY-MM-DD: {cell[:40]!r}") from None


def _check_single_daily_ticker(table: pa.Table, name: str) -> None:
    if table.num_rows == 0:
        return
    tickers = pc.unique(table["<TICKER>"])
    if len(tickers) != 1:
        raise provider_error(name, f"one ticker per file expected, found {len(tickers)}: {tickers[:5].to_pylist()}")
    periods = pc.unique(table["<PER>"]).to_pylist()
    if periods != ["D"]:
        raise provider_error(name, f"not daily data: <PER> is {periods[:5]} (expected D)")


def _yyyymmdd(column: pa.ChunkedArray, req: ParseRequest) -> pa.Array:
    well_formed = pc.match_substring_regex(column, r"^[0-9]{8}$")
    stamps = None
    if pc.all(well_formed).as_py() is not False:
        try:
            stamps = pc.strptime(column, format="%Y%m%d", unit="s", error_is_null=False)
        except pa.ArrowInvalid:
            stamps = None
    if stamps is None:
        for i, value in enumerate(column.to_pylist()):
            try:
                dt.datetime.strptime(value, "%Y%m%d")
                ok = len(value) == 8
            except ValueError:
                ok = False
            if not ok:
                raise provider_error(req.name, f"line {i + 2} column <DATE>: not a date YYYYMMDD: {value[:20]!r}")
        raise provider_error(req.name, "column <DATE>: invalid date")
    return stamps.cast(pa.date32()).combine_chunks()


def _normalized(req: ParseRequest, dates: pa.ChunkedArray | pa.Array, prices: dict[str, pa.ChunkedArray],
                volume: pa.ChunkedArray | None) -> Normalized:
    columns: dict[str, pa.Array | None] = {k: v.combine_chunks() for k, v in prices.items()}
    try:
        vol = None if volume is None else pc.round(volume.combine_chunks()).cast(pa.int64())
    except pa.ArrowInvalid as exc:  # inf or > 2**63
        raise provider_error(req.name, f"volume out of range: {exc}") from None
    if isinstance(dates, pa.ChunkedArray):
        dates = dates.combine_chunks()
    bars = bars_from_arrow(dates, columns, vol, req.fetched_at, req.keep_duplicates)
    return Normalized(bars, empty_actions())
