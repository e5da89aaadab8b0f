"""Text renderings of findings and comparisons for the CLI (table grouped, or JSON)."""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from typing import Any

from cxq_data.formatting import to_json, to_table
from cxq_data.quality.findings import Finding, has_errors


def render_findings(findings: list[Finding], fmt: str) -> tuple[str, bool]:
    """(text, any error?). Table: one block per symbol/source, then a count per check."""
    if fmt == "json":
        return to_json([f.to_dict() for f in findings]), has_errors(findings)
    if not findings:
        return "no findings", False
    blocks = []
    for (symbol, source), group in groupby(findings, key=lambda f: (f.symbol, f.source)):
        rows = [{k: v for k, v in f.to_dict().items() if k not in ("symbol", "source")} for f in group]
        blocks.append(f"{symbol} / {source}: {len(rows)} finding(s)\n"
                      + to_table(rows, ["date", "severity", "check", "detail"]))
    counts = Counter((f.severity.value, f.check.value) for f in findings)
    summary = ", ".join(f"{check} {n} ({sev})" for (sev, check), n in sorted(counts.items()))
    return "\n\n".join(blocks) + f"\n\nsummary: {len(findings)} finding(s): {summary}", has_errors(findings)


def render_compare(result: Any, fmt: str) -> str:
    data = result.to_dict()
    if fmt == "json":
        return to_json(data)
    head = [{"metric": k, "value": data[k] if not isinstance(data[k], (list, dict)) else str(data[k])}
            for k in ("symbol", "sources", "dates_compared", "max_deviation_pct", "median_deviation_pct",
                      "return_correlation", "best_shift_days", "mismatch_counts")]
    head += [{"metric": f"missing in {s}", "value": len(d)} for s, d in data["missing"].items()]
    head += [{"metric": "explained", "value": e["detail"]} for e in data["explained"]]
    rows = [{"date": m["date"], "field": m["field"], **{s: m["values"][s] for s in data["sources"]},
             "deviation_pct": m["deviation_pct"]} for m in data["mismatches"]]
    shown = rows[:50]
    tail = f"\n... {len(rows) - 50} more (use --format json)" if len(rows) > 50 else ""
    return to_table(head) + "\n\nmismatches:\n" + (to_table(shown) if shown else "(none)") + tail
