"""SQL over the uploaded options dataset with DuckDB, from S3 or from a local copy.

The dataset is a pyarrow dataset with hive partitions (``underlying=SPY/date=YYYY-MM-DD``) registered
in DuckDB as the view ``cbbo``; DuckDB pushes ``WHERE date = ...`` / ``underlying = ...`` filters
into the dataset, which then only opens the matching files (partition pruning). For S3 we use
pyarrow's S3FileSystem with ``endpoint_override`` (DuckDB's httpfs extension would need a download).
Folders starting with ``_`` or ``.`` (the preflight probe, temp files) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cxq_data.errors import ConfigError
from cxq_data.options.s3 import S3Settings
from cxq_data.sql_guard import check_reading_sql

VIEW_NAME = "cbbo"


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def _partitioning() -> Any:
    import pyarrow as pa
    import pyarrow.dataset as ds

    return ds.partitioning(pa.schema([("underlying", pa.string()), ("date", pa.date32())]), flavor="hive")


def s3_filesystem(settings: S3Settings) -> Any:
    from pyarrow.fs import S3FileSystem

    kwargs: dict[str, Any] = {"region": settings.region or "us-east-1"}
    if settings.access_key_id and settings.secret_access_key:
        kwargs.update(access_key=settings.access_key_id, secret_key=settings.secret_access_key)
    if settings.endpoint_url:
        url = urlparse(settings.endpoint_url)
        kwargs.update(endpoint_override=url.netloc, scheme=url.scheme or "https")
    return S3FileSystem(**kwargs)


def open_dataset(*, settings: S3Settings | None = None, local_root: Path | str | None = None) -> Any:
    """The options dataset from ``local_root`` (a folder holding ``underlying=*/``) or from S3."""
    import pyarrow.dataset as ds

    from cxq_data.options.cbbo_table import CBBO_SCHEMA

    schema = CBBO_SCHEMA
    for name, arrow_type in (("underlying", "string"), ("date", "date32")):
        import pyarrow as pa

        schema = schema.append(pa.field(name, getattr(pa, arrow_type)()))
    if local_root is not None:
        root = Path(local_root)
        if not root.is_dir():
            raise ConfigError(f"{root}: no such folder (expected underlying=*/date=*/data.parquet below it)")
        return ds.dataset(str(root), format="parquet", partitioning=_partitioning(), schema=schema)
    if settings is None or not settings.bucket:
        raise ConfigError("S3_BUCKET_NAME is not set and no local folder was given")
    path = f"{settings.bucket}/{settings.prefix}".rstrip("/")
    try:
        return ds.dataset(path, filesystem=s3_filesystem(settings), format="parquet",
                          partitioning=_partitioning(), schema=schema)
    except OSError as exc:
        raise ConfigError(settings.redact(f"cannot list s3://{path}: {exc}")) from None


def connect(dataset: Any) -> Any:
    """An in-memory DuckDB connection with the dataset registered as ``cbbo``."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.register(VIEW_NAME, dataset)
    return con


def run_query(sql: str, *, settings: S3Settings | None = None, local_root: Path | str | None = None) -> QueryResult:
    """Run ``sql`` against the view ``cbbo`` (columns of the Parquet files plus ``underlying``, ``date``)."""
    import duckdb

    con = connect(open_dataset(settings=settings, local_root=local_root))
    try:
        check_reading_sql(con, sql)  # e.g. no COPY ... TO: this command only reads
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return QueryResult(columns, cursor.fetchall())
    except duckdb.Error as exc:
        message = settings.redact(str(exc)) if settings else str(exc)
        raise ConfigError(f"query failed: {message}") from None
    finally:
        con.close()
