"""Where a (symbol, source) lives in the processed lake, and what its index says (no data read).

    processed/symbol=X/source=Y/_index.json     the index :mod:`cxq_data.lake` writes last
    processed/actions/symbol=X/source=Y/data.parquet
    processed/intraday/interval=I/symbol=X/source=Y/date=D/data.parquet
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cxq_data.errors import StateFileError
from cxq_data.paths import DataLayout

log = logging.getLogger(__name__)

INDEX_NAME = "_index.json"
INTRADAY_PREFIX = "intraday-"  # raw kind of intraday fetches: intraday-{interval}


def index_path(layout: DataLayout, symbol: str, source: str) -> Path:
    return layout.symbol_source_dir(symbol, source) / INDEX_NAME


def actions_file(layout: DataLayout, symbol: str, source: str) -> Path:
    return layout.actions_dir / f"symbol={symbol}" / f"source={source}" / "data.parquet"


def intraday_file(layout: DataLayout, interval: str, symbol: str, source: str, day: dt.date) -> Path:
    return layout.intraday_dir(interval) / f"symbol={symbol}" / f"source={source}" / f"date={day}" / "data.parquet"


def read_index(layout: DataLayout, symbol: str, source: str) -> dict[str, Any] | None:
    """The pair's index; None when there is none or it is damaged (processing then rebuilds the pair
    from raw and rewrites it)."""
    path = index_path(layout, symbol, source)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:  # truncated or garbage JSON
        log.warning("%s: damaged index (%s); the pair is rebuilt from raw", path, exc)
        return None


FileKey = tuple[int, int, int]  # (inode, size, mtime_ns): a replaced or rewritten file changes it


def file_key(path: str | Path) -> FileKey:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def iter_indexes(layout: DataLayout, known: Mapping[str, tuple[FileKey, dict[str, Any]]] | None = None
                 ) -> Iterable[tuple[Path, dict[str, Any]]]:
    """Every (index path, index) of the lake, in path order (two directory levels, no recursive glob).

    ``known``: indexes the caller has just written, by path, with the file's key at that moment; one of
    them is used as is while its file still has that key (a ``stat`` instead of reading and parsing).
    """
    root = str(layout.processed)
    # os.scandir and plain strings: the serving build reads every index (10,000 at U=5,000 x 2 sources)
    for symbol_dir in _subdirs(root, "symbol="):
        for source_dir in _subdirs(symbol_dir, "source="):
            path = os.path.join(source_dir, INDEX_NAME)
            cached = known.get(path) if known else None
            try:
                if cached is not None and file_key(path) == cached[0]:
                    yield Path(path), cached[1]
                    continue
            except FileNotFoundError:
                continue
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            yield Path(path), _parse_index(path, data)


def _parse_index(path: str, data: bytes) -> dict[str, Any]:
    try:
        return json.loads(data)  # type: ignore[no-any-return]
    except ValueError as exc:
        source_dir, _ = os.path.split(path)
        symbol_dir, source = os.path.split(source_dir)
        symbol = os.path.basename(symbol_dir).removeprefix("symbol=")
        raise StateFileError(f"{path}: damaged lake index ({exc}); `cxq_data process run --source "
                             f"{source.removeprefix('source=')} --symbols {symbol}` rebuilds it") from None


def _subdirs(folder: str, prefix: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.startswith(prefix) and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [os.path.join(folder, name) for name in sorted(names)]


# ----------------------------------------------------------------------------------------- tables
def lake_summary(layout: DataLayout) -> list[dict[str, Any]]:
    """One row per source from the indexes: symbols, years, partitions, rows, bytes (no data read)."""
    per_source: dict[str, dict[str, Any]] = {}
    for _, index in iter_indexes(layout):
        row = per_source.setdefault(index["source"], {"source": index["source"], "symbols": 0, "first_year": None,
                                                       "last_year": None, "partitions": 0, "rows": 0, "bytes": 0})
        row["symbols"] += 1
        for year, entry in index["daily"].items():
            y = int(year)
            row["first_year"] = y if row["first_year"] is None else min(row["first_year"], y)
            row["last_year"] = y if row["last_year"] is None else max(row["last_year"], y)
            row["partitions"] += 1
            row["rows"] += entry["rows"]
            row["bytes"] += entry["bytes"]
    return [per_source[s] for s in sorted(per_source)]
