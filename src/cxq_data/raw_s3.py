"""The raw layer under S3 default storage: pushed once from the host that fetched it, fetched by jobs.

Raw files are write-once, locally and in S3: :func:`push_raw` uploads the files of the host's data dir
that S3 does not have yet (data file first, its manifest last, so a manifest in S3 always has its data
file), never replaces an object, and refuses a file whose key exists with another size. A process job on
a node that sees only S3 lists a symbol's raw prefix and :func:`fetch_raw` downloads it into a scratch
data dir, each data file checked against the SHA-256 of its manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cxq_data.atomic import atomic_write_json, is_temp_name
from cxq_data.errors import RawLayerError
from cxq_data.paths import DataLayout
from cxq_data.raw import MANIFEST_SUFFIX, RawRecord, records_in
from cxq_data.s3_store import ObjectStore, RemoteFile

THREADS = 8  # concurrent S3 requests of one job (boto3 clients are thread-safe)
_SKIP_SOURCES = {"databento"}  # options ZIPs live under raw/ too, but are not a lake source


def raw_prefix(source: str, symbol: str) -> str:
    return f"raw/{source}/{symbol}/"


def remote_raw_pairs(store: ObjectStore) -> set[tuple[str, str]]:
    """(source, symbol) of every raw folder in S3 (two delimiter listings, no object listing)."""
    pairs = set()
    for source in store.list_dirs("raw/"):
        if source in _SKIP_SOURCES:
            continue
        pairs.update((source, sym) for sym in store.list_dirs(f"raw/{source}/") if not sym.startswith("_"))
    return pairs


def remote_records(layout: DataLayout, source: str, symbol: str, kind: str,
                   remote: dict[str, RemoteFile]) -> list[RawRecord]:
    """The records of one raw folder as S3 lists them (paths under ``layout``; nothing is read)."""
    folder = f"{raw_prefix(source, symbol)}{kind}/"
    names = [rel[len(folder):] for rel in remote if rel.startswith(folder) and "/" not in rel[len(folder):]]
    return records_in(layout.raw_dir(source, symbol, kind), names)


def remote_kinds(source: str, symbol: str, remote: dict[str, RemoteFile]) -> list[str]:
    base = len(raw_prefix(source, symbol))
    return sorted({rel[base:].split("/", 1)[0] for rel in remote if "/" in rel[base:]})


def _local_files(layout: DataLayout, source: str, symbol: str) -> dict[str, Path]:
    """rel path -> file, for every finished file in the symbol's raw kind folders."""
    out: dict[str, Path] = {}
    base = layout.raw / source / symbol
    for kind in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        for path in sorted(kind.iterdir()):
            if path.is_file() and not is_temp_name(path.name):
                out[path.relative_to(layout.root).as_posix()] = path
    return out


def _check_against_manifest(path: Path) -> None:
    """A data file must still hold the bytes its manifest describes before it becomes the shared copy."""
    manifest = json.loads(path.with_name(path.name + MANIFEST_SUFFIX).read_text())
    if hashlib.sha256(path.read_bytes()).hexdigest() != manifest.get("sha256"):
        raise RawLayerError(f"{path}: sha256 does not match its manifest; not pushed")


def push_symbol(store: ObjectStore, layout: DataLayout, source: str, symbol: str) -> tuple[dict[str, int], int]:
    """Upload the symbol's local raw files S3 lacks; return (S3's files name -> size, files uploaded)."""
    remote = store.list(raw_prefix(source, symbol))
    local = _local_files(layout, source, symbol)
    uploaded = 0
    # Data files before manifests: a manifest in S3 is the promise that its data file is there.
    for rel in sorted(local, key=lambda r: (r.endswith(MANIFEST_SUFFIX), r)):
        path = local[rel]
        have = remote.get(rel)
        if have is not None:
            if have.size != path.stat().st_size:
                raise RawLayerError(f"{store.target.url(rel)} exists with {have.size} bytes, the local file has "
                                    f"{path.stat().st_size}: raw files are write-once, refusing to replace it")
            continue
        if rel.endswith(MANIFEST_SUFFIX):
            if rel.removesuffix(MANIFEST_SUFFIX) not in remote:
                continue  # a manifest without its data file (being written): next push
        else:
            if not path.with_name(path.name + MANIFEST_SUFFIX).exists():
                continue  # data file still being written (its manifest comes last)
            _check_against_manifest(path)
        obj = store.put(path, rel)
        remote[rel] = RemoteFile(obj.size, obj.etag)
        uploaded += 1
    cut = len(raw_prefix(source, symbol))
    return {rel[cut:]: f.size for rel, f in sorted(remote.items())}, uploaded


def push_raw(store: ObjectStore, layout: DataLayout, source: str, symbols: Iterable[str], out: str | Path) -> Path:
    """Push the raw files of a bucket of symbols; write the bucket's raw listing ``out`` (Snakemake target).

    The listing (every raw file in S3 with its size, per symbol) is what the bucket's process job
    depends on: it changes exactly when the bucket's raw layer in S3 changes.
    """
    todo = sorted(symbols)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda sym: push_symbol(store, layout, source, sym), todo))
    listing: dict[str, Any] = {sym: files for sym, (files, _) in zip(todo, results)}
    print(json.dumps({"source": source, "symbols": len(todo), "uploaded": sum(n for _, n in results)}))
    return atomic_write_json(out, {"source": source, "files": listing})


def fetch_raw(store: ObjectStore, layout: DataLayout, remote: dict[str, RemoteFile]) -> int:
    """Download the raw records in ``remote`` (a symbol's raw listing) under ``layout``; return files fetched.

    Manifests are checked against their ETag, data files against the SHA-256 their manifest names.
    A data file without a manifest is not a record yet and is left out, as :func:`list_raw` would.
    """
    fetched = 0
    for rel in sorted(r for r in remote if r.endswith(MANIFEST_SUFFIX)):
        data_rel = rel.removesuffix(MANIFEST_SUFFIX)
        if data_rel not in remote:
            raise RawLayerError(f"{store.target.url(rel)}: manifest without its data file")
        store.get(rel, layout.root / rel, durable=False)
        sha = json.loads((layout.root / rel).read_text()).get("sha256")
        store.get(data_rel, layout.root / data_rel, sha256=sha, durable=False)
        fetched += 2
    return fetched
