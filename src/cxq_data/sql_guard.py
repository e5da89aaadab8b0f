"""Free SQL typed by users (``query sql``, ``options query``) may only read.

A read-only DuckDB connection refuses writes to its database, but not to the file system: ``COPY ...
TO`` could overwrite a serving file the views read (every query would then fail), and ``ATTACH``
creates files. So the statement is parsed first and only a single ``SELECT`` (``WITH``, ``FROM``,
``DESCRIBE``, ``SHOW``, ``SUMMARIZE`` parse as such) or an ``EXPLAIN [ANALYZE]`` of one is run.
``EXPLAIN ANALYZE`` executes its statement, hence the check of what it explains.
"""

from __future__ import annotations

import re
from typing import Any

from cxq_data.errors import ConfigError

_EXPLAIN = re.compile(r"^\s*explain\s+(?:analy[sz]e\s+)?(?:\([^)]*\)\s*)?(?P<inner>.+)$", re.IGNORECASE | re.DOTALL)


class WriteRefusedError(ConfigError):
    """The statement would write (COPY, ATTACH, CREATE, SET ...) or is not exactly one statement."""


def check_reading_sql(con: Any, text: str) -> None:
    """Raise :class:`WriteRefusedError` unless ``text`` is one reading statement (see the module doc).
    A statement DuckDB cannot parse is left to ``execute``, whose error names the syntax problem."""
    import duckdb

    try:
        statements = con.extract_statements(text)
    except duckdb.Error:
        return
    if len(statements) != 1:
        raise WriteRefusedError(f"one SQL statement expected, got {len(statements)}")
    kind = statements[0].type.name
    if kind == "EXPLAIN":
        match = _EXPLAIN.match(text)
        if match is None:
            raise WriteRefusedError("only EXPLAIN [ANALYZE] of a SELECT is allowed here")
        return check_reading_sql(con, match["inner"])
    if kind != "SELECT":
        raise WriteRefusedError(f"{kind} statements are refused: this command only reads "
                                "(SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)")
