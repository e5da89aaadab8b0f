"""Cross-source comparison (pure and through the CLI on a real lake)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner
from quality_lake import add_raw, build, frame_to_csv

from cxq_data.cli import cli
from cxq_data.paths import DataLayout
from cxq_data.quality.compare import compare_frames
from cxq_data.quality.inject import clean_series


def _pair(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    series, actions = clean_series(np.random.default_rng(seed), bars=120)
    return series, actions


def test_identical_sources_agree_and_constant_volume_factor_is_one_difference() -> None:
    series, actions = _pair()
    other = series.copy()
    other["volume"] = other["volume"] * 100  # a vendor counting shares where the other counts lots
    other = other.drop(index=[10, 11]).reset_index(drop=True)
    result = compare_frames("SYN", {"a": (series, actions), "b": (other, actions)}, 1.0)
    assert result.dates_compared == 118
    assert result.mismatches == []
    assert len(result.missing["b"]) == 2 and result.missing["a"] == []
    assert [e["field"] for e in result.explained] == ["volume"]
    assert result.explained[0]["factor"] == 100.0
    assert result.return_correlation == 1.0 and result.best_shift_days == 0


def test_level_mismatch_and_one_day_shift_are_found() -> None:
    series, actions = _pair()
    bad = series.copy()
    bad.loc[50, ["open", "high", "low", "close", "adjusted_close"]] *= 1.05
    result = compare_frames("SYN", {"a": (series, actions), "b": (bad, actions)}, 1.0)
    close = [m for m in result.mismatches if m["field"] == "close"]
    assert [m["date"] for m in close] == [series.at[50, "date"].date().isoformat()]
    assert abs(close[0]["deviation_pct"] - 5.0) < 1e-6
    assert set(close[0]["values"]) == {"a", "b"}
    assert abs(result.max_deviation_pct - 5.0) < 1e-6
    shifted = series.copy()
    shifted["date"] = shifted["date"].shift(-1)  # every bar labelled one session early
    shifted = shifted.dropna(subset=["date"])
    moved = compare_frames("SYN", {"a": (series, actions), "b": (shifted, actions)}, 1.0)
    assert moved.best_shift_days != 0
    assert moved.shift_correlations[str(moved.best_shift_days)] > 0.99


def _lake(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    layout = DataLayout(d)
    series, actions = _pair(5)
    stooq_like = series.copy()  # levels adjusted, no adjusted column: returns still agree
    stooq_like["close"] = series["adjusted_close"]
    stooq_like["adjusted_close"] = np.nan
    stooq_like.loc[60, "close"] *= 1.08
    add_raw(layout, "vendora", "SYN", frame_to_csv(series, actions))
    add_raw(layout, "vendorb", "SYN", frame_to_csv(stooq_like))
    build(layout, [("vendora", "SYN"), ("vendorb", "SYN")])
    return d


def test_compare_and_matrix_cli(tmp_path: Path) -> None:
    d = _lake(tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["--data-dir", str(d), "crossvalidate", "compare", "--symbol", "SYN",
                              "--sources", "vendora,vendorb", "--format", "json", "--plot", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["dates_compared"] == 120
    returns = [m for m in out["mismatches"] if m["field"] == "return"]
    assert len(returns) == 2  # the bad bar and the day after
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = runner.invoke(cli, ["--data-dir", str(d), "crossvalidate", "matrix", "--symbols", "SYN",
                              "--sources", "vendora,vendorb", "--format", "json", "--plot", str(tmp_path / "m.png")])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)[0]
    assert row["dates_compared"] == 120 and abs(row["agreement_rate"] - 117 / 119) < 1e-6
    assert (tmp_path / "m.png").stat().st_size > 1000
    typo = runner.invoke(cli, ["--data-dir", str(d), "crossvalidate", "matrix", "--symbols", "SYN,NOPE",
                               "--sources", "vendora,vendorb", "--format", "json"])
    assert typo.exit_code == 1 and "no common dates to compare for NOPE vendora/vendorb" in typo.output
    assert '"dates_compared": 120' in typo.output  # SYN is still reported
    table = runner.invoke(cli, ["--data-dir", str(d), "crossvalidate", "compare", "--symbol", "SYN",
                                "--sources", "vendora,vendorb"])
    assert table.exit_code == 0 and "return_correlation" in table.output


def test_compare_cli_errors(tmp_path: Path) -> None:
    d = _lake(tmp_path)
    res = CliRunner().invoke(cli, ["--data-dir", str(d), "crossvalidate", "compare", "--symbol", "SYN",
                                   "--sources", "vendora,nosuch"])
    assert res.exit_code == 1 and "nosuch" in res.output
    res = CliRunner().invoke(cli, ["--data-dir", str(d), "crossvalidate", "adjustments", "--symbol", "SYN",
                                   "--source", "vendora", "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.output) == []
