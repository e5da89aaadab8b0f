"""Our backward-adjusted series (Python and the daily_adjusted view) and provider disagreements."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from quality_lake import FIXTURES

from cxq_data.quality.adjust import adjustment_differences, backward_adjust
from cxq_data.quality.frames import frames_from_csv
from cxq_data.quality.views import extra_views


def test_backward_adjust_reproduces_yahoo_dividend_adjustment() -> None:
    series, actions = frames_from_csv(FIXTURES / "8TRA-DE-1d-missing-div-adjust-fixed.csv")
    ours = backward_adjust(series, actions)
    assert np.allclose(ours["adjusted_close"], series["adjusted_close"], rtol=1e-6)
    assert ours["adj_factor"].iloc[0] == pytest.approx(1 - 0.7 / 18.790000915527344)


def test_provider_missing_dividend_is_reported() -> None:
    series, actions = frames_from_csv(FIXTURES / "8TRA-DE-1d-missing-div-adjust.csv")
    diffs = adjustment_differences(series, actions, tolerance_pct=0.5)
    assert [d.date for d in diffs] == [dt.date(2023, 5, 30), dt.date(2023, 5, 31)]
    assert diffs[0].deviation_pct == pytest.approx((1 / (1 - 0.7 / 18.790000915527344) - 1) * 100)
    fixed, fixed_actions = frames_from_csv(FIXTURES / "8TRA-DE-1d-missing-div-adjust-fixed.csv")
    assert adjustment_differences(fixed, fixed_actions) == []


def _sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.bdate_range("2024-01-01", periods=8)
    close = [100.0, 102.0, 51.5, 52.0, 51.0, 50.0, 50.5, 49.0]
    series = pd.DataFrame({"date": dates, "open": close, "high": close, "low": close, "close": close,
                           "adjusted_close": np.nan, "volume": [1000.0] * 2 + [2000.0] * 6})
    actions = pd.DataFrame({"date": [dates[2], dates[5], pd.Timestamp("2024-01-06")],  # a Saturday
                            "dividend": [0.0, 0.5, 0.25], "split_ratio": [2.0, 1.0, 1.0]})
    return series, actions


def test_split_and_dividends_factor_by_hand() -> None:
    series, actions = _sample()
    out = backward_adjust(series, actions)
    # bar 5 is Monday 2024-01-08: the Saturday dividend counts there, adding to its own 0.5
    assert series["date"][5] == pd.Timestamp("2024-01-08")
    div = 1 - 0.75 / 51.0
    assert out["adj_factor"].iloc[-1] == 1.0
    assert out["adj_factor"].iloc[4] == pytest.approx(div)
    assert out["adj_factor"].iloc[2] == pytest.approx(div)
    assert out["adj_factor"].iloc[0] == pytest.approx(div / 2.0)
    assert out["adjusted_volume"].iloc[0] == 2000.0


def test_daily_adjusted_view_equals_python() -> None:
    series, actions = _sample()
    con = duckdb.connect()
    daily = series.assign(symbol="X", source="csv", year=2024, date=series["date"].dt.date)
    acts = actions.assign(symbol="X", source="csv", date=actions["date"].dt.date)
    con.register("daily_df", daily)
    con.register("actions_df", acts)
    con.execute("CREATE VIEW daily AS SELECT * FROM daily_df")
    con.execute("CREATE VIEW actions AS SELECT * FROM actions_df")
    for name, sql in extra_views().items():
        con.execute(f"CREATE VIEW {name} AS {sql}")
    view = con.execute("SELECT * FROM daily_adjusted ORDER BY date").df()
    py = backward_adjust(series, actions)
    assert np.allclose(view["adjusted_close"], py["adjusted_close"])
    assert np.allclose(view["adj_factor"], py["adj_factor"])
    assert np.allclose(view["adjusted_volume"], py["adjusted_volume"])
