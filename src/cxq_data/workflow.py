"""Library side of the Snakemake workflow: config resolution, job lists, buckets, input files.

The Snakefile and rules only wire files together; everything with logic lives here so the CLI and
the workflow share it (and tests can call it without Snakemake).
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import cxq_data
from cxq_data.atomic import atomic_write_json
from cxq_data.errors import ConfigError, CxqError
from cxq_data.paths import DataLayout
from cxq_data.quality.sessions import check_exchange
from cxq_data.raw import list_raw_symbols
from cxq_data.s3_store import ObjectStore, StorageTarget
from cxq_data.sources import Source, source_name
from cxq_data.symbols import DEFAULT_EXCHANGE, validate_symbol

# Process jobs: one per (source, bucket of symbols). 10,000 per-symbol jobs made a Snakemake no-op rerun
# cost ~10-13 s at U=5,000 x 2 sources; 32 buckets per source make it 64 jobs of ~160 symbols, a few
# seconds of work each (also a sensible size for a Slurm job).
N_BUCKETS = 32
PACKAGE_DIR = Path(cxq_data.__file__).parent

# Modules whose code determines the bytes of a source's processed partitions. A change to one of them
# makes Snakemake rebuild exactly the partitions of the sources that use it.
_COMMON_LAKE_CODE = ("arrow_util.py", "normalize/base.py", "normalize/tables.py", "lake.py", "lake_append.py",
                     "lake_index.py", "lake_io.py", "schema.py")
_SOURCE_CODE = {
    Source.YFINANCE.value: ("normalize/yahoo.py",),
    Source.ALPHAVANTAGE.value: ("normalize/alphavantage.py",),
    Source.STOOQ.value: ("normalize/stooq.py",),
}
# A user-named source holds generic CSV files or Stooq bulk members (the importer detects the format).
_USER_SOURCE_CODE = ("normalize/csvfile.py", "normalize/stooq.py")


@dataclass(frozen=True)
class WorkflowConfig:
    layout: DataLayout
    symbols: list[str]
    sources: list[str]
    start: str | None
    end: str | None
    av_premium: bool
    default_exchange: str
    options: dict[str, Any]

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> WorkflowConfig:
        """The validated workflow settings; a value the schema lets through but the pipeline cannot
        use (an unknown provider, 2023-13-45, start after end) is an error naming its key."""
        universe = config.get("universe", {})
        start, end = _config_date(universe, "start"), _config_date(universe, "end")
        if start and end and start > end:
            raise ConfigError(f"universe.start {start} is after universe.end {end}")
        return cls(
            layout=DataLayout.from_option(config.get("data_dir") or None),
            symbols=[validate_symbol(s) for s in universe.get("symbols", [])],
            sources=_provider_sources(universe.get("sources", [])),
            start=start,
            end=end,
            av_premium=bool(config.get("av_premium", False)),
            default_exchange=check_exchange(str(config.get("default_exchange") or DEFAULT_EXCHANGE)),
            options=dict(config.get("options", {})),
        )

    def fetchable_sources(self) -> list[str]:
        """Configured sources that have a network ingestor (user file sources are import-only)."""
        providers = {s.value for s in Source}
        return [s for s in self.sources if s in providers]

    def lake_pairs(self) -> list[tuple[str, str]]:
        """(source, symbol) pairs to process: the configured universe plus whatever raw/ already holds."""
        pairs = {(src, sym) for src in self.fetchable_sources() for sym in self.symbols}
        for src in self.raw_sources():
            pairs.update((src, sym) for sym in list_raw_symbols(self.layout, src))
        return sorted(pairs)

    def raw_sources(self) -> list[str]:
        raw = self.layout.raw
        if not raw.is_dir():
            return []
        return sorted(p.name for p in raw.iterdir() if p.is_dir() and p.name != "databento")


def _config_date(universe: Mapping[str, Any], key: str) -> str | None:
    value = str(universe.get(key) or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ConfigError(f"universe.{key}: {value!r} is not a date YYYY-MM-DD") from None


def _provider_sources(names: Iterable[str]) -> list[str]:
    """Canonical names of the universe's sources; each must be a provider the workflow can fetch from."""
    providers = {s.value for s in Source}
    sources = list(dict.fromkeys(source_name(name) for name in names))
    unknown = [s for s in sources if s not in providers]
    if unknown:
        raise ConfigError(f"universe.sources: {', '.join(map(repr, unknown))} is not a provider the workflow "
                          "fetches from (yfinance|yf, alphavantage|av, stooq); files of your own sources are "
                          "imported with `cxq_data ingest import` and processed without being listed here")
    return sources


def today_utc() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def bucket_of(symbol: str) -> int:
    """Stable bucket of a symbol (crc32, not Python's salted hash)."""
    return zlib.crc32(symbol.encode()) % N_BUCKETS


def code_inputs(source: str) -> list[str]:
    """Library files whose change must rebuild the partitions of ``source``."""
    rel = _COMMON_LAKE_CODE + _SOURCE_CODE.get(source, _USER_SOURCE_CODE)
    return [str(PACKAGE_DIR / r) for r in rel]


