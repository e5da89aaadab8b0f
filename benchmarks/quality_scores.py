"""Precision/recall of every data-quality check on the seeded defect injector (50 cases per check +
50 clean controls). Writes benchmarks/results/quality_scores.json and prints a table."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(n: int = 50, seed: int = 7) -> None:
    from cxq_data.formatting import to_table
    from cxq_data.quality.scores import quality_scores

    rows = [s.to_dict() for s in quality_scores(n, seed)]
    out = Path(__file__).parent / "results" / "quality_scores.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cases_per_check": n, "seed": seed, "scores": rows}, indent=2) + "\n")
    print(to_table(rows))
    print(f"written {out}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
