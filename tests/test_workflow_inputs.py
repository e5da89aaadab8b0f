"""Snakemake input helpers that keep a 10,000-job DAG cheap: the per-source code stamp and raw listing."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from cxq_data import workflow
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse, raw_data_files, write_raw


@pytest.fixture
def fake_code(tmp_path, monkeypatch) -> list[Path]:
    files = []
    for i, name in enumerate(("base.py", "stooq.py")):
        path = tmp_path / "code" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# version 1 of {name}\n")
        os.utime(path, ns=(10**18 + i, 10**18 + i))  # "old" code: 2001
        files.append(path)
    monkeypatch.setattr(workflow, "code_inputs", lambda source: [str(p) for p in files])
    return files


def test_code_stamp_is_as_old_as_the_code_and_moves_only_when_the_code_changes(tmp_path, fake_code):
    layout = DataLayout(tmp_path / "data")
    stamp = Path(workflow.code_stamp(layout, "stooq"))
    first = stamp.read_text()
    assert stamp.stat().st_mtime_ns == 10**18 + 1  # newest code file: an existing lake stays up to date
    os.utime(fake_code[0], None)  # touched, same content (e.g. a checkout): no rerun
    workflow.code_stamp(layout, "stooq")
    assert stamp.read_text() == first and stamp.stat().st_mtime_ns == 10**18 + 1
    fake_code[0].write_text("# version 2\n")  # a real change: the stamp changes and is new
    workflow.code_stamp(layout, "stooq")
    assert stamp.read_text() != first and stamp.stat().st_mtime_ns == fake_code[0].stat().st_mtime_ns


def test_raw_inputs_lists_the_same_files_as_the_raw_layer_without_temps(tmp_path):
    layout = DataLayout(tmp_path / "data")
    for day in (1, 2):
        write_raw(layout, RawResponse(source="stooq", symbol="AAPL", body=f"x{day}".encode(), ext="csv",
                                      fetched_at=dt.datetime(2025, 1, day, tzinfo=dt.UTC)))
    folder = layout.raw_dir("stooq", "AAPL")
    (folder / ".tmp-x.csv.partial").write_text("half")
    (folder / "orphan.csv").write_text("a data file without its manifest is not an input")
    expected = sorted(str(p) for p in raw_data_files(layout, "stooq", "AAPL"))
    assert sorted(workflow.raw_inputs(layout, "stooq", "AAPL")) == expected and len(expected) == 2
    assert workflow.raw_inputs(layout, "stooq", "NONE") == []
