"""Library side of the Snakemake workflow: config resolution, job lists, buckets, input files.

The Snakefile and rules only wire files together; everything with logic lives here so the CLI and
the workflow share it (and tests can call it without Snakemake).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cxq_data
from cxq_data.atomic import atomic_write_json
from cxq_data.paths import DataLayout
from cxq_data.raw import list_raw_symbols
from cxq_data.sources import Source, source_name
from cxq_data.symbols import validate_symbol

N_BUCKETS = 16  # serving fan-in: ~U*sources/16 index files per bucket job, 16 bucket files per source
PACKAGE_DIR = Path(cxq_data.__file__).parent

# Modules whose code determines the bytes of a source's processed partitions. A change to one of them
# makes Snakemake rebuild exactly the partitions of the sources that use it.
_COMMON_LAKE_CODE = ("normalize/base.py", "normalize/tables.py", "lake.py", "lake_append.py", "lake_io.py", "schema.py")
_SOURCE_CODE = {
    Source.YFINANCE.value: ("normalize/yahoo.py",),
    Source.ALPHAVANTAGE.value: ("normalize/alphavantage.py",),
    Source.STOOQ.value: ("normalize/stooq.py",),
}
_USER_SOURCE_CODE = ("normalize/csvfile.py",)


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
    def from_mapping(cls, config: Mapping[str, Any]) -> "WorkflowConfig":
        universe = config.get("universe", {})
        return cls(
            layout=DataLayout.from_option(config.get("data_dir") or None),
            symbols=[validate_symbol(s) for s in universe.get("symbols", [])],
            sources=list(dict.fromkeys(source_name(s) for s in universe.get("sources", []))),
            start=universe.get("start") or None,
            end=universe.get("end") or None,
            av_premium=bool(config.get("av_premium", False)),
            default_exchange=str(config.get("default_exchange", "XNYS")),
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


def today_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def bucket_of(symbol: str) -> int:
    """Stable bucket of a symbol (crc32, not Python's salted hash)."""
    return zlib.crc32(symbol.encode()) % N_BUCKETS


def code_inputs(source: str) -> list[str]:
    """Library files whose change must rebuild the partitions of ``source``."""
    rel = _COMMON_LAKE_CODE + _SOURCE_CODE.get(source, _USER_SOURCE_CODE)
    return [str(PACKAGE_DIR / r) for r in rel]


def code_stamp(layout: DataLayout, source: str) -> str:
    """A file holding the sha256 of :func:`code_inputs` of ``source``, rewritten only when it changes.

    Process jobs depend on this one file instead of on every code file: Snakemake's DAG cost grows
    with the number of input files (10,000 jobs x 6 code files were ~40% of a no-op rerun). Written
    while the workflow is parsed; when written it gets the newest mtime of the code files, so it
    triggers exactly the reruns the code files would (and none when only their mtime moved).
    """
    from cxq_data.lake_io import write_if_changed

    digest = hashlib.sha256()
    newest = 0
    for path in map(Path, code_inputs(source)):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime_ns)
    stamp = layout.state / "code" / f"{source}.sha256"
    if write_if_changed(stamp, (digest.hexdigest() + "\n").encode()):
        os.utime(stamp, ns=(newest, newest))
    return str(stamp)


def raw_inputs(layout: DataLayout, source: str, symbol: str, kind: str = "daily") -> list[str]:
    """Raw data files of one symbol/source for a Snakemake input function: a directory listing only
    (:func:`cxq_data.raw.raw_data_files` also parses every manifest, ~0.3 ms per symbol)."""
    from cxq_data.atomic import TEMP_PREFIX
    from cxq_data.raw import MANIFEST_SUFFIX

    folder = layout.raw_dir(source, symbol, kind)
    try:
        names = set(os.listdir(folder))
    except FileNotFoundError:
        return []
    return [str(folder / n[: -len(MANIFEST_SUFFIX)]) for n in sorted(names)
            if n.endswith(MANIFEST_SUFFIX) and not n.startswith(TEMP_PREFIX) and n[: -len(MANIFEST_SUFFIX)] in names]


def pairs_in_bucket(pairs: Iterable[tuple[str, str]], source: str, bucket: int) -> list[str]:
    return [sym for src, sym in pairs if src == source and bucket_of(sym) == bucket]


def write_bucket(index_files: Iterable[str | Path], out: str | Path) -> Path:
    """Gather per-symbol lake indexes into one bucket file (deterministic content).

    Snakemake's cost for a rule grows with the square of its input count; buckets keep the serving
    rule's fan-in at sources x 16 files whatever the universe size.
    """
    entries = {}
    for f in sorted(map(str, index_files)):
        path = Path(f)
        entries[str(path.parent.relative_to(path.parents[2]))] = json.loads(path.read_text())
    return atomic_write_json(out, {"indexes": entries})


class script_logging:
    """Send a Snakemake script's stdout/stderr and logging to its ``log:`` file.

    Used as ``with script_logging(snakemake.log[0]):`` so every rule leaves a readable log.
    """

    def __init__(self, log_path: str | Path) -> None:
        self.path = Path(log_path)

    def __enter__(self) -> "script_logging":
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

    Raises when the fetch failed, so Snakemake marks the job failed and retries it next run.
    """
    import dataclasses

    from cxq_data.errors import ProviderError
    from cxq_data.ingest.runner import run_ingest
    from cxq_data.settings import ProviderSettings

    layout = DataLayout.from_option(data_dir)
    settings = dataclasses.replace(ProviderSettings.from_env(), av_premium=av_premium)
    summary = run_ingest(layout, source, [symbol], start=_date(start), end=_date(end),
                         settings=settings, progress=False)
    rows = summary.rows()
    if not summary.ok:
        raise ProviderError(f"fetch {source}/{symbol} failed: {json.dumps(rows, default=str)}")
    return atomic_write_json(marker, {"source": source, "symbol": symbol, "results": rows})


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def refresh_serving_marker(data_dir: str, marker: str | Path) -> Path:
    """Rebuild serving files + views and record what the serving layer now holds."""
    from cxq_data.db import refresh_serving

    layout = DataLayout.from_option(data_dir)
    result = refresh_serving(layout)
    return atomic_write_json(marker, _as_jsonable(result))


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
