"""cxq_data: market-data infrastructure for people who research and trade with their own data.

Importing the package is cheap: it pulls in neither pandas nor yfinance (the query path relies on
that for a sub-second cold CLI). Submodules are imported where they are used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
