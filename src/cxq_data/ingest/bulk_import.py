"""Import a Stooq bulk ASCII ZIP (``d_us_txt.zip``: ~10,000 ``<ticker>.us.txt`` members) quickly.

* The ZIP itself is kept immutably under ``raw/<source>/_bulk/{stamp}-{sha12}.zip`` with a manifest
  (the same ZIP imported again is not stored twice).
* Each member becomes a per-symbol raw file (format ``stooq_bulk_txt``, manifest ``origin`` = the ZIP
  name, ``member`` = the member path, ``bulk_file`` = the stored ZIP), so processing sees it like a
  fetch. A member whose bytes equal the newest raw file of that symbol is not stored again: the same
  ZIP imported twice adds no raw files.
* Speed: members are planned from their names (symbol, duplicates) without decompressing, then
  split into chunks that worker processes handle end to end (inflate, hash, parse-check, write);
  each chunk is made durable together (:class:`RawBatchWriter`).
* One pass (``process=True``, ``cxq_data ingest import --process``): the worker then processes its
  chunk's symbols with the tables it has just parsed (``lake.prepare_symbol(parsed=...)``), so a member
  is parsed once; the lake bytes equal those of a later ``process`` run from the raw layer (tested).

The symbol comes from the ticker (``AAPL.US`` -> ``AAPL``, ``BRK-B.US`` -> ``BRK.B``); the member
name is used to plan and must agree with the ``<TICKER>`` column. Members with an invalid ticker, no
rows, non-daily data or unreadable content are skipped and reported; none ever becomes a path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cxq_data.atomic import atomic_write_json, copy_stream_atomic
from cxq_data.errors import CxqError, InvalidSymbolError
from cxq_data.ingest.raw_batch import RawBatchWriter, latest_sha256
from cxq_data.lake_batch import BatchResult, ChunkOutput, commit_chunks, process_chunk
from cxq_data.normalize.base import Normalized, ParseRequest, RawFormat, parse_body
from cxq_data.normalize.stooq import bulk_ticker, first_line, is_bulk_header
from cxq_data.paths import DataLayout
from cxq_data.raw import MANIFEST_SUFFIX, RawResponse, format_ts, library_versions
from cxq_data.shared_tables import remove_orphans
from cxq_data.symbols import from_stooq_ticker

CHUNK_MEMBERS = 64
BULK_DIR = "_bulk"


@dataclass(frozen=True)
class MemberResult:
    """What happened to one ZIP member: imported, unchanged or skipped (with the reason)."""

    member: str
    symbol: str | None
    status: str  # imported | unchanged | skipped
    rows: int = 0
    reason: str = ""
    is_error: bool = False  # skipped because the content is broken (not merely not applicable)


@dataclass(frozen=True)
class BulkJob:
    """Everything a worker needs (picklable)."""

    root: str
    zip_path: str
    zip_name: str
    bulk_file: str
    source: str
    fetched_at: dt.datetime
    durable: bool = True
    process: bool = False  # also write the lake partitions of the chunk's symbols (indexes: by the caller)
    keep_tables: bool = False  # with process: send the daily tables back for the serving build


@dataclass
class ChunkImport:
    """A worker's chunk: what happened to each member and, when processing, the chunk's lake output."""

    members: list[MemberResult]
    processed: ChunkOutput | None = None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def store_bulk_zip(layout: DataLayout, source: str, path: Path, fetched_at: dt.datetime) -> Path:
    """Keep the ZIP under raw/<source>/_bulk/ (once per content); return the stored path."""
    sha = file_sha256(path)
    folder = layout.raw / source / BULK_DIR
    for manifest_path in sorted(folder.glob(f"*-{sha[:12]}.zip{MANIFEST_SUFFIX}")):
        existing = manifest_path.with_name(manifest_path.name[: -len(MANIFEST_SUFFIX)])
        if existing.is_file() and json.loads(manifest_path.read_text()).get("sha256") == sha:
            return existing  # same content already kept: the raw layer stores it once
    dest = folder / f"{fetched_at.strftime('%Y%m%dT%H%M%S%fZ')}-{sha[:12]}.zip"
    with open(path, "rb") as src:
        size = copy_stream_atomic(src, dest)
    manifest = {"source": source, "kind": "bulk", "file": dest.name, "bytes": size, "sha256": sha,
                "fetched_at": format_ts(fetched_at), "format": "stooq_bulk_zip", "origin": path.name,
                "library_versions": library_versions()}
    atomic_write_json(dest.with_name(dest.name + MANIFEST_SUFFIX), manifest)
    return dest


def plan_members(names: list[str], only_symbol: str | None) -> tuple[list[tuple[str, str]], list[MemberResult]]:
    """(member, symbol) pairs to import, sorted by member, and members skipped from their name alone."""
    planned: list[tuple[str, str]] = []
    skipped: list[MemberResult] = []
    seen: dict[str, str] = {}
    for member in sorted(names):
        if member.endswith("/"):
            continue
        if not member.lower().endswith(".txt"):
            skipped.append(MemberResult(member, None, "skipped", reason="not a .txt member"))
            continue
        try:
            symbol = from_stooq_ticker(PurePosixPath(member).name[:-4])
        except InvalidSymbolError as exc:
            skipped.append(MemberResult(member, None, "skipped", reason=f"invalid ticker: {exc}"))
            continue
        if only_symbol is not None and symbol != only_symbol:
            continue
        if symbol in seen:
            skipped.append(MemberResult(member, symbol, "skipped", reason=f"duplicate symbol, kept {seen[symbol]}"))
            continue
        seen[symbol] = member
        planned.append((member, symbol))
    return planned, skipped


def run_bulk(job: BulkJob, planned: list[tuple[str, str]], workers: int, progress: bool = False,
             desc: str = "") -> tuple[list[MemberResult], BatchResult | None]:
    """Import planned members, in worker processes when ``workers > 1``; results in member order.

    With ``job.process`` each worker also processes the symbols of its chunk, reusing the tables it
    parsed to validate the members (a Stooq member is parsed once, not once more by processing); the
    indexes are committed here behind sync barriers as chunks arrive (:func:`cxq_data.lake_batch.commit_chunks`).
    """
    chunks = [planned[i:i + CHUNK_MEMBERS] for i in range(0, len(planned), CHUNK_MEMBERS)]
    pool = _pool(min(workers, len(chunks))) if workers > 1 and len(chunks) > 1 else None
    if pool is not None:
        remove_orphans()  # shared-memory tables of a killed earlier run
    # The pool exists before tqdm starts its monitor thread: a fork never copies a running thread.
    from tqdm import tqdm

    results: list[MemberResult] = []
    batch = None
    try:
        batches = (pool.imap_unordered(_import_chunk_star, [(job, c) for c in chunks]) if pool
                   else (import_chunk(job, c) for c in chunks))
        with tqdm(total=len(planned), disable=not progress, unit="member", file=sys.stderr, desc=desc) as bar:
            def processed() -> Iterator[ChunkOutput]:
                for chunk in batches:
                    results.extend(chunk.members)
                    bar.update(len(chunk.members))
                    if chunk.processed is not None:
                        yield chunk.processed

            if job.process:
                batch = commit_chunks(DataLayout(Path(job.root)), processed(), job.keep_tables)
            else:
                for _ in processed():
                    pass
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        _close_archives()
    return sorted(results, key=lambda r: r.member), batch


def _pool(processes: int) -> Any:
    # fork where it exists: workers start in milliseconds and need no importable __main__ (spawn
    # fails for `python -` and some notebooks); elsewhere the platform default.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ctx.Pool(processes)


def _import_chunk_star(args: tuple[BulkJob, list[tuple[str, str]]]) -> ChunkImport:
    return import_chunk(*args)


def import_chunk(job: BulkJob, chunk: list[tuple[str, str]]) -> ChunkImport:
    """Worker: import a run of members from the ZIP and make them durable together; with
    ``job.process``, then write the lake partitions of its imported and unchanged symbols."""
    layout = DataLayout(Path(job.root))
    results = []
    parsed: dict[Path, Normalized] = {}
    archive = _open_archive(job.zip_path)
    with RawBatchWriter(layout, durable=job.durable) as writer:
        for member, symbol in chunk:
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # CRC mismatch, truncated member
                results.append(MemberResult(member, symbol, "skipped", reason=f"unreadable member: {exc}",
                                            is_error=True))
                continue
            results.append(_import_member(job, data, member, symbol, layout, writer, parsed))
    if not job.process:
        return ChunkImport(results)
    symbols = [str(r.symbol) for r in results if r.status != "skipped"]
    return ChunkImport(results, process_chunk(job.root, job.source, symbols, job.keep_tables, parsed))


_ARCHIVES: dict[tuple[Any, ...], zipfile.ZipFile] = {}


def _open_archive(path: str | Path) -> zipfile.ZipFile:
    """The ZIP, opened once per process and run: reading the central directory costs ~50 ms for a
    5,000-member daily file, which once per chunk of 64 members was ~4 s of CPU per import. Keyed by
    pid (a forked worker never shares the parent's file offset) and by the file's identity (a file
    replaced at the same path is opened anew); :func:`run_bulk` closes them when it ends."""
    st = os.stat(path)
    key = (os.getpid(), str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _ARCHIVES:
        _close_archives()
        _ARCHIVES[key] = zipfile.ZipFile(path)
    return _ARCHIVES[key]


def _close_archives() -> None:
    for archive in _ARCHIVES.values():
        archive.close()
    _ARCHIVES.clear()


def _import_member(job: BulkJob, data: bytes, member: str, symbol: str, layout: DataLayout,
                   writer: RawBatchWriter, parsed: dict[Path, Normalized]) -> MemberResult:
    ticker = bulk_ticker(data)
    if ticker is None:
        head = first_line(data)
        if head and not is_bulk_header(head):  # garbage, an HTML page: broken, not merely empty
            return MemberResult(member, symbol, "skipped", is_error=True,
                                reason=f"not a Stooq bulk member: first line {head[:60]!r}")
        return MemberResult(member, symbol, "skipped", reason="no rows")
    digest = hashlib.sha256(data).hexdigest()
    if latest_sha256(layout, job.source, symbol) == digest:  # parsed and stored before: skip the parse
        return MemberResult(member, symbol, "unchanged", _count_rows(data))
    try:
        if from_stooq_ticker(ticker) != symbol:
            return MemberResult(member, symbol, "skipped", reason=f"<TICKER> {ticker!r} does not match the member name",
                                is_error=True)
        normalized = parse_body(RawFormat.STOOQ_BULK_TXT,
                                ParseRequest(data, f"{job.zip_name}:{member}", job.fetched_at))
    except CxqError as exc:
        return MemberResult(member, symbol, "skipped", reason=str(exc), is_error=True)
    extra = {"format": RawFormat.STOOQ_BULK_TXT.value, "origin": job.zip_name, "member": member,
             "bulk_file": job.bulk_file}
    record = writer.add(RawResponse(job.source, symbol, data, "txt", http_status=None, content_type="text/plain",
                                    extra=extra, fetched_at=job.fetched_at), digest)
    if job.process:  # the same bytes, parsed the same way processing would: hand the tables over
        parsed[record.path] = normalized
    return MemberResult(member, symbol, "imported", normalized.bars.num_rows)


def _count_rows(data: bytes) -> int:
    """Data rows of a member already stored (non-empty lines after the header)."""
    return sum(1 for line in data.splitlines()[1:] if line.strip())


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
