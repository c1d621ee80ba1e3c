"""The parser's verdict on each raw answer, kept on the answer's own row (`parse_error`).

Every raw table has the column: NULL for an answer that was read (or not read yet), the reason
for one that could not be. A re-parse after a parser fix clears the reasons of the answers it
now reads, so `WHERE parse_error IS NOT NULL` always lists what still needs a look.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import duckdb

# Enough to name the field and show the value; a body is in the row already.
MAX_CHARS = 2000


def mark_parsed(
    conn: duckdb.DuckDBPyConnection,
    raw_table: str,
    problems: Mapping[int, str],
    clean: Iterable[int] = (),
) -> None:
    """Set parse_error on the answers in `problems` and clear it on the `clean` ones."""
    clean_ids = [i for i in clean if i not in problems]
    if clean_ids:
        conn.execute(
            f"UPDATE {raw_table} SET parse_error = NULL "
            "WHERE id IN (SELECT unnest(?)) AND parse_error IS NOT NULL",
            [clean_ids],
        )
    if problems:
        conn.executemany(
            f"UPDATE {raw_table} SET parse_error = ? WHERE id = ?",
            [[why[:MAX_CHARS], raw_id] for raw_id, why in problems.items()],
        )
