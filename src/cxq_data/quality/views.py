"""Extra DuckDB views owned by the quality package (``daily_adjusted``).

``cxq_data.db.init_db`` creates these after ``daily`` and ``actions``; their SQL references both.

``daily_adjusted``: our CRSP-style backward-adjusted prices for every source (including those with
no adjusted close of their own), next to the provider's ``adjusted_close`` for comparison. Same
method as :func:`cxq_data.quality.adjust.backward_adjust`: an action dated on a non-trading day
counts on the next bar; several actions on one bar combine (dividends add, split ratios multiply).
"""

from __future__ import annotations

DAILY_ADJUSTED_SQL = """
WITH bars AS (
    SELECT symbol, source, year, date, open, high, low, close, adjusted_close, volume,
           lag(close) OVER (PARTITION BY symbol, source ORDER BY date) AS prev_close
    FROM daily
),
events AS (
    SELECT symbol, source, date,
           sum(coalesce(dividend, 0)) AS dividend,
           product(CASE WHEN split_ratio > 0 THEN split_ratio ELSE 1 END) AS split_ratio
    FROM (SELECT DISTINCT symbol, source, date, dividend, split_ratio FROM actions)
    GROUP BY symbol, source, date
),
events_on_bars AS (
    SELECT b.symbol, b.source, b.date AS bar_date,
           sum(e.dividend) AS dividend, product(e.split_ratio) AS split_ratio
    FROM events e ASOF JOIN bars b
      ON e.symbol = b.symbol AND e.source = b.source AND b.date >= e.date
    GROUP BY ALL
),
factors AS (
    SELECT b.*,
           CASE WHEN coalesce(e.dividend, 0) > 0 AND b.prev_close > e.dividend
                THEN 1 - e.dividend / b.prev_close ELSE 1 END / coalesce(e.split_ratio, 1) AS event_factor,
           1 / coalesce(e.split_ratio, 1) AS split_event_factor
    FROM bars b LEFT JOIN events_on_bars e
      ON b.symbol = e.symbol AND b.source = e.source AND b.date = e.bar_date
),
cumulative AS (
    SELECT *,
           coalesce(exp(sum(ln(event_factor)) OVER later), 1) AS adj_factor,
           coalesce(exp(sum(ln(split_event_factor)) OVER later), 1) AS split_factor
    FROM factors
    WINDOW later AS (PARTITION BY symbol, source ORDER BY date
                     ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
)
SELECT symbol, source, year, date, open, high, low, close, volume,
       adjusted_close AS provider_adjusted_close,
       adj_factor, split_factor,
       open * adj_factor AS adjusted_open,
       high * adj_factor AS adjusted_high,
       low * adj_factor AS adjusted_low,
       close * adj_factor AS adjusted_close,
       volume / split_factor AS adjusted_volume
FROM cumulative
"""


def extra_views() -> dict[str, str]:
    """View name -> SELECT statement (no CREATE VIEW prefix)."""
    return {"daily_adjusted": DAILY_ADJUSTED_SQL}
