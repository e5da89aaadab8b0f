"""Extra DuckDB views owned by the quality package (e.g. ``daily_adjusted``).

``cxq_data.db.init_db`` creates these after ``daily`` and ``actions``; their SQL may reference both.
"""

from __future__ import annotations


def extra_views() -> dict[str, str]:
    """View name -> SELECT statement (no CREATE VIEW prefix)."""
    return {}
