"""``validate run`` end to end: raw CSV -> lake -> views -> findings, JSON and table, exit status."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner
from quality_lake import FIXTURES, add_raw, build

from cxq_data.cli import cli
from cxq_data.paths import DataLayout


def _run(d: Path, *args: str):
    return CliRunner().invoke(cli, ["--data-dir", str(d), "validate", "run", *args])


def test_defects_through_the_lake(tmp_path: Path) -> None:
    d = tmp_path / "data"
    layout = DataLayout(d)
    add_raw(layout, "vendorx", "AET.L", (FIXTURES / "AET-L-1d-100x-error.csv").read_bytes())
    add_raw(layout, "vendorx", "MOB.ST", (FIXTURES / "MOB-ST-1d-bad-stock-split-fixed.csv").read_bytes())
    build(layout, [("vendorx", "AET.L"), ("vendorx", "MOB.ST")])
    res = _run(d, "--symbols", "AET.L,MOB.ST", "--format", "json")
    assert res.exit_code == 1, res.output
    found = json.loads(res.output)
    jumps = [f for f in found if f["check"] == "price_unit_jump"]
    assert [(f["symbol"], f["date"], f["severity"]) for f in jumps] == [
        ("AET.L", "2022-05-09", "error"), ("AET.L", "2022-05-20", "error")]
    assert set(found[0]) == {"symbol", "source", "date", "check", "severity", "detail"}
    assert not [f for f in found if f["symbol"] == "MOB.ST"]
    ok = _run(d, "--symbols", "MOB.ST")
    assert ok.exit_code == 0 and "no findings" in ok.output
    table = _run(d, "--symbols", "AET.L", "--start", "2022-05-15")
    assert table.exit_code == 1 and "AET.L / vendorx" in table.output and "\n2022-05-09" not in table.output
    # a symbol or source without data is an error, after the others are reported ("no findings" was printed)
    typo = _run(d, "--symbols", "MOB.ST,NOPE")
    assert typo.exit_code == 1 and "no findings" in typo.output
    assert "error: no data in the lake for NOPE" in typo.output
    typo = _run(d, "--symbols", "MOB.ST", "--source", "nope")
    assert typo.exit_code == 1 and "no data in the lake for MOB.ST from nope" in typo.output
    backwards = _run(d, "--symbols", "MOB.ST", "--start", "2025-01-01", "--end", "2024-01-01")
    assert backwards.exit_code == 1 and "start 2025-01-01 is after end 2024-01-01" in backwards.output


def test_raw_layer_duplicates_and_restatements(tmp_path: Path) -> None:
    d = tmp_path / "data"
    layout = DataLayout(d)
    text = (FIXTURES / "MOB-ST-1d-bad-stock-split-fixed.csv").read_text().splitlines()
    first = "\n".join(text[:10]) + "\n"
    restated = text[:]
    restated[3] = restated[3].replace("22.9500007629395,22.9500007629395", "23.1,23.1")
    dup = restated + [restated[5].replace("23.8500003814697,23.8500003814697", "24.5,24.5")]
    add_raw(layout, "vendorx", "MOB.ST", first.encode(), dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    add_raw(layout, "vendorx", "MOB.ST", ("\n".join(dup) + "\n").encode(), dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    build(layout, [("vendorx", "MOB.ST")])
    res = _run(d, "--symbols", "MOB.ST", "--format", "json")
    found = {(f["check"], f["date"]) for f in json.loads(res.output)}
    assert ("restated_history", "2023-05-10") in found
    assert ("duplicate_date", "2023-05-12") in found
    assert res.exit_code == 1


def test_bad_arguments(tmp_path: Path) -> None:
    res = _run(tmp_path / "nodb", "--symbols", "AAPL")
    assert res.exit_code == 1 and "does not exist" in res.output
    res = _run(tmp_path, "--symbols", "../etc")
    assert res.exit_code == 1 and "invalid symbol" in res.output
    res = _run(tmp_path, "--symbols", "AAPL", "--exchange", "XNYSE")
    assert res.exit_code == 1 and "unknown exchange calendar 'XNYSE'" in res.output
