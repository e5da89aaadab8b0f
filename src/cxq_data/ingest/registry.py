"""Provider source -> ingestor class, imported on first use.

The table holds ``"module:Class"`` strings so that importing this module (or ``cxq_data``, or running
``cxq_data query``) never imports yfinance or requests-heavy provider code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cxq_data.sources import Source, provider_source

if TYPE_CHECKING:
    from cxq_data.ingest.base import BaseIngestor
    from cxq_data.paths import DataLayout
    from cxq_data.settings import ProviderSettings

INGESTORS: dict[Source, str] = {
    Source.YFINANCE: "cxq_data.ingest.yahoo:YahooIngestor",
    Source.ALPHAVANTAGE: "cxq_data.ingest.alphavantage:AlphaVantageIngestor",
    Source.STOOQ: "cxq_data.ingest.stooq:StooqIngestor",
}


def ingestor_class(source: Source | str) -> type:
    src = source if isinstance(source, Source) else provider_source(source)
    module_name, _, class_name = INGESTORS[src].partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def get_ingestor(source: Source | str, settings: ProviderSettings, layout: DataLayout) -> BaseIngestor:
    """An ingestor for ``source`` (long name or alias: yf, av ...); raises InvalidSourceError if unknown."""
    from cxq_data.ingest.base import BaseIngestor

    ingestor = ingestor_class(source)(settings, layout)
    if not isinstance(ingestor, BaseIngestor):  # structural check: no inheritance anywhere
        raise TypeError(f"{type(ingestor).__name__} does not satisfy the BaseIngestor protocol")
    return ingestor
