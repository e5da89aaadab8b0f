"""OCC / OSI option symbols as OPRA and Databento write them.

``AAPL  250221C00250000`` = root left-justified and space-padded to 6 characters, expiry ``YYMMDD``,
``C``/``P``, strike x 1000 as 8 digits (21 characters in all). The root is not always the
underlying (SPXW, adjusted roots like ``XYZ1``); the definition schema is authoritative, the symbol
is what every cbbo record can be tied to without a second file.

Parsing is done once per *unique* symbol (a day has at most ~12k), never per record: the converter
then gathers the parsed fields with numpy indexing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from cxq_data.errors import DataFormatError

OCC_LENGTH = 21
_OCC_RE = re.compile(r"^([A-Z0-9.]{1,6}) *(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
EPOCH = dt.date(1970, 1, 1)


class OptionRight(str, Enum):
    CALL = "C"
    PUT = "P"


@dataclass(frozen=True)
class OccSymbol:
    root: str
    expiration: dt.date
    right: OptionRight
    strike: float

    def format(self) -> str:
        return format_occ(self.root, self.expiration, self.right, self.strike)


def format_occ(root: str, expiration: dt.date, right: OptionRight | str, strike: float) -> str:
    """Build the 21-character OCC symbol (inverse of :func:`parse_occ_symbol`)."""
    if not 1 <= len(root) <= 6:
        raise ValueError(f"OCC root must be 1-6 characters: {root!r}")
    mills = round(strike * 1000)
    if not 0 <= mills < 10**8:
        raise ValueError(f"strike out of OCC range: {strike!r}")
    return f"{root:<6}{expiration:%y%m%d}{OptionRight(right).value}{mills:08d}"


def try_parse_occ_symbol(symbol: str) -> OccSymbol | None:
    """Parse one OCC symbol; ``None`` when it is not one (wrong length, bad date, ...)."""
    if len(symbol) != OCC_LENGTH:
        return None
    match = _OCC_RE.match(symbol)
    if match is None or symbol[:6].rstrip() != match.group(1):  # no spaces inside the root
        return None
    root, yy, mm, dd, right, strike = match.groups()
    try:
        expiration = dt.date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        return None
    return OccSymbol(root, expiration, OptionRight(right), int(strike) / 1000.0)


def parse_occ_symbol(symbol: str) -> OccSymbol:
    parsed = try_parse_occ_symbol(symbol)
    if parsed is None:
        raise DataFormatError(
            f"not an OCC option symbol: {symbol!r} (want 21 chars: root padded to 6, YYMMDD, C/P, strike*1000 as 8 digits)"
        )
    return parsed


@dataclass(frozen=True)
class OccColumns:
    """Parsed fields of N symbols as aligned arrays; ``valid[i]`` is False where symbol i is not OCC."""

    root: list[str | None]
    expiration_days: np.ndarray  # int32 days since 1970-01-01 (0 where invalid)
    right: list[str | None]
    strike: np.ndarray  # float64 (NaN where invalid)
    valid: np.ndarray  # bool

    def take(self, order: np.ndarray) -> OccColumns:
        """The same columns re-ordered (``order`` as returned by :meth:`sort_order`)."""
        return OccColumns([self.root[i] for i in order], self.expiration_days[order], [self.right[i] for i in order],
                          self.strike[order], self.valid[order])

    def sort_order(self, symbols: Sequence[str]) -> np.ndarray:
        """Indices ordering symbols by (expiration, strike, symbol); non-OCC symbols last by name.

        This is the row order of the converted Parquet: row-group statistics then prune on
        expiration and strike, and equal contracts sit next to each other (smaller files).
        """
        big = np.iinfo(np.int32).max
        exp = np.where(self.valid, self.expiration_days, big)
        strike = np.where(self.valid, self.strike, np.inf)
        name_rank = np.argsort(np.argsort(np.asarray(symbols, dtype=object), kind="stable"), kind="stable")
        return np.lexsort((name_rank, strike, exp))


def parse_occ_columns(symbols: Sequence[str], *, strict: bool, context: str = "") -> OccColumns:
    """Parse many symbols at once. With ``strict`` a non-OCC symbol raises, naming it and ``context``."""
    n = len(symbols)
    roots: list[str | None] = [None] * n
    rights: list[str | None] = [None] * n
    exp_days = np.zeros(n, dtype=np.int32)
    strikes = np.full(n, np.nan, dtype=np.float64)
    valid = np.zeros(n, dtype=bool)
    for i, symbol in enumerate(symbols):
        parsed = try_parse_occ_symbol(symbol)
        if parsed is None:
            if strict:
                where = f" in {context}" if context else ""
                raise DataFormatError(f"not an OCC option symbol{where}: {symbol!r}")
            continue
        roots[i] = parsed.root
        rights[i] = parsed.right.value
        exp_days[i] = (parsed.expiration - EPOCH).days
        strikes[i] = parsed.strike
        valid[i] = True
    return OccColumns(roots, exp_days, rights, strikes, valid)
