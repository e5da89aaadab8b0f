"""Running the real Snakemake workflow in tests: a copy of the workflow and the package in a temp folder.

The workflow and the package are copied (PYTHONPATH points at the copy), so a test can edit a
normalizer the way a developer would, without touching the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

import cxq_data
from cxq_data.ingest.importer import import_file
from cxq_data.paths import DataLayout

REPO = Path(__file__).resolve().parents[1]

STOOQ_CSV = "Date,Open,High,Low,Close,Volume\n" + "\n".join(
    f"2024-01-{d:02d},{10 + d},{11 + d},{9 + d},{10.5 + d},{1000 * d}" for d in range(2, 20) if d not in (6, 7, 13, 14)
) + "\n"
VENDOR_CSV = "Date,Open,High,Low,Close,Adj Close,Volume\n" + "\n".join(
    f"2023-12-{d:02d},{20 + d},{21 + d},{19 + d},{20.5 + d},{20.4 + d},{500 * d}" for d in (27, 28, 29)
) + "\n2024-01-02,50,51,49,50.5,50.4,700\n"


def import_sample(layout: DataLayout, tmp_path: Path, stooq: tuple[str, ...] = ("AAA", "BBB"),
                  vendor: bool = True) -> None:
    """Raw files through ``ingest import``: STOOQ_CSV for each ``stooq`` symbol, VENDOR_CSV as vendorx/AAA."""
    for sym in stooq:
        f = tmp_path / f"{sym}.csv"
        f.write_text(STOOQ_CSV)
        import_file(layout, f, "stooq", sym)
    if vendor:
        f = tmp_path / "vendor.csv"
        f.write_text(VENDOR_CSV)
        import_file(layout, f, "vendorx", "AAA")


def make_workflow(tmp_path: Path, work_name: str = "wf", data_dir: str | None = None) -> tuple[Path, dict[str, str]]:
    """Copy the workflow to ``tmp_path/work_name`` with an empty universe; return (work dir, env).

    ``data_dir``: as written into the config (default: ``tmp_path/data``, outside the work dir).
    """
    work = tmp_path / work_name
    work.mkdir()
    for name in ("Snakefile", "rules", "scripts", "config"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    pkg = tmp_path / "pkg"
    if not pkg.exists():
        shutil.copytree(Path(cxq_data.__file__).parent, pkg / "cxq_data",
                        ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((work / "config/config.yaml").read_text())
    config["data_dir"] = data_dir or str(tmp_path / "data")
    config["universe"] = {"symbols": [], "sources": [], "start": "", "end": ""}
    (work / "config/config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(pkg)}
    if data_dir is None:
        env["CXQ_DATA_DIR"] = str(tmp_path / "data")
    return work, env


def run_snakemake(work: Path, env: dict[str, str], *args: str) -> str:
    """``snakemake --cores 2 ARGS`` in ``work``; fails the test with the output's tail on a non-zero exit."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--scheduler", "greedy", *args]
    proc = subprocess.run(cmd, check=False, cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr
