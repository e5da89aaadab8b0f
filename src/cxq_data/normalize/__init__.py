"""Normalization: raw provider responses -> the canonical daily schema (and corporate actions).

Contract used by the lake writer, Snakemake and the quality checks:

* every raw manifest carries a ``format`` (one of :class:`RawFormat`); :func:`normalize_record`
  dispatches on it and returns a :class:`Normalized` with ``bars`` in ``schema.PARTITION_SCHEMA``
  (one row per trading date, sorted, ``ingested_at`` = the raw file's ``fetched_at``) and ``actions``
  in ``schema.ACTIONS_SCHEMA``;
* :func:`merge_latest` combines several raw records of one symbol/source: for every date the row
  from the latest fetch wins (ties: later file name), deterministically.

``close`` is the as-traded price. Yahoo's chart ``close`` is split-adjusted, so the Yahoo normalizer
multiplies it back by the product of later split ratios. Stooq gives only adjusted levels (split-
and, irregularly, dividend-adjusted); its ``close`` is stored as Stooq publishes it and
``adjusted_close`` is left null (documented in the README).
"""

from __future__ import annotations

from cxq_data.normalize.base import (
    Normalized,
    ParseRequest,
    RawFormat,
    merge_latest,
    normalize_record,
    parse_body,
    record_format,
)

__all__ = ["Normalized", "ParseRequest", "RawFormat", "merge_latest", "normalize_record", "parse_body",
           "record_format"]
