"""OCC option symbol parsing (root padded to 6, YYMMDD, C/P, strike*1000 as 8 digits)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cxq_data.errors import DataFormatError
from cxq_data.options.occ import (
    OptionRight,
    format_occ,
    parse_occ_columns,
    parse_occ_symbol,
    try_parse_occ_symbol,
)


def test_parses_the_real_databento_symbol() -> None:
    parsed = parse_occ_symbol("AAPL  250221C00250000")
    assert parsed.root == "AAPL"
    assert parsed.expiration == dt.date(2025, 2, 21)
    assert parsed.right is OptionRight.CALL
    assert parsed.strike == 250.0


@pytest.mark.parametrize(
    ("symbol", "root", "expiration", "right", "strike"),
    [
        ("SPY   250815P00450500", "SPY", dt.date(2025, 8, 15), "P", 450.5),
        ("F     260116C00012125", "F", dt.date(2026, 1, 16), "C", 12.125),
        ("XYZ1  251219P00000500", "XYZ1", dt.date(2025, 12, 19), "P", 0.5),
        ("SPXW  250807C06400000", "SPXW", dt.date(2025, 8, 7), "C", 6400.0),
        ("BRK.B 250919C00500000", "BRK.B", dt.date(2025, 9, 19), "C", 500.0),
        ("GOOGL1250117P99999999", "GOOGL1", dt.date(2025, 1, 17), "P", 99999.999),
    ],
)
def test_parses_roots_strikes_and_round_trips(symbol: str, root: str, expiration: dt.date, right: str,
                                             strike: float) -> None:
    parsed = parse_occ_symbol(symbol)
    assert (parsed.root, parsed.expiration, parsed.right.value, parsed.strike) == (root, expiration, right, strike)
    assert parsed.format() == symbol


@pytest.mark.parametrize(
    "symbol",
    [
        "SPY.OPT",  # parent symbol
        "ESH1",  # a future
        "AAPL 250221C00250000",  # 20 chars
        "AAPL  251321C00250000",  # month 13
        "AAPL  250230C00250000",  # 30 February
        "AAPL  250221X00250000",  # right X
        "AA PL 250221C00250000",  # space inside the root
        "aapl  250221C00250000",  # lower case
        "AAPL  250221C0025000A",  # strike not digits
        "      250221C00250000",  # empty root
    ],
)
def test_rejects_what_is_not_an_occ_symbol(symbol: str) -> None:
    assert try_parse_occ_symbol(symbol) is None
    with pytest.raises(DataFormatError, match="not an OCC option symbol"):
        parse_occ_symbol(symbol)


def test_format_rejects_bad_parts() -> None:
    with pytest.raises(ValueError):
        format_occ("TOOLONGX", dt.date(2025, 1, 17), "C", 1.0)
    with pytest.raises(ValueError):
        format_occ("SPY", dt.date(2025, 1, 17), "C", 100_000.0)
    with pytest.raises(ValueError):
        format_occ("SPY", dt.date(2025, 1, 17), "X", 1.0)


def test_columns_strict_names_the_bad_symbol_and_lenient_marks_it_invalid() -> None:
    symbols = ["SPY   250815P00450000", "ESH1"]
    with pytest.raises(DataFormatError, match="'ESH1'"):
        parse_occ_columns(symbols, strict=True, context="x.dbn.zst")
    cols = parse_occ_columns(symbols, strict=False)
    assert cols.valid.tolist() == [True, False]
    assert cols.root == ["SPY", None]
    assert cols.right == ["P", None]
    assert cols.strike[0] == 450.0 and np.isnan(cols.strike[1])
    assert cols.expiration_days[0] == (dt.date(2025, 8, 15) - dt.date(1970, 1, 1)).days


def test_sort_order_is_expiration_then_strike_then_symbol_and_non_occ_last() -> None:
    symbols = [
        "ZZZ",
        "SPY   250822C00450000",
        "SPY   250815P00460000",
        "SPY   250815P00450000",
        "SPY   250815C00450000",
        "AAA",
    ]
    cols = parse_occ_columns(symbols, strict=False)
    ordered = [symbols[i] for i in cols.sort_order(symbols)]
    assert ordered == [
        "SPY   250815C00450000",
        "SPY   250815P00450000",
        "SPY   250815P00460000",
        "SPY   250822C00450000",
        "AAA",
        "ZZZ",
    ]
