"""Batch ZIP inventory and verified extraction (no S3 needed)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from options_support import DATES, batch_zip

from cxq_data.errors import DataFormatError
from cxq_data.options.batch import extract_day, read_inventory


def test_inventory_lists_days_with_manifest_hashes(tmp_path: Path) -> None:
    zpath = batch_zip(tmp_path)
    inv = read_inventory(zpath)
    assert inv.dates == DATES
    with zipfile.ZipFile(zpath) as zf:
        for date, member in inv.days.items():
            assert member.sha256 == hashlib.sha256(zf.read(member.name)).hexdigest()
            assert member.filename == f"opra-pillar-{date.replace('-', '')}.cbbo-1m.dbn.zst"
    assert set(inv.support) >= {"manifest.json", "symbology.json", "metadata.json", "condition.json"}


def test_extract_day_streams_one_verified_member(tmp_path: Path) -> None:
    zpath = batch_zip(tmp_path)
    out = extract_day(zpath, "2025-08-08", tmp_path / "x")
    with zipfile.ZipFile(zpath) as zf:
        assert out.read_bytes() == zf.read("opra-pillar-20250808.cbbo-1m.dbn.zst")
    # only that day (plus the small symbology file the converter may need), no temp files
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [out.name, "symbology.json"]


def test_member_failing_its_hash_is_rejected_and_nothing_is_left(tmp_path: Path) -> None:
    zpath = batch_zip(tmp_path, corrupt="bad_hash")
    with pytest.raises(DataFormatError, match=r"opra-pillar-20250811\.cbbo-1m\.dbn\.zst fails its manifest hash"):
        extract_day(zpath, "2025-08-11", tmp_path / "x")
    assert not (tmp_path / "x").exists() or list((tmp_path / "x").iterdir()) == []
    assert extract_day(zpath, "2025-08-07", tmp_path / "y").is_file()  # the good days still extract


@pytest.mark.parametrize(("defect", "named"), [("zip_slip", "../escape.dbn.zst"),
                                               ("non_cbbo", "opra-pillar-20250811.ohlcv-1m.dbn.zst"),
                                               ("missing_member", "opra-pillar-20250811.cbbo-1m.dbn.zst")])
def test_bad_members_fail_before_any_work_naming_the_member(tmp_path: Path, defect: str, named: str) -> None:
    zpath = batch_zip(tmp_path, corrupt=defect)
    with pytest.raises(DataFormatError) as err:
        read_inventory(zpath)
    assert named in str(err.value)


def _hand_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("style", ["list-bare-hex", "files-prefixed", "sha256-key"])
def test_manifest_shapes_are_all_understood(tmp_path: Path, style: str) -> None:
    day = b"not really dbn, only hashed here"
    digest = hashlib.sha256(day).hexdigest()
    name = "opra-pillar-20250807.cbbo-1m.dbn.zst"
    entries = {"list-bare-hex": [{"filename": name, "hash": digest.upper()}],
               "files-prefixed": {"files": [{"filename": name, "hash": f"sha256:{digest}"}]},
               "sha256-key": {"files": [{"filename": name, "sha256": digest}]}}[style]
    zpath = _hand_zip(tmp_path / "b.zip", {"manifest.json": json.dumps(entries).encode(), name: day})
    assert read_inventory(zpath).days["2025-08-07"].sha256 == digest
    assert extract_day(zpath, "2025-08-07", tmp_path / "out").read_bytes() == day


@pytest.mark.parametrize("bad_name", ["/etc/opra-pillar-20250807.cbbo-1m.dbn.zst",
                                      "a/../../opra-pillar-20250807.cbbo-1m.dbn.zst",
                                      "C:/opra-pillar-20250807.cbbo-1m.dbn.zst",
                                      "a/b/opra-pillar-20250807.cbbo-1m.dbn.zst",
                                      "notes.txt"])
def test_unsafe_or_unknown_names_are_rejected(tmp_path: Path, bad_name: str) -> None:
    zpath = _hand_zip(tmp_path / "b.zip", {bad_name: b"x"})
    with pytest.raises(DataFormatError, match=bad_name.replace(".", r"\.")):
        read_inventory(zpath)


def test_members_under_a_job_folder_are_accepted(tmp_path: Path) -> None:
    zpath = _hand_zip(tmp_path / "b.zip", {"OPRA-X/opra-pillar-20250807.cbbo-1m.dbn.zst": b"abc"})
    assert extract_day(zpath, "2025-08-07", tmp_path / "o").read_bytes() == b"abc"


def test_not_a_zip_and_unknown_date_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK but not really")
    with pytest.raises(DataFormatError, match="junk.zip: not a readable ZIP"):
        read_inventory(junk)
    with pytest.raises(DataFormatError, match="no day file for 2025-09-01"):
        extract_day(batch_zip(tmp_path), "2025-09-01", tmp_path / "o")
