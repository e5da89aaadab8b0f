"""The end of a workflow run: which symbols failed, and a non-zero exit when any did.

A failed fetch or a symbol that could not be processed does not fail its Snakemake job (one bad
ticker must not keep the serving layer and views of all the others stale): the fetch marker says
``ok: false``, the bucket file lists the symbol under ``failed``. The ``report`` rule reads those
files last, writes ``state/run/{target}-{day}.json`` when nothing failed, and otherwise raises
:class:`RunFailedError` naming every failure, so ``make all`` still exits 1. It removes the markers
of failed fetches and the bucket files that list failures first: the next run fetches exactly those
again and reprocesses those buckets (whose unchanged symbols are skipped inside the job), so a
transient failure - a full disk, an outage - clears itself once its cause is gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cxq_data.atomic import atomic_write_json
from cxq_data.errors import CxqError


class RunFailedError(CxqError):
    """Some symbols failed to fetch or process; everything else of the run was done."""


def check_run(inputs: Iterable[str | Path], out: str | Path) -> Path:
    """Collect the failures recorded in fetch markers and bucket files among ``inputs``; write ``out``
    when there are none, else remove the failed fetch markers and raise :class:`RunFailedError`."""
    fetch_failed: dict[Path, str] = {}
    process_failed: list[str] = []
    failed_buckets: list[Path] = []
    fetches = buckets = 0
    for path in map(Path, inputs):
        data = _read(path)
        if "results" in data and "ok" in data:  # a fetch marker
            fetches += 1
            if not data["ok"]:
                fetch_failed[path] = f"fetch {data['source']}/{data['symbol']}: {_reasons(data['results'])}"
        elif "indexes" in data:  # a bucket file
            buckets += 1
            process_failed += [f"process {sym}: {why}" for sym, why in data.get("failed", {}).items()]
            if data.get("failed"):
                failed_buckets.append(path)
    if fetch_failed or process_failed:
        for path in [*fetch_failed, *failed_buckets]:
            path.unlink(missing_ok=True)  # so that the next run fetches / processes it again
        lines = sorted(fetch_failed.values()) + sorted(process_failed)
        raise RunFailedError(f"{len(lines)} failure(s); everything else was fetched, processed and served:\n  "
                             + "\n  ".join(lines))
    return atomic_write_json(out, {"fetches": fetches, "buckets": buckets, "failures": 0})


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, IsADirectoryError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _reasons(rows: list[dict[str, Any]]) -> str:
    return "; ".join(str(r.get("reason") or r.get("status")) for r in rows) or "no result"


def check_validation(reports: Iterable[str | Path], out: str | Path) -> Path:
    """``make validate``: exit 1 like ``cxq_data validate run`` when a per-symbol report holds a finding
    of severity ``error`` (the reports stay: they are the details); else write ``out``."""
    paths = [Path(p) for p in reports]
    errors: dict[str, dict[str, int]] = {}
    total = 0
    for path in paths:
        findings = json.loads(path.read_text())
        total += len(findings)
        for f in findings:
            if f.get("severity") == "error":
                by_check = errors.setdefault(f"{f['symbol']}/{f['source']}", {})
                by_check[f["check"]] = by_check.get(f["check"], 0) + 1
    if errors:
        lines = [f"{pair}: " + ", ".join(f"{check} x{n}" for check, n in sorted(checks.items()))
                 for pair, checks in sorted(errors.items())]
        raise RunFailedError(f"error findings in {len(errors)} series (details: state/validate/SYMBOL.json, or "
                             "`cxq_data validate run --symbols ...`):\n  " + "\n  ".join(lines))
    return atomic_write_json(out, {"reports": len(paths), "findings": total, "errors": 0})
