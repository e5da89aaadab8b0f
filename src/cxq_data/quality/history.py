"""Checks over the raw layer's fetch history: ``duplicate_date`` and ``restated_history``.

Each raw fetch of a symbol/source is normalized on its own, oldest first. Then

* ``duplicate_date``: one fetch holds two rows for one date (what merge_latest would silently pick
  from);
* ``restated_history``: a newer fetch changes values an older fetch already had by something other
  than one constant factor. A constant factor on adjusted prices is a normal re-adjustment (a new
  dividend or split rescales all history); different factors on different dates are a restatement.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cxq_data.quality.checks_bars import check_duplicates
from cxq_data.quality.findings import Check, Issue

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd

RESTATE_REL_TOL = 1e-4  # yfinance#1038: adjusted values jitter ~1e-5 between downloads
CENT = 0.006  # one value rounded to half a cent, in price units
FIELDS = ("open", "high", "low", "close", "adjusted_close")


@dataclass(frozen=True)
class Fetch:
    """One raw fetch, normalized: when it was fetched, where from, and its bars (series frame)."""

    fetched_at: dt.datetime
    label: str
    series: pd.DataFrame


def check_fetch_duplicates(fetches: list[Fetch]) -> list[Issue]:
    out = []
    for fetch in fetches:
        for issue in check_duplicates(fetch.series):
            out.append(Issue(issue.date, issue.check, f"{issue.detail} in raw fetch {fetch.label}"))
    return out


def _restatements(old: pd.DataFrame, new: pd.DataFrame) -> list[tuple[object, str, float, float, float, float]]:
    """(date, field, old, new, factor, deviation) where a value moved off the dominant factor."""
    cols = ["date", *FIELDS]
    both = old[cols].merge(new[cols], on="date", suffixes=("_old", "_new"))
    out = []
    for field in FIELDS:
        a, b = both[f"{field}_old"], both[f"{field}_new"]
        ok = (a > 0) & (b > 0)
        if not ok.any():
            continue
        ratio = b[ok] / a[ok]
        factor = float(ratio.median())
        deviation = (ratio / factor - 1.0).abs()
        bad = deviation > RESTATE_REL_TOL + CENT / a[ok]
        for idx in bad[bad].index:
            out.append((both.at[idx, "date"], field, float(a[idx]), float(b[idx]), factor, float(deviation[idx])))
    return out


def check_restated(fetches: list[Fetch]) -> list[Issue]:
    out: dict[object, Issue] = {}
    for older, newer in itertools.pairwise(fetches):
        old = older.series.drop_duplicates("date", keep="last")
        new = newer.series.drop_duplicates("date", keep="last")
        for date, field, before, after, factor, deviation in _restatements(old, new):
            day = date.date()
            if day not in out:
                out[day] = Issue(day, Check.RESTATED_HISTORY,
                                 f"{field} {before:g} in fetch {older.label} became {after:g} in fetch "
                                 f"{newer.label} ({deviation:.3%} off the factor x{factor:.6g} that rescales "
                                 f"the rest of the history)")
    return sorted(out.values(), key=lambda i: i.date)
