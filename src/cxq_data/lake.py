"""The processed lake: raw records of one (symbol, source) -> Hive-partitioned Parquet + an index.

    processed/symbol=X/source=Y/year=Z/data.parquet                 daily bars (schema.PARTITION_SCHEMA)
    processed/actions/symbol=X/source=Y/data.parquet                corporate actions (ACTIONS_SCHEMA)
    processed/intraday/interval=I/symbol=X/source=Y/date=D/data.parquet   intraday bars (INTRADAY_SCHEMA)
    processed/symbol=X/source=Y/_index.json                         what was written, from which raw files

Writes are deterministic (same raw input -> identical bytes) and a file whose new bytes equal the
old ones is left alone, so its mtime does not move. The index is written last: it is the Snakemake
target of the per-(symbol, source) job and the serving layer's change detector (it never reads the
partitions to learn what changed). Nothing here is read by queries: see ``cxq_data.serving``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cxq_data import normalize as _normalize
from cxq_data.arrow_util import arrow_to_int64, conform, empty_table, strictly_increasing
from cxq_data.errors import ConfigError, CxqError, DataFormatError, RawLayerError
from cxq_data.lake_append import code_tag, merged_years, new_records, raw_entries, unchanged_since
from cxq_data.lake_index import INTRADAY_PREFIX, actions_file, index_path, intraday_file, read_index
from cxq_data.lake_io import (
    content_hash,
    parquet_bytes,
    partition_bytes,
    remove_file_and_empty_parents,
    sha256_hex,
    write_if_changed,
    write_json_if_changed,
)
from cxq_data.lake_results import ProcessSummary, Status, SymbolResult
from cxq_data.normalize.base import Normalized
from cxq_data.paths import DataLayout
from cxq_data.raw import RawRecord, list_raw, list_raw_symbols
from cxq_data.schema import ACTIONS_SCHEMA, INTRADAY_SCHEMA, PARTITION_SCHEMA
from cxq_data.sources import source_name
from cxq_data.symbols import validate_symbol

INDEX_FORMAT = 1
DAILY_KIND = "daily"


@dataclass
class _Writes:
    """Bookkeeping of one symbol's file writes."""

    written: int = 0
    unchanged: int = 0
    removed: int = 0
    durable: bool = True  # False in batch runs: one sync barrier before the indexes instead

    def record(self, changed: bool) -> None:
        if changed:
            self.written += 1
        else:
            self.unchanged += 1


def _canonical(table: pa.Table, schema: pa.Schema, key: str, what: str) -> pa.Table:
    """Select/cast to the explicit schema, refuse null or duplicate keys, sort by key."""
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise DataFormatError(f"{what}: normalized table lacks columns {missing}")
    table = conform(table, schema)
    if table.num_rows and table.column(key).null_count:
        raise DataFormatError(f"{what}: {table.column(key).null_count} row(s) without a {key}")
    if table.num_rows and strictly_increasing(arrow_to_int64(table.column(key))):
        return table.combine_chunks()  # the usual case (merge_latest sorts): no distinct count, no sort
    if table.num_rows and pc.count_distinct(table.column(key)).as_py() != table.num_rows:
        raise DataFormatError(f"{what}: duplicate {key} values after merge_latest")
    return table.sort_by(key).combine_chunks() if table.num_rows else table


