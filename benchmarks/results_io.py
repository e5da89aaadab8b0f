"""Shared by the benchmarks: stamp a result and write it as benchmarks/results/<name>.json."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def save_results(res: dict[str, Any], out: Path | None, default_name: str) -> Path:
    res["measured_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = out or RESULTS / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return path
