"""Where everything lives under the data directory (``--data-dir`` / ``CXQ_DATA_DIR`` / ``./data``).

    raw/{source}/{symbol}/{kind}/{stamp}-{sha12}.{ext}   immutable provider responses (+ .manifest.json)
    processed/symbol=X/source=Y/year=Z/data.parquet      per-partition lake (Snakemake targets)
    processed/intraday/interval=I/symbol=X/source=Y/date=D/data.parquet
    serving/daily/source=Y/year=Z/part-{hash}.parquet    immutable compacted files the views read
    serving/daily/manifest.json                          the current serving file set (swapped atomically)
    state/                                               rate-limit counters, option markers, locks
    cxq.duckdb                                           views only
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "CXQ_DATA_DIR"
DEFAULT_DATA_DIR = "data"


def resolve_data_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """Explicit value, else ``$CXQ_DATA_DIR``, else ``./data`` (absolute, not created)."""
    chosen = value if value not in (None, "") else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class DataLayout:
    """All paths derived from one data directory."""

    root: Path

    @classmethod
    def from_option(cls, value: str | os.PathLike[str] | None = None) -> DataLayout:
        return cls(resolve_data_dir(value))

    def relative(self, path: Path) -> str:
        """``path`` relative to the data dir, POSIX style (ValueError outside it). String slicing for
        the usual case: ~10x cheaper than ``relative_to``, and the lake computes it per partition."""
        root, text = str(self.root), str(path)
        if os.sep == "/" and text.startswith(root + "/"):
            return text[len(root) + 1:]
        return path.relative_to(self.root).as_posix()

    # --- raw ---
    @property
    def raw(self) -> Path:
        return self.root / "raw"

    def raw_dir(self, source: str, symbol: str, kind: str = "daily") -> Path:
        return Path(f"{self.root}/raw/{source}/{symbol}/{kind}")  # one Path, not four joins (hot path)

    # --- processed lake ---
    @property
    def processed(self) -> Path:
        return self.root / "processed"

    def partition_file(self, symbol: str, source: str, year: int) -> Path:
        # one string, one Path: called ~200,000 times by a full build (pathlib joins cost ~45 us)
        return Path(f"{self.root}/processed/symbol={symbol}/source={source}/year={year}/data.parquet")

    def symbol_source_dir(self, symbol: str, source: str) -> Path:
        return Path(f"{self.root}/processed/symbol={symbol}/source={source}")

    def intraday_dir(self, interval: str) -> Path:
        return self.processed / "intraday" / f"interval={interval}"

    @property
    def actions_dir(self) -> Path:
        return self.processed / "actions"

    # --- serving ---
    @property
    def serving(self) -> Path:
        return self.root / "serving"

    def serving_dataset(self, name: str) -> Path:
        return self.serving / name

    # --- state and db ---
    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def duckdb_path(self) -> Path:
        return self.root / "cxq.duckdb"

    @property
    def logs(self) -> Path:
        return self.root / "logs"
