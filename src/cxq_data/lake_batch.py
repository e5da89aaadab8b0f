"""Processing many (symbol, source) pairs at once: worker processes, one durability barrier, and the
daily tables handed to the serving build in memory.

Per pair the work is exactly :func:`cxq_data.lake.prepare_symbol` (so the bytes equal those of a
single-symbol run, e.g. a Snakemake job), with three batch-level savings:

* partitions are written without a per-file fsync (~7 ms each here, i.e. 700 s for a 100,000-file
  lake); one ``sync()`` makes them durable before any index is written, and a second one follows
  the indexes. Crash safety is unchanged: an index (the Snakemake target, the serving layer's input)
  only ever names partitions that are already durable.
* symbols are split into chunks processed by a pool of worker processes (fork).
* with ``keep_tables=True`` the workers send back each chunk's daily partitions concatenated per
  (source, year) and sorted by (symbol, date), so the serving build does not read 100,000 small files
  back (see :class:`StagedDaily` and ``serving.build_serving(staged=...)``).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from cxq_data.arrow_util import repeated_strings
from cxq_data.errors import CxqError
from cxq_data.lake import PendingSymbol, ProcessSummary, Status, SymbolResult, prepare_symbol
from cxq_data.lake_index import FileKey, file_key, index_path
from cxq_data.lake_io import sync_barrier
from cxq_data.normalize.base import Normalized
from cxq_data.paths import DataLayout
from cxq_data.raw import list_raw_symbols
from cxq_data.sources import source_name

CHUNK_SYMBOLS = 64
_SYMBOL_FIELD = pa.field("symbol", pa.string(), nullable=False)

GroupKey = tuple[str, int]  # (source, year): one serving file of the daily dataset


@dataclass
class StagedDaily:
    """Daily partitions just written, by serving group: which symbol's rows, with which file sha256.

    ``tables[key]`` holds a list of chunk tables (``symbol`` + partition columns, sorted by symbol,
    date); ``members[key][symbol] = (sha256, chunk number, offset, rows)`` locates one partition.
    """

    tables: dict[GroupKey, list[pa.Table]] = field(default_factory=dict)
    members: dict[GroupKey, dict[str, tuple[str, int, int, int]]] = field(default_factory=dict)
    # index file path -> (file identity after the commit, index): the serving build reuses an index whose
    # file is still that file instead of reading and parsing it again (see lake_index.iter_indexes)
    indexes: dict[str, tuple[FileKey, dict[str, Any]]] = field(default_factory=dict)

    def add_chunk(self, key: GroupKey, table: pa.Table, located: Iterable[tuple[str, str, int, int]]) -> None:
        chunk_no = len(self.tables.setdefault(key, []))
        self.tables[key].append(table)
        slots = self.members.setdefault(key, {})
        for symbol, sha, offset, rows in located:
            slots[symbol] = (sha, chunk_no, offset, rows)

    def merge(self, other: StagedDaily) -> StagedDaily:
        """Add another run's groups (e.g. another source); returns self."""
        for key, tables in other.tables.items():
            base = len(self.tables.setdefault(key, []))
            self.tables[key].extend(tables)
            slots = self.members.setdefault(key, {})
            for symbol, (sha, chunk_no, offset, rows) in other.members[key].items():
                slots[symbol] = (sha, base + chunk_no, offset, rows)
        self.indexes.update(other.indexes)
        return self

    def member_slices(self, key: GroupKey, members: list[tuple[str, str]]) -> list[pa.Table] | None:
        """Slices of the staged chunk tables (with ``symbol``) holding exactly ``members`` - (symbol,
        sha256) pairs, in order - one slice per run of adjacent rows; None when any member is not staged
        with that sha256. Lets the serving build stack whole chunks instead of ~5,000 partitions."""
        slots = self.members.get(key, {})
        runs: list[list[int]] = []  # [chunk, start, stop]
        for symbol, sha in members:
            slot = slots.get(symbol)
            if slot is None or slot[0] != sha:
                return None
            _, chunk_no, offset, rows = slot
            if runs and runs[-1][0] == chunk_no and runs[-1][2] == offset:
                runs[-1][2] += rows
            else:
                runs.append([chunk_no, offset, offset + rows])
        return [self.tables[key][chunk].slice(start, stop - start) for chunk, start, stop in runs]

    def partition(self, key: GroupKey, symbol: str, sha256: str) -> pa.Table | None:
        """The rows of one partition (without the symbol column) if staged with exactly this sha256."""
        slot = self.members.get(key, {}).get(symbol)
        if slot is None or slot[0] != sha256:
            return None
        _, chunk_no, offset, rows = slot
        return self.tables[key][chunk_no].slice(offset, rows).drop_columns(["symbol"])


@dataclass
class BatchResult:
    summary: ProcessSummary
    staged: StagedDaily | None


@dataclass
class ChunkOutput:
    """One chunk's processed symbols: results, indexes still to commit, staged serving tables."""

    results: list[SymbolResult]
    indexes: list[dict[str, Any] | None]
    staged: list[tuple[GroupKey, pa.Table, list[tuple[str, str, int, int]]]]


