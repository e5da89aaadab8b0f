"""The DuckDB database ``data/cxq.duckdb``: views only, over the serving manifests' explicit file lists.

Views never glob: DuckDB lists every file matched by a glob on every query (~50 us per file), and
the explicit list of a handful of compacted files costs nothing. A one-symbol query then prunes by
the row-group statistics of the sorted ``symbol`` column.

The database is built in a temp file next to the target and renamed over it, so a reader opens
either the old or the new database, never a half one. An old database keeps pointing at its
serving files, which survive for the serving grace period.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxq_data.atomic import TEMP_PREFIX, TEMP_SUFFIX, fsync_path
from cxq_data.errors import CxqError
from cxq_data.paths import DataLayout

if TYPE_CHECKING:
    import duckdb

    from cxq_data.lake_batch import StagedDaily
    from cxq_data.serving import ServingSummary


CATALOG = "cxq"  # name of the attached database in connections made by :func:`connect`


class DatabaseMissingError(CxqError):
    """``cxq.duckdb`` does not exist yet."""


_DAILY_COLUMNS = """symbol VARCHAR, source VARCHAR, year INTEGER, date DATE, open DOUBLE, high DOUBLE,
    low DOUBLE, close DOUBLE, adjusted_close DOUBLE, volume BIGINT, ingested_at TIMESTAMPTZ"""
_ACTIONS_COLUMNS = "symbol VARCHAR, source VARCHAR, date DATE, dividend DOUBLE, split_ratio DOUBLE, ingested_at TIMESTAMPTZ"
_INTRADAY_COLUMNS = """symbol VARCHAR, source VARCHAR, interval VARCHAR, ts TIMESTAMPTZ, open DOUBLE, high DOUBLE,
    low DOUBLE, close DOUBLE, volume BIGINT, ingested_at TIMESTAMPTZ"""
_HIVE_TYPES = {
    "daily": "{'source': VARCHAR, 'year': INTEGER}",
    "actions": "{'source': VARCHAR}",
    "intraday": "{'interval': VARCHAR, 'source': VARCHAR, 'year': INTEGER}",
}
_COLUMNS = {"daily": _DAILY_COLUMNS, "actions": _ACTIONS_COLUMNS, "intraday": _INTRADAY_COLUMNS}

LAKE_SUMMARY_SQL = """SELECT symbol, source, min(date) AS first_date, max(date) AS last_date, count(*) AS rows
FROM daily GROUP BY symbol, source ORDER BY symbol, source"""


def _sql_string(text: str) -> str:
    """A SQL string literal (paths come from our own manifest, but quote them properly anyway)."""
    return "'" + text.replace("'", "''") + "'"


def _column_names(columns: str) -> list[str]:
    return [c.split()[0] for c in columns.replace("\n", " ").split(",")]


def dataset_view_sql(name: str, files: list[Path]) -> str:
    """SELECT of one dataset over an explicit file list; an empty, typed relation when there are none."""
    columns = _COLUMNS[name]
    names = ", ".join(_column_names(columns))
    if not files:
        typed = ", ".join(f"CAST(NULL AS {c.split()[1]}) AS {c.split()[0]}"
                          for c in (part.strip() for part in columns.replace("\n", " ").split(",")))
        return f"SELECT {typed} WHERE false"
    listing = ", ".join(_sql_string(str(f)) for f in files)
    return (f"SELECT {names} FROM read_parquet([{listing}], hive_partitioning = true, "
            f"hive_types = {_HIVE_TYPES[name]}, hive_types_autocast = false)")


def _view_statements(layout: DataLayout) -> list[tuple[str, str]]:
    from cxq_data.serving import manifest_files

    views = [(name, dataset_view_sql(name, manifest_files(layout, name))) for name in ("daily", "actions", "intraday")]
    views.append(("lake_summary", LAKE_SUMMARY_SQL))
    try:
        from cxq_data.quality.views import extra_views
    except ImportError:  # the quality package is optional for the views
        extra = {}
    else:
        extra = extra_views()
    views += sorted(extra.items())
    return views


def init_db(layout: DataLayout) -> Path:
    """(Re)create ``cxq.duckdb`` with the views over the current serving manifests; return its path."""
    import duckdb

    target = layout.duckdb_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{TEMP_PREFIX}{target.name}.{os.getpid()}{TEMP_SUFFIX}")
    _remove_db_files(tmp)
    _remove_dead_writers_temps(target)
    try:
        con = duckdb.connect(str(tmp))
        try:
            for name, select in _view_statements(layout):
                con.execute(f"CREATE VIEW {name} AS {select}")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_path(target.parent)
    finally:
        _remove_db_files(tmp)
    return target


def _remove_dead_writers_temps(target: Path) -> None:
    """Temp databases of ``init_db`` runs that were killed (their pid is gone); a live writer's stays."""
    for path in target.parent.glob(f"{TEMP_PREFIX}{target.name}.*{TEMP_SUFFIX}"):
        pid = path.name[len(TEMP_PREFIX) + len(target.name) + 1: -len(TEMP_SUFFIX)]
        if pid.isdigit() and not _alive(int(pid)):
            _remove_db_files(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _remove_db_files(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def connect(layout: DataLayout, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open ``cxq.duckdb`` (read-only by default); a clear error when it was never created."""
    import duckdb

    path = layout.duckdb_path
    if not path.is_file():
        raise DatabaseMissingError(f"{path} does not exist yet: run `cxq_data db init` "
                                   "(or `cxq_data process run`) first")
    if not read_only:
        return duckdb.connect(str(path))
    # duckdb.connect(path) would hand back a database instance cached in this process while any
    # connection to it is open, i.e. the views of a file that init_db has since replaced. A fresh
    # in-memory instance that attaches the file always sees the current views.
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_sql_string(str(path))} AS {CATALOG} (READ_ONLY)")
        con.execute(f"USE {CATALOG}")
    except BaseException:
        con.close()
        raise
    return con


@dataclass
class RefreshResult:
    serving: ServingSummary
    database: Path

    def to_dict(self) -> dict[str, Any]:
        return {"database": str(self.database), **self.serving.to_dict()}


def refresh_serving(layout: DataLayout, *, grace_seconds: float | None = None,
                    staged: StagedDaily | None = None) -> RefreshResult:
    """Rebuild the serving layer, then the views (the one call of the CLI and of Snakemake).

    ``staged``: daily partitions a batch run still holds in memory (``lake_batch.process_batch``).
    """
    from cxq_data.serving import DEFAULT_GRACE_SECONDS, build_serving_locked, serving_lock

    grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
    with serving_lock(layout):  # the views must describe the manifests this call wrote
        summary = build_serving_locked(layout, grace_seconds=grace, staged=staged)
        return RefreshResult(summary, init_db(layout))