def code_digest(source: str) -> str:
    """sha256 of what :func:`code_inputs` of ``source`` would execute: each file's syntax tree, so a
    comment, a blank line or a reflowed expression changes nothing (a lint fix must not make every
    user's lake reprocess), while any change to code or a docstring does."""
    digest = hashlib.sha256()
    for path in map(Path, code_inputs(source)):
        tree = ast.dump(ast.parse(path.read_bytes(), filename=str(path)))
        digest.update(path.name.encode() + b"\0" + tree.encode() + b"\0")
    return digest.hexdigest()


def code_stamp(layout: DataLayout, source: str) -> str:
    """A file holding :func:`code_digest` of ``source``, rewritten only when it changes.

    Process jobs depend on this one file instead of on every code file: Snakemake's DAG cost grows
    with the number of input files (10,000 jobs x 6 code files were ~40% of a no-op rerun). Written
    while the workflow is parsed; when written it gets the newest mtime of the code files, so it
    triggers exactly the reruns the code files would (and none when only their mtime moved).
    """
    from cxq_data.lake_io import write_if_changed

    newest = max(Path(p).stat().st_mtime_ns for p in code_inputs(source))
    stamp = layout.state / "code" / f"{source}.sha256"
    if write_if_changed(stamp, (code_digest(source) + "\n").encode()):
        os.utime(stamp, ns=(newest, newest))
    return str(stamp)


def raw_inputs(layout: DataLayout, source: str, symbol: str) -> list[str]:
    """The raw folders of one symbol/source (``daily``, ``intraday-5m``, ...) as Snakemake inputs.

    A folder's mtime moves whenever a fetch adds a file to it (the atomic rename), so one input per
    folder replaces one per raw file: a year of daily fetches is ~250 files per symbol, and
    Snakemake's cost for a job grows with the square of its input count.
    """
    base = layout.raw / source / symbol
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(e.path for e in entries if e.is_dir() and not e.name.startswith("."))


def buckets(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, int], list[str]]:
    """(source, bucket) -> its symbols (sorted), for every non-empty bucket."""
    out: dict[tuple[str, int], list[str]] = {}
    for src, sym in sorted(pairs):
        out.setdefault((src, bucket_of(sym)), []).append(sym)
    return out


def write_bucket(index_files: Iterable[str | Path], out: str | Path, failed: Mapping[str, str] | None = None) -> Path:
    """Gather per-symbol lake indexes into one bucket file (deterministic content), with the symbols
    that failed and why under ``failed`` (absent when none did).

    The bucket file is the Snakemake target of a process job and one of the few inputs of the
    serving rule (Snakemake's cost for a rule grows with the square of its input count).
    """
    entries = {}
    for f in sorted(map(str, index_files)):
        path = Path(f)
        try:
            text = path.read_text()
        except FileNotFoundError:  # a symbol that failed before it ever had an index
            continue
        entries[str(path.parent.relative_to(path.parents[2]))] = json.loads(text)
    content: dict[str, Any] = {"indexes": entries}
    if failed:
        content["failed"] = dict(sorted(failed.items()))
    return atomic_write_json(out, content)


def process_bucket(data_dir: str | Path | None, source: str, symbols: Iterable[str], out: str | Path,
                   workers: int = 1, s3: Mapping[str, Any] | None = None) -> Path:
    """Process every symbol of one (source, bucket) into the lake, then write the bucket file ``out``.

    This is one Snakemake job: seconds of work instead of ~30 ms per (source, symbol), so the DAG
    has sources x N_BUCKETS process jobs instead of one per pair. The library decides per symbol
    what to do (a symbol whose raw files and code did not change keeps its partitions and index
    untouched, file bytes and mtimes), so rerunning a bucket for one new fetch rewrites only that
    symbol's partitions.

    A failing symbol does not fail the job: the good ones are processed and served, the failed ones
    are listed with their reasons in the bucket file, and the run's report
    (:func:`cxq_data.workflow_report.check_run`) fails the run at the end naming them. One bad
    symbol must not keep the serving layer and views of all the others stale.

    With ``s3`` (:meth:`StorageTarget.as_params`, S3 default storage) the job reads and writes the
    lake in S3 through a scratch data dir instead (:func:`cxq_data.lake_s3.process_bucket_s3`).
    """
    if s3:
        from cxq_data.lake_s3 import process_bucket_s3

        process_bucket_s3(_store(s3), source, symbols, out, workers=workers)
        return Path(out)
    from cxq_data.lake_batch import process_batch
    from cxq_data.lake_index import index_path
    from cxq_data.lake_results import Status

    layout = DataLayout.from_option(data_dir)
    todo = sorted(symbols)
    summary = process_batch(layout, source, todo, workers=max(1, workers), progress=False).summary
    for result in summary.results:  # one line per symbol in the job's log
        print(json.dumps(result.to_dict(), default=str))
    failed = {r.symbol: str(r.reason) for r in summary.results if r.status is Status.FAILED}
    return write_bucket([index_path(layout, sym, source) for sym in todo], out, failed)


