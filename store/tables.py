"""Tables the user hands in as files (a corpus manifest in Parquet), read with DuckDB's reader so
no second columnar library is needed; the SQL stays in this package like every other query."""

from __future__ import annotations

from pathlib import Path

import duckdb

from clonebench.core.errors import UserError


def read_parquet(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Column names (lower case) and (row number from 1, record) pairs; a one-line error for a
    file DuckDB cannot read."""
    try:
        rel = duckdb.sql("SELECT * FROM read_parquet(?)", params=[str(path)])
        columns = [c.lower() for c in rel.columns]
        return columns, [(n, dict(zip(columns, row))) for n, row in enumerate(rel.fetchall(), 1)]
    except duckdb.Error as e:
        raise UserError(f"{path}: cannot read the manifest ({str(e).splitlines()[0]})") from None
