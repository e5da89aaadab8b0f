"""``cxq_data ingest import``: bring a local file into the raw layer like a fetch.

The file's bytes are stored immutably (``raw.write_raw``: kind ``daily``, manifest ``format`` and
``origin`` = the file name), after the whole file was parsed once: a broken file is refused with an
error naming the file, line and column, and nothing is stored. Processing then normalizes it like
any provider response.

Format detection (first non-empty line):

* a ZIP -> Stooq bulk archive (:mod:`cxq_data.ingest.bulk_import`), one raw file per member;
* ``<TICKER>,<PER>,<DATE>,...`` -> one Stooq bulk ASCII file; the symbol comes from ``<TICKER>``;
* ``Date,Open,High,Low,Close[,Volume]`` with source ``stooq`` -> Stooq CSV;
* anything else -> the generic CSV parser (``Date, Open, High, Low, Close, [Adj Close], [Volume],
  [Dividends], [Stock Splits]``, any order and case).

Single-symbol files need ``symbol``. Re-importing bytes equal to the newest raw file of that
symbol stores nothing (``unchanged``).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxq_data.errors import ConfigError, DataFormatError
from cxq_data.ingest.bulk_import import (
    BulkJob,
    MemberResult,
    default_workers,
    plan_members,
    run_bulk,
    store_bulk_zip,
)
from cxq_data.ingest.raw_batch import latest_sha256
from cxq_data.lake_batch import BatchResult
from cxq_data.normalize.base import ParseRequest, RawFormat, parse_body
from cxq_data.normalize.stooq import bulk_ticker, first_line, is_bulk_header, is_stooq_csv_header
from cxq_data.normalize.tables import check_not_html
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse, utc_now, write_raw
from cxq_data.sources import Source, source_name
from cxq_data.symbols import from_stooq_ticker, validate_symbol

_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class ImportSummary:
    """Outcome of one import: what was stored, what was already there, what was skipped and why."""

    file: str
    source: str
    format: str
    imported: list[str] = field(default_factory=list)  # symbols with a new raw file
    unchanged: list[str] = field(default_factory=list)  # same bytes as their newest raw file
    rows: int = 0  # bars in the imported and unchanged files
    skipped: list[MemberResult] = field(default_factory=list)
    raw_files: list[str] = field(default_factory=list)
    bulk_file: str | None = None
    processed: BatchResult | None = None  # with process=True: the lake run of the imported symbols

    @property
    def errors(self) -> list[MemberResult]:
        return [s for s in self.skipped if s.is_error]

    @property
    def ok(self) -> bool:
        processed_ok = self.processed is None or self.processed.summary.ok
        return not self.errors and bool(self.imported or self.unchanged) and processed_ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "source": self.source, "format": self.format,
            "imported": len(self.imported), "unchanged": len(self.unchanged), "rows": self.rows,
            "symbols": self.imported, "unchanged_symbols": self.unchanged,
            "skipped": [{"member": s.member, "symbol": s.symbol, "reason": s.reason, "error": s.is_error}
                        for s in self.skipped],
            "raw_files": self.raw_files, "bulk_file": self.bulk_file,
            **({"processed": self._processed_dict()} if self.processed is not None else {}),
        }

    def _processed_dict(self) -> dict[str, Any]:
        summary = self.processed.summary  # type: ignore[union-attr]
        return {"written": summary.count_written, "unchanged": summary.count_unchanged,
                "failed": [{"symbol": r["symbol"], "reason": r["reason"]} for r in summary.rows()
                           if r["status"] == "failed"]}


def import_file(layout: DataLayout, path: str | Path, source: str, symbol: str | None = None, *,
                progress: bool = False, workers: int | None = None, durable: bool = True,
                process: bool = False, keep_tables: bool = False) -> ImportSummary:
    """Import one local file (CSV, Stooq ASCII or Stooq bulk ZIP) into the raw layer.

    ``symbol`` is required for single-symbol files; for a bulk ZIP it restricts the import to that
    symbol. ``workers`` (bulk ZIP only) defaults to the number of CPUs (max 8). Raises
    ``InvalidSourceError``/``InvalidSymbolError``/``ConfigError`` for bad arguments and
    ``DataFormatError``/``MalformedResponseError`` for a broken single file.

    ``process=True`` also writes the lake partitions and indexes of the imported (and unchanged)
    symbols, exactly as ``lake_batch.process_batch`` would, in the same pass: a bulk member is parsed
    once instead of once to validate it and once more to process it (``summary.processed``; with
    ``keep_tables`` its staged daily tables feed ``db.refresh_serving(staged=...)``).
    """
    src = source_name(source)
    sym = validate_symbol(symbol) if symbol is not None else None
    file = Path(path)
    if not file.is_file():
        what = "no such file" if not file.exists() else "a folder" if file.is_dir() else "not a regular file"
        raise ConfigError(f"{file}: {what}")
    with open(file, "rb") as fh:
        magic = fh.read(4)
    if magic == _ZIP_MAGIC:
        return _import_bulk_zip(layout, file, src, sym, progress, workers or default_workers(), durable,
                                process, keep_tables)
    summary = _import_single(layout, file, src, sym)
    if process:
        from cxq_data.lake_batch import process_batch

        symbols = summary.imported + summary.unchanged
        summary.processed = process_batch(layout, src, symbols, workers=1, progress=False, keep_tables=keep_tables)
    return summary


def detect_format(data: bytes, source: str, name: str) -> RawFormat:
    check_not_html(data[:4096].decode("utf-8-sig", errors="replace"), name, provider=False)
    head = first_line(data)
    if not head:
        raise DataFormatError(f"{name}: empty file")
    if "," not in head:  # "No data", "Exceeded the daily hits limit", a plain-text error page ...
        raise DataFormatError(f"{name}: line 1 is not a CSV header: {head[:120]!r}")
    if is_bulk_header(head):
        return RawFormat.STOOQ_BULK_TXT
    if source == Source.STOOQ.value and is_stooq_csv_header(head):
        return RawFormat.STOOQ_CSV
    return RawFormat.GENERIC_CSV


def _import_single(layout: DataLayout, file: Path, source: str, symbol: str | None) -> ImportSummary:
    data = file.read_bytes()
    fmt = detect_format(data, source, str(file))
    symbol = _single_symbol(data, fmt, symbol, file)
    fetched_at = utc_now()
    bars = parse_body(fmt, ParseRequest(data, str(file), fetched_at)).bars
    if bars.num_rows == 0:
        raise DataFormatError(f"{file}: no data rows")
    summary = ImportSummary(str(file), source, fmt.value, rows=bars.num_rows)
    if latest_sha256(layout, source, symbol) == hashlib.sha256(data).hexdigest():
        summary.unchanged.append(symbol)
        return summary
    ext = "txt" if fmt is RawFormat.STOOQ_BULK_TXT else "csv"
    record = write_raw(layout, RawResponse(source, symbol, data, ext, kind="daily", http_status=None,
                                           content_type="text/csv", fetched_at=fetched_at,
                                           extra={"format": fmt.value, "origin": file.name}))
    summary.imported.append(symbol)
    summary.raw_files.append(str(record.path))
    return summary


def _single_symbol(data: bytes, fmt: RawFormat, symbol: str | None, file: Path) -> str:
    if fmt is not RawFormat.STOOQ_BULK_TXT:
        if symbol is None:
            raise ConfigError(f"{file}: a single-symbol file needs --symbol")
        return symbol
    ticker = bulk_ticker(data)
    if ticker is None:
        raise DataFormatError(f"{file}: no data rows")
    from_file = from_stooq_ticker(ticker)
    if symbol is not None and symbol != from_file:
        raise ConfigError(f"{file}: --symbol {symbol} does not match the file's ticker {ticker} ({from_file})")
    return from_file


def _import_bulk_zip(layout: DataLayout, file: Path, source: str, symbol: str | None, progress: bool,
                     workers: int, durable: bool, process: bool, keep_tables: bool) -> ImportSummary:
    import zipfile

    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{file}: not a readable ZIP ({exc})") from None
    planned, skipped = plan_members(names, symbol)
    if symbol is not None and not planned:
        raise ConfigError(f"{file}: no member for symbol {symbol}")
    fetched_at = utc_now()
    stored = store_bulk_zip(layout, source, file, fetched_at)
    job = BulkJob(str(layout.root), str(file), file.name, str(stored.relative_to(layout.root)), source, fetched_at,
                  durable, process, keep_tables)
    results, processed = run_bulk(job, planned, workers, progress and sys.stderr.isatty(), file.name)
    summary = _bulk_summary(file, source, stored, results, skipped)
    summary.processed = processed
    return summary


def _bulk_summary(file: Path, source: str, stored: Path, results: list[MemberResult],
                  skipped: list[MemberResult]) -> ImportSummary:
    summary = ImportSummary(str(file), source, "stooq_bulk_zip", bulk_file=str(stored))
    for result in results:
        if result.status == "skipped":
            summary.skipped.append(result)
            continue
        summary.rows += result.rows
        (summary.imported if result.status == "imported" else summary.unchanged).append(str(result.symbol))
    summary.skipped = sorted(summary.skipped + skipped, key=lambda r: r.member)
    return summary