def _stage(source: str, pendings: list[PendingSymbol]) -> list[tuple[GroupKey, pa.Table, list]]:
    """Concatenate a chunk's partitions per year, in symbol order (chunks are sorted runs of symbols)."""
    by_year: dict[int, list[tuple[str, str, pa.Table]]] = {}
    for p in sorted(pendings, key=lambda p: p.result.symbol):
        for year, table in p.daily.items():
            by_year.setdefault(year, []).append((p.result.symbol, p.index["daily"][str(year)]["sha256"], table))
    out = []
    for year, parts in sorted(by_year.items()):
        located, offset = [], 0
        for symbol, sha, table in parts:
            located.append((symbol, sha, offset, table.num_rows))
            offset += table.num_rows
        # combine_chunks copies the rows out of each pair's whole table: pickling a slice back to the parent
        # would otherwise send every year of the pair with every year's slice
        body = pa.concat_tables([table for _, _, table in parts]).combine_chunks()
        symbols = repeated_strings([symbol for symbol, _, _ in parts], [table.num_rows for _, _, table in parts])
        out.append(((source, year), body.add_column(0, _SYMBOL_FIELD, symbols), located))
    return out


def process_chunk(root: str, source: str, symbols: list[str], keep_tables: bool,
                  parsed: Mapping[Path, Normalized] | None = None) -> ChunkOutput:
    """Worker: prepare (write partitions, unsynced) every symbol of a chunk; indexes are committed later
    by :func:`commit_chunks`. ``parsed``: raw records the caller has already normalized."""
    layout = DataLayout(Path(root))
    results: list[SymbolResult] = []
    indexes: list[dict[str, Any] | None] = []
    pendings = []
    for symbol in symbols:
        try:
            pending = prepare_symbol(layout, source, symbol, durable=False, keep_daily=keep_tables, parsed=parsed)
        except (CxqError, ValueError, OSError, pa.ArrowException) as exc:
            results.append(SymbolResult(str(symbol), source, Status.FAILED, reason=str(exc)))
            indexes.append(None)
            continue
        pendings.append(pending)
        results.append(pending.result)
        indexes.append(pending.index)
    return ChunkOutput(results, indexes, _stage(source, pendings) if keep_tables else [])


def _process_chunk_star(args: tuple[str, str, list[str], bool]) -> ChunkOutput:
    return process_chunk(*args)


def _chunk_outputs(layout: DataLayout, source: str, symbols: list[str], workers: int, keep_tables: bool,
                   bar: Any) -> Iterator[ChunkOutput]:
    chunks = [symbols[i:i + CHUNK_SYMBOLS] for i in range(0, len(symbols), CHUNK_SYMBOLS)]
    jobs = [(str(layout.root), source, c, keep_tables) for c in chunks]
    if workers <= 1 or len(chunks) <= 1:
        for job in jobs:
            out = process_chunk(*job)
            bar.update(len(out.results))
            yield out
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ctx.Pool(min(workers, len(chunks))) as pool:
        for out in pool.imap(_process_chunk_star, jobs):  # imap keeps chunk (= symbol) order
            bar.update(len(out.results))
            yield out


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def process_batch(layout: DataLayout, source: str, symbols: list[str] | None = None, *,
                  workers: int | None = None, progress: bool = True, keep_tables: bool = False) -> BatchResult:
    """Process many symbols of one source: partitions first (unsynced, in ``workers`` processes), one
    sync barrier, then every index, then a second barrier. One failing symbol never stops the others.
    """
    from tqdm import tqdm

    source = source_name(source)
    todo = list(symbols) if symbols is not None else list_raw_symbols(layout, source)
    disable = not progress or not sys.stderr.isatty()
    with tqdm(total=len(todo), desc=f"process {source}", unit="symbol", file=sys.stderr, disable=disable) as bar:
        outputs = _chunk_outputs(layout, source, todo, workers or default_workers(), keep_tables, bar)
        return commit_chunks(layout, outputs, keep_tables)


def commit_chunks(layout: DataLayout, outputs: Iterable[ChunkOutput], keep_tables: bool) -> BatchResult:
    """Collect chunk outputs (partitions written, unsynced), then one sync barrier, every index, and a
    second barrier. Also used by the bulk importer, whose workers process the members they import."""
    staged = StagedDaily() if keep_tables else None
    results: list[SymbolResult] = []
    pending: list[tuple[SymbolResult, dict[str, Any]]] = []
    for out in outputs:
        for result, index in zip(out.results, out.indexes):
            results.append(result)
            if index is not None:
                pending.append((result, index))
        for key, table, located in out.staged:
            staged.add_chunk(key, table, located)  # type: ignore[union-attr]
    sync_barrier()  # every partition is durable before any index names it
    for result, index in pending:
        PendingSymbol(result, index).commit(layout, durable=False)
        if staged is not None:
            path = str(index_path(layout, result.symbol, result.source))
            staged.indexes[path] = (file_key(path), index)
    sync_barrier()
    return BatchResult(ProcessSummary(results), staged)