class script_logging:
    """Send a Snakemake script's stdout/stderr and logging to its ``log:`` file.

    Used as ``with script_logging(snakemake.log[0]):`` so every rule leaves a readable log.
    """

    def __init__(self, log_path: str | Path) -> None:
        self.path = Path(log_path)

    def __enter__(self) -> Self:
        import logging
        import sys

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self._fh
        logging.basicConfig(stream=self._fh, level=logging.INFO, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        import sys
        import traceback

        if exc is not None:
            traceback.print_exception(exc_type, exc, tb, file=self._fh)
        sys.stdout, sys.stderr = self._saved
        self._fh.close()


def fetch_symbol(*, data_dir: str, source: str, symbol: str, start: str | None, end: str | None,
                 av_premium: bool, marker: str | Path) -> Path:
    """Fetch one symbol from one provider and write the day's fetch marker (the Snakemake target).

    A failed fetch is recorded in the marker (``ok: false`` and the reason) instead of failing the
    job, so the symbol's bucket, the serving layer and the views are still built for everyone else
    (from the symbol's earlier raw data, if any). The run's report then fails the run naming it and
    removes the marker, so the next run fetches it again (:mod:`cxq_data.workflow_report`).
    """
    import dataclasses

    from cxq_data.ingest.runner import run_ingest
    from cxq_data.settings import ProviderSettings

    layout = DataLayout.from_option(data_dir)
    settings = dataclasses.replace(ProviderSettings.from_env(), av_premium=av_premium)
    summary = run_ingest(layout, source, [symbol], start=_date(start), end=_date(end),
                         settings=settings, progress=False)
    rows = summary.rows()
    for row in rows:  # the job's log says what happened to the symbol
        print(json.dumps(row, default=str))
    return atomic_write_json(marker, {"source": source, "symbol": symbol, "ok": summary.ok, "results": rows})


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def refresh_serving_marker(data_dir: str, marker: str | Path, s3: Mapping[str, Any] | None = None,
                           bucket_files: Iterable[str | Path] = ()) -> Path:
    """Rebuild serving files + views and record what the serving layer now holds.

    With ``s3`` (S3 default storage) the local processed layer is first made equal to the lake in S3
    for the pairs of ``bucket_files`` (:func:`cxq_data.lake_s3.pull_lake`).
    """
    from cxq_data.db import refresh_serving

    layout = DataLayout.from_option(data_dir)
    if s3:
        from cxq_data.lake_s3 import pull_lake

        print(json.dumps(pull_lake(_store(s3), layout, bucket_files)))
    result = refresh_serving(layout)
    return atomic_write_json(marker, _as_jsonable(result))


# ----------------------------------------------------------------------------- S3 default storage
def storage_target(provider: str | None, prefix: str | None, data_root: Path, *,
                   endpoint_url: str | None = None, region: str | None = None) -> StorageTarget | None:
    """Where the data dir lives in S3 when Snakemake runs with ``--default-storage-provider s3``;
    None without a default storage provider (the local workflow, unchanged)."""
    if provider is None:
        return None
    if provider != "s3":
        raise CxqError(f"default storage provider {provider!r} is not supported (only s3)")
    if not prefix:
        raise CxqError("--default-storage-provider s3 needs --default-storage-prefix s3://BUCKET/PREFIX")
    return StorageTarget.from_prefix(prefix, os.path.relpath(data_root), endpoint_url=endpoint_url, region=region)


def storage_pairs(wf: WorkflowConfig, target: StorageTarget) -> list[tuple[str, str]]:
    """The lake pairs in storage mode: the local ones plus every raw folder S3 holds."""
    from cxq_data.raw_s3 import remote_raw_pairs

    return sorted(set(wf.lake_pairs()) | remote_raw_pairs(ObjectStore(target)))


def push_raw_listing(data_dir: str, s3: Mapping[str, Any], source: str, symbols: Iterable[str],
                     out: str | Path) -> Path:
    """Snakemake rule ``push_raw`` (storage mode, on the host holding the raw files)."""
    from cxq_data.raw_s3 import push_raw

    return push_raw(_store(s3), DataLayout.from_option(data_dir), source, symbols, out)


def _store(s3: Mapping[str, Any]) -> ObjectStore:
    return ObjectStore(StorageTarget.from_params(s3))


def validate_to_report(data_dir: str, symbol: str, out: str | Path, default_exchange: str = "XNYS") -> Path:
    """Run every data-quality check for one symbol and store the findings as JSON."""
    from cxq_data.quality.validate import validate_symbols

    layout = DataLayout.from_option(data_dir)
    findings = validate_symbols(layout, [symbol], config={"default_exchange": default_exchange})
    return atomic_write_json(out, [_as_jsonable(f) for f in findings])


def _as_jsonable(obj: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj
