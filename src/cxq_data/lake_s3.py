"""The processed lake under S3 default storage: a process job that sees only S3, and the host's mirror.

Snakemake's default storage moves only a rule's declared files, and a process job writes many
partitions and indexes besides its declared bucket file. So in storage mode the library moves them:

* :func:`process_bucket_s3` (one Snakemake job per (source, bucket), on any node) plans every symbol
  from S3 listings: a symbol whose index was written by the code in use from exactly the raw files S3
  lists, and whose files S3 holds at the indexed sizes, is up to date (its index is the only download).
  For the others it downloads into a job-local scratch data dir the index, the files it names and the
  raw files the library will read: only the ones added since the index when the library's append path
  applies (``prepare_symbol(daily=...)`` with the records S3 lists; it reads only new files), else all
  of them (:func:`cxq_data.lake_batch.process_batch`); the bytes are those of a local run. It uploads
  the partitions whose bytes differ from S3's (MD5 vs ETag), then the index, then deletes the objects
  of partitions that vanished, and writes the bucket file, which Snakemake stores. Objects are
  replaced whole (S3 PUTs are atomic); an index, uploaded after its files, never names a file S3
  does not hold yet.
* :func:`pull_lake` (the ``db`` rule, on the host that serves queries) makes the local data dir's
  processed layer equal to S3 for the pairs of the bucket files, downloading only files whose SHA-256
  differs, and the serving layer and views are then built locally as in a local run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxq_data.atomic import sync_filesystem
from cxq_data.errors import CxqError
from cxq_data.lake import prepare_symbol
from cxq_data.lake_append import indexed_files, new_records, same_inputs
from cxq_data.lake_index import INTRADAY_PREFIX, actions_file, index_path, read_index
from cxq_data.lake_io import remove_file_and_empty_parents, sha256_hex, write_json_if_changed
from cxq_data.lake_results import Status, SymbolResult, failure_reason
from cxq_data.paths import DataLayout
from cxq_data.raw import MANIFEST_SUFFIX, RawRecord
from cxq_data.raw_s3 import THREADS, fetch_raw, raw_prefix, remote_kinds, remote_records
from cxq_data.s3_store import ObjectStore, RemoteFile, S3ContentMismatch, same_content


def _rel(layout: DataLayout, path: Path) -> str:
    return layout.relative(path)


def pair_prefixes(layout: DataLayout, source: str, symbol: str, intervals: Iterable[str]) -> list[str]:
    """The S3 'folders' holding a pair's processed files: daily + index, actions, each intraday interval."""
    dirs = [layout.symbol_source_dir(symbol, source), actions_file(layout, symbol, source).parent]
    dirs += [layout.intraday_dir(i) / f"symbol={symbol}" / f"source={source}" for i in sorted(set(intervals))]
    return [_rel(layout, d) + "/" for d in dirs]


def index_entries(index: dict[str, Any]) -> list[dict[str, Any]]:
    """Every file entry of an index: daily years, actions, intraday days."""
    return indexed_files(index) + [e for days in index.get("intraday", {}).values() for e in days.values()]


@dataclass
class PairPlan:
    symbol: str
    raw: dict[str, RemoteFile]
    lake: dict[str, RemoteFile]  # the pair's processed objects in S3 (index included)
    prior: dict[str, Any] | None
    daily: list[RawRecord]  # the daily raw records S3 lists (paths in the scratch dir, maybe not fetched)
    up_to_date: bool
    added: list[RawRecord] | None  # only these are new and the append path applies, else None


@dataclass
class BucketSync:
    """What one storage-mode process job did (also printed to its log)."""

    source: str
    unchanged: list[str] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    downloaded: int = 0
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "unchanged": len(self.unchanged), "processed": len(self.processed),
                "failed": self.failed, "downloaded": self.downloaded, "uploaded": len(self.uploaded),
                "deleted": len(self.deleted)}


def plan_pair(store: ObjectStore, layout: DataLayout, source: str, symbol: str) -> PairPlan:
    """List the pair's raw and processed objects and fetch its index into ``layout`` (if S3 has one)."""
    raw = store.list(raw_prefix(source, symbol))
    kinds = remote_kinds(source, symbol, raw)
    index_rel = _rel(layout, index_path(layout, symbol, source))
    lake = store.list(pair_prefixes(layout, source, symbol, [])[0])
    prior = None
    if index_rel in lake:
        store.get(index_rel, layout.root / index_rel, durable=False)
        prior = read_index(layout, symbol, source)
    intervals = [k.removeprefix(INTRADAY_PREFIX) for k in kinds if k.startswith(INTRADAY_PREFIX)]
    intervals += list((prior or {}).get("intraday", {}))
    actions_prefix, *intraday_prefixes = pair_prefixes(layout, source, symbol, intervals)[1:]
    if prior is not None and prior.get("actions"):
        lake.update(store.list(actions_prefix))
    daily = remote_records(layout, source, symbol, "daily", raw)
    has_intraday = any(k.startswith(INTRADAY_PREFIX) for k in kinds)
    fresh = prior is not None and same_inputs(layout, source, prior, daily, has_intraday) and all(
        (lake.get(e["file"]) or RemoteFile(-1, "")).size == e["bytes"] for e in indexed_files(prior))
    if not fresh:  # to be rewritten: every object of the pair, so that vanished ones can be deleted
        for prefix in [actions_prefix, *intraday_prefixes]:
            lake.update(store.list(prefix))
    added = None if fresh else new_records(layout, source, prior, daily, has_intraday)
    return PairPlan(symbol, raw, lake, prior, daily, fresh, added)


def _fetch_pair(store: ObjectStore, layout: DataLayout, plan: PairPlan, only_added: bool) -> int:
    """Raw files (all, or only the added ones) + the files the prior index names (those that still
    match it) into the scratch dir."""
    raw = plan.raw
    if only_added:
        wanted = {_rel(layout, r.path) for r in plan.added or []}
        raw = {rel: f for rel, f in raw.items() if rel.removesuffix(MANIFEST_SUFFIX) in wanted}
    fetched = fetch_raw(store, layout, raw)
    for entry in index_entries(plan.prior or {}):
        if entry["file"] not in plan.lake:
            continue
        try:
            store.get(entry["file"], layout.root / entry["file"], sha256=entry["sha256"], durable=False)
            fetched += 1
        except S3ContentMismatch:
            pass  # not what the index says: the library rewrites it from the raw files
    return fetched


def _try_fetch(store: ObjectStore, layout: DataLayout, plan: PairPlan, sync: BucketSync,
               only_added: bool = False) -> int:
    """:func:`_fetch_pair`; a failure fails that symbol only (as a bad raw file does in a local run)."""
    try:
        return _fetch_pair(store, layout, plan, only_added)
    except (CxqError, OSError, ValueError) as exc:
        sync.failed[plan.symbol] = str(exc)
        return 0


def _append(layout: DataLayout, source: str, plan: PairPlan) -> SymbolResult:
    """The library's append path with only the added raw files at hand (see ``prepare_symbol(daily=)``)."""
    try:
        pending = prepare_symbol(layout, source, plan.symbol, durable=False, daily=plan.daily)
    except Exception as exc:  # noqa: BLE001 - one symbol's failure never stops the others
        return SymbolResult(plan.symbol, source, Status.FAILED, reason=failure_reason(exc))
    return pending.commit(layout, durable=False)


def _upload_pair(store: ObjectStore, layout: DataLayout, source: str, plan: PairPlan, sync: BucketSync) -> None:
    """Changed partitions first, the index last, then the objects the new index no longer names."""
    index = read_index(layout, plan.symbol, source) or {}
    index_rel = _rel(layout, index_path(layout, plan.symbol, source))
    wanted = [e["file"] for e in index_entries(index)]
    for rel in [*wanted, index_rel]:
        if not same_content(layout.root / rel, plan.lake.get(rel)):
            store.put(layout.root / rel, rel)
            sync.uploaded.append(rel)
    stale = sorted(set(plan.lake) - set(wanted) - {index_rel})
    if stale:
        store.delete(stale)
        sync.deleted += stale


def _map(fn: Any, items: Iterable[Any]) -> Iterator[Any]:
    with ThreadPoolExecutor(THREADS) as pool:
        yield from pool.map(fn, items)


