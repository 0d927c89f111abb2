"""Rows of statements that always return one.

`one(cur.fetchone())` for an aggregate (`SELECT count(*) …`), an `INSERT … RETURNING`
or a read of server facts: psycopg types `fetchone()` as `Row | None`, and a statement
that cannot come back empty turns None into a bug, said as such, rather than a
`TypeError` about subscripting None. Statements that may find nothing keep their own
`if row is None` branch.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def one(row: T | None) -> T:
    """The row a statement always returns; LookupError when it returned none."""
    if row is None:
        raise LookupError("the statement returned no row")
    return row