def _split(table: pa.Table, keys: pa.Array) -> dict[Any, pa.Table]:
    """Rows of ``table`` grouped by ``keys`` (table sorted, so every group is a contiguous slice)."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if not len(keys):
        return {}
    # Group starts from one vectorised comparison instead of a Python loop over every row.
    starts = pc.indices_nonzero(pc.not_equal(keys[1:], keys[:-1])).to_pylist()
    bounds = [0, *(i + 1 for i in starts), len(keys)]
    return {keys[a].as_py(): table.slice(a, b - a) for a, b in itertools.pairwise(bounds)}


def _file_entry(layout: DataLayout, path: Path, data: bytes, table: pa.Table, key: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"file": layout.relative(path), "sha256": sha256_hex(data),
                             "rows": table.num_rows, "bytes": len(data)}
    if table.num_rows:  # the table is sorted by key: first and last row are min and max
        col = table.column(key)
        entry["min"] = _iso(col[0].as_py())
        entry["max"] = _iso(col[-1].as_py())
    return entry


def _reusable(layout: DataLayout, prior: dict[str, Any] | None, content: str) -> bool:
    """The index already vouches for a file with this content, and that file is still there."""
    if not prior or prior.get("content") != content:
        return False
    try:
        return (layout.root / prior["file"]).stat().st_size == prior["bytes"]
    except (OSError, KeyError):
        return False


def _write_partition(layout: DataLayout, path: Path, part: pa.Table, prior: dict[str, Any] | None,
                     writes: _Writes) -> dict[str, Any]:
    """One daily partition: skipped by content hash when unchanged (no encode, no read), else written."""
    content = content_hash(part)
    if _reusable(layout, prior, content) and prior is not None:
        writes.record(False)
        return prior
    data = partition_bytes(part)
    writes.record(write_if_changed(path, data, durable=writes.durable))
    return {**_file_entry(layout, path, data, part, "date"), "content": content}


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.isoformat()


def _normalize_records(records: list[RawRecord], parsed: Mapping[Path, Normalized] | None = None) -> Any:
    """normalize_record each raw record, then merge_latest (latest fetch wins per date).

    ``parsed`` holds records already normalized from the same bytes (an importer that has just parsed
    a file to validate it and then stored it): raw files are immutable, so the path identifies them.
    """
    parts = []
    for record in records:
        known = parsed.get(record.path) if parsed else None
        if known is not None:
            parts.append(known)
            continue
        try:
            parts.append(_normalize.normalize_record(record))
        except CxqError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, pa.ArrowException) as exc:
            # Normalizer bugs or odd files still name the raw file they came from.
            raise DataFormatError(f"{record.path}: cannot normalize ({type(exc).__name__}: {exc})") from exc
    return _normalize.merge_latest(parts)


# ------------------------------------------------------------------------------------------ daily
def _write_daily(layout: DataLayout, symbol: str, source: str, bars: pa.Table, writes: _Writes,
                 prior: dict[str, Any] | None = None, parts: dict[int, pa.Table] | None = None) -> dict[str, Any]:
    """Daily partitions of one symbol; ``prior`` = the previous index's ``daily`` entries (skip by hash).
    The year tables are also put into ``parts`` when given."""
    what = f"{source}/{symbol} daily"
    table = _canonical(bars, PARTITION_SCHEMA, "date", what)
    base = layout.symbol_source_dir(symbol, source)
    existed = base.is_dir()  # a folder this run creates holds no stale year: no listing (~0.2 ms a pair)
    years: dict[str, Any] = {}
    if table.num_rows:
        for year, part in _split(table, pc.year(table.column("date"))).items():
            if parts is not None:
                parts[year] = part
            path = layout.partition_file(symbol, source, year)
            years[str(year)] = _write_partition(layout, path, part, (prior or {}).get(str(year)), writes)
    for old in sorted(base.glob("year=*/data.parquet")) if existed else []:
        if old.parent.name.removeprefix("year=") not in years:
            writes.removed += remove_file_and_empty_parents(old, base)
    return years


def _write_actions(layout: DataLayout, symbol: str, source: str, actions: pa.Table, writes: _Writes) -> Any:
    table = _canonical(actions, ACTIONS_SCHEMA, "date", f"{source}/{symbol} actions")
    path = actions_file(layout, symbol, source)
    if not table.num_rows:
        writes.removed += remove_file_and_empty_parents(path, layout.actions_dir)
        return None
    data = parquet_bytes(table)
    writes.record(write_if_changed(path, data, durable=writes.durable))
    return _file_entry(layout, path, data, table, "date")


# --------------------------------------------------------------------------------------- intraday
def intraday_kinds(layout: DataLayout, source: str, symbol: str) -> list[str]:
    folder = layout.raw / source / symbol
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith(INTRADAY_PREFIX))


def _write_intraday(layout: DataLayout, symbol: str, source: str, interval: str, bars: pa.Table,
                    writes: _Writes) -> dict[str, Any]:
    """One file per UTC date (US sessions never cross UTC midnight); stale dates are removed."""
    if not interval.isalnum():
        raise RawLayerError(f"raw/{source}/{symbol}: invalid intraday interval {interval!r}")
    kind = INTRADAY_PREFIX + interval
    table = _canonical(bars, INTRADAY_SCHEMA, "ts", f"{source}/{symbol} {kind}")
    days: dict[str, Any] = {}
    if table.num_rows:
        utc_days = pc.cast(pc.cast(table.column("ts"), pa.timestamp("us")), pa.date32())
        for day, part in _split(table, utc_days).items():
            path = intraday_file(layout, interval, symbol, source, day)
            data = parquet_bytes(part)
            writes.record(write_if_changed(path, data, durable=writes.durable))
            days[day.isoformat()] = _file_entry(layout, path, data, part, "ts")
    base = layout.intraday_dir(interval) / f"symbol={symbol}" / f"source={source}"
    for old in sorted(base.glob("date=*/data.parquet")) if base.is_dir() else []:
        if old.parent.name.removeprefix("date=") not in days:
            writes.removed += remove_file_and_empty_parents(old, layout.intraday_dir(interval))
    return days


# ---------------------------------------------------------------------------------------- public
@dataclass
class PendingSymbol:
    """A processed (symbol, source) whose partitions are written but whose index is not (batch runs)."""

    result: SymbolResult
    index: dict[str, Any]
    daily: dict[int, pa.Table] = field(default_factory=dict)  # year -> partition table (kept on request)

    def commit(self, layout: DataLayout, durable: bool = True) -> SymbolResult:
        """Write the index (after the partitions are durable); count it in the result."""
        changed = write_json_if_changed(index_path(layout, self.result.symbol, self.result.source), self.index,
                                        durable=durable, compact=True)
        return _counted(self.result, changed)


def write_symbol(layout: DataLayout, source: str, symbol: str, normalized: Any,
                 raw_records: list[RawRecord] | None = None,
                 intraday: dict[str, pa.Table] | None = None) -> SymbolResult:
    """Write already-normalized daily bars/actions (and optional intraday tables by interval) + the index.

    :func:`process_symbol` calls this after normalizing the raw layer; benchmarks and tests may call
    it directly. ``raw_records`` only feed the index's provenance list.
    """
    source, symbol = source_name(source), validate_symbol(symbol)
    writes = _Writes()
    prior = (read_index(layout, symbol, source) or {}).get("daily")
    years = _write_daily(layout, symbol, source, normalized.bars, writes, prior)
    actions = _write_actions(layout, symbol, source, normalized.actions, writes)
    intraday_entries = {}
    for interval, table in sorted((intraday or {}).items()):
        intraday_entries[interval] = _write_intraday(layout, symbol, source, interval, table, writes)
    pending = _pending(layout, symbol, source, years, actions, intraday_entries, raw_records or [], writes)
    return pending.commit(layout)


def _pending(layout: DataLayout, symbol: str, source: str, years: dict[str, Any], actions: Any,
             intraday: dict[str, Any], records: list[RawRecord], writes: _Writes,
             raw: list[dict[str, Any]] | None = None) -> PendingSymbol:
    index = {
        "format": INDEX_FORMAT,
        "symbol": symbol,
        "source": source,
        "daily": years,
        "actions": actions,
        "intraday": intraday,
        "raw": raw if raw is not None else raw_entries(layout, records),
    }
    rows = sum(e["rows"] for e in years.values())
    result = SymbolResult(symbol, source, Status.UNCHANGED, rows, sorted(int(y) for y in years), writes.written,
                          writes.unchanged, writes.removed)
    return PendingSymbol(result, index)


def _counted(result: SymbolResult, index_changed: bool) -> SymbolResult:
    # The index is written last (and only when it changes): its presence means every partition is final.
    if index_changed:
        result.files_written += 1
    else:
        result.files_unchanged += 1
    result.status = Status.WRITTEN if result.files_written or result.files_removed else Status.UNCHANGED
    return result


def prepare_symbol(layout: DataLayout, source: str, symbol: str, *, durable: bool = True,
                   keep_daily: bool = False, daily: list[RawRecord] | None = None,
                   parsed: Mapping[Path, Normalized] | None = None) -> PendingSymbol:
    """Normalize every raw record of (source, symbol), merge (latest fetch wins) and write the
    partitions; the index is left to :meth:`PendingSymbol.commit`.

    With ``durable=False`` the partitions are not fsynced: the caller must call
    ``lake_io.sync_barrier()`` before committing. ``keep_daily`` keeps the year tables in the result
    (the serving build of a batch run then needs not read them back). ``daily`` replaces the listing
    of the daily raw folder (S3 storage mode: listed in S3, only files added since the index fetched;
    the full path reads every record and raises :class:`RawLayerError` for one that is not there).
    ``parsed`` supplies records already normalized by the caller (see :func:`_normalize_records`).
    """
    source, symbol = source_name(source), validate_symbol(symbol)
    daily = list_raw(layout, source, symbol, DAILY_KIND) if daily is None else daily
    kinds = intraday_kinds(layout, source, symbol)
    if not daily and not kinds:
        raise RawLayerError(f"{source}/{symbol}: no raw files under {layout.raw_dir(source, symbol)}")
    writes = _Writes(durable=durable)
    prior_index = read_index(layout, symbol, source)
    if prior_index is not None and unchanged_since(layout, source, prior_index, daily, has_intraday=bool(kinds)):
        return _up_to_date(symbol, source, prior_index)
    added = new_records(layout, source, prior_index, daily, has_intraday=bool(kinds))
    if added is not None and prior_index is not None:
        pending = _append(layout, symbol, source, prior_index, added, daily, writes, keep_daily, parsed)
        if pending is not None:
            return pending
    prior = (prior_index or {}).get("daily")
    records = list(daily)
    intraday_entries = {}
    for kind in kinds:
        kind_records = list_raw(layout, source, symbol, kind)
        records += kind_records
        interval = kind.removeprefix(INTRADAY_PREFIX)
        bars = _normalize_records(kind_records).bars
        intraday_entries[interval] = _write_intraday(layout, symbol, source, interval, bars, writes)
    # Intraday only: empty daily tables, so that no stale daily data is left behind.
    merged = _normalize_records(daily, parsed) if daily else Normalized(empty_table(PARTITION_SCHEMA),
                                                                empty_table(ACTIONS_SCHEMA))
    parts: dict[int, pa.Table] = {}
    years = _write_daily(layout, symbol, source, merged.bars, writes, prior, parts)
    actions = _write_actions(layout, symbol, source, merged.actions, writes)
    pending = _pending(layout, symbol, source, years, actions, intraday_entries, records, writes)
    pending.index["code"] = code_tag(source)
    if keep_daily:
        pending.daily = parts
    return pending


def _up_to_date(symbol: str, source: str, index: dict[str, Any]) -> PendingSymbol:
    files = len(index["daily"]) + (1 if index.get("actions") else 0)
    rows = sum(e["rows"] for e in index["daily"].values())
    years = sorted(int(y) for y in index["daily"])
    return PendingSymbol(SymbolResult(symbol, source, Status.UNCHANGED, rows, years, 0, files, 0), index)


def _append(layout: DataLayout, symbol: str, source: str, prior_index: dict[str, Any], added: list[RawRecord],
            records: list[RawRecord], writes: _Writes, keep_daily: bool,
            parsed: Mapping[Path, Normalized] | None) -> PendingSymbol | None:
    """Incremental path (see :mod:`cxq_data.lake_append`): only the years the new raw files touch are
    merged and written. None when an old partition cannot be trusted (take the full path)."""
    merged = merged_years(layout, prior_index, added, lambda recs: _normalize_records(recs, parsed))
    if merged is None:
        return None
    touched, actions_table = merged
    years = dict(prior_index["daily"])
    parts: dict[int, pa.Table] = {}
    for year, bars in touched.items():
        parts[year] = table = _canonical(bars, PARTITION_SCHEMA, "date", f"{source}/{symbol} daily")
        path = layout.partition_file(symbol, source, year)
        years[str(year)] = _write_partition(layout, path, table, years.get(str(year)), writes)
    writes.unchanged += len(years) - len(touched)
    actions = (prior_index.get("actions") if actions_table is None
               else _write_actions(layout, symbol, source, actions_table, writes))
    pending = _pending(layout, symbol, source, years, actions, {}, records, writes,
                       raw=prior_index["raw"] + raw_entries(layout, added))  # old manifests not re-read
    pending.index["code"] = prior_index["code"]
    if keep_daily:
        pending.daily = parts
    return pending


def process_symbol(layout: DataLayout, source: str, symbol: str) -> SymbolResult:
    """Normalize every raw record of (source, symbol), merge (latest fetch wins), write the lake + index.

    Raises :class:`RawLayerError` when there is no raw file at all, or whatever the normalizer raises
    for a bad file (the lake is left as it was: a partition is either the old or the new file).
    """
    return prepare_symbol(layout, source, symbol).commit(layout)


def process(layout: DataLayout, source: str, symbols: list[str] | None = None,
            progress: bool = True, workers: int | None = None) -> ProcessSummary:
    """:func:`process_symbol` for many symbols (default: every symbol in raw/{source}), in worker
    processes with one durability barrier (see :mod:`cxq_data.lake_batch`).

    One failing symbol never stops the others; its row in the summary says why. A source without any
    raw data is an error (a typo in the source name must not look like a run with nothing to do).
    """
    from cxq_data.lake_batch import process_batch

    if symbols is None and not list_raw_symbols(layout, source):
        have = sorted(p.name for p in layout.raw.iterdir() if p.is_dir()) if layout.raw.is_dir() else []
        raise ConfigError(f"no raw data for source {source!r} under {layout.raw / source}; "
                          f"sources with raw data: {', '.join(have) or 'none'}")
    return process_batch(layout, source, symbols, workers=workers, progress=progress).summary