def process_bucket_s3(store: ObjectStore, source: str, symbols: Iterable[str], out: str | Path, *,
                      workers: int = 1, scratch_parent: str | Path | None = None) -> BucketSync:
    """One (source, bucket) process job against S3 only; writes the bucket file ``out`` (see module doc).

    Failed symbols are reported like in a local run: the others are uploaded and the bucket file lists
    the failed ones under ``failed`` (the run's report then fails the run, naming them).
    """
    from cxq_data.lake_batch import process_batch
    from cxq_data.workflow import write_bucket

    todo = sorted(symbols)
    sync = BucketSync(source)
    scratch = Path(tempfile.mkdtemp(prefix="cxq-s3-process-", dir=scratch_parent))
    try:
        layout = DataLayout(scratch / "data")
        plans = {p.symbol: p for p in _map(lambda sym: plan_pair(store, layout, source, sym), todo)}
        sync.unchanged = [sym for sym in todo if plans[sym].up_to_date]
        # Only new raw files: fetch those (and the pair's partitions) and take the append path. A pair
        # the library then sends down the full path (it reads every raw file) is fetched whole below.
        sparse = [sym for sym in todo if plans[sym].added]
        sync.downloaded = sum(_map(lambda sym: _try_fetch(store, layout, plans[sym], sync, True), sparse))
        appended = [_append(layout, source, plans[sym]) for sym in sparse if sym not in sync.failed]
        results = [r for r in appended if r.status is not Status.FAILED]
        done = {r.symbol for r in results} | set(sync.failed)
        full = [sym for sym in todo if not plans[sym].up_to_date and sym not in done]
        sync.downloaded += sum(_map(lambda sym: _try_fetch(store, layout, plans[sym], sync), full))
        full = [sym for sym in full if sym not in sync.failed]
        results += process_batch(layout, source, full, workers=max(1, workers), progress=False).summary.results
        results.sort(key=lambda r: r.symbol)
        for result in results:  # one line per processed symbol in the job's log, as in a local run
            print(json.dumps(result.to_dict(), default=str))
        ok = [r.symbol for r in results if r.status is not Status.FAILED]
        sync.failed.update({r.symbol: str(r.reason) for r in results if r.status is Status.FAILED})
        for _ in _map(lambda sym: _upload_pair(store, layout, source, plans[sym], sync), ok):
            pass
        sync.processed = ok
        print(json.dumps(sync.to_dict()))
        write_bucket([index_path(layout, sym, source) for sym in todo], out, sync.failed)
        return sync
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _local_matches(path: Path, entry: dict[str, Any]) -> bool:
    try:
        return path.stat().st_size == entry["bytes"] and sha256_hex(path.read_bytes()) == entry["sha256"]
    except FileNotFoundError:
        return False


def _mirror_pair(store: ObjectStore, layout: DataLayout, index: dict[str, Any]) -> int:
    """Download the files of one index whose local copy differs; remove local files it no longer names."""
    fetched = 0
    wanted = set()
    for entry in index_entries(index):
        path = layout.root / entry["file"]
        wanted.add(path)
        if not _local_matches(path, entry):
            store.get(entry["file"], path, sha256=entry["sha256"], durable=False)
            fetched += 1
    symbol, source = index["symbol"], index["source"]
    intervals = set(index.get("intraday", {}))
    local_intervals = layout.processed / "intraday"
    if local_intervals.is_dir():
        intervals |= {p.name.removeprefix("interval=") for p in local_intervals.glob("interval=*")}
    for prefix in pair_prefixes(layout, source, symbol, intervals):
        folder = layout.root / prefix
        for old in sorted(folder.rglob("*.parquet")) if folder.is_dir() else []:
            if old not in wanted:
                remove_file_and_empty_parents(old, layout.processed)
    return fetched


def pull_lake(store: ObjectStore, layout: DataLayout, bucket_files: Iterable[str | Path]) -> dict[str, int]:
    """Make the local processed layer equal to S3 for every pair of the bucket files (the db rule).

    Files are checked by SHA-256 against the indexes, downloaded only when different and verified;
    the indexes are written after one durability barrier, as in a local run.
    """
    indexes = [idx for f in bucket_files for idx in json.loads(Path(f).read_text())["indexes"].values()]
    fetched = sum(_map(lambda idx: _mirror_pair(store, layout, idx), indexes))
    sync_filesystem(layout.processed)
    written = sum(write_json_if_changed(index_path(layout, idx["symbol"], idx["source"]), idx, durable=False,
                                        compact=True) for idx in indexes)
    sync_filesystem(layout.processed)
    return {"pairs": len(indexes), "files_downloaded": fetched, "indexes_written": written}
