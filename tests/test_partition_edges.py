"""Partitions at the edges (revision 0032, db/partition_functions.py "Limits"): ids near
2^63, a stray id far above the rest, events past year 9999 or before year 1, a legacy
table with such outliers adopted (revision 0029), and an operator asking for too much."""

from __future__ import annotations

from fsar_tui.db import partition_functions as pf
from fsar_tui.db.migrations import downgrade, migrate
from support.sql import q

SOURCES = "SELECT p.proname::text, p.prosrc FROM pg_proc p WHERE p.proname = ANY (%s) ORDER BY 1"


def sources(dsn: str) -> list[tuple[str, str]]:
    return q(dsn, SOURCES, ([fn.name for fn in pf.FUNCTIONS],))


def shipped(functions: tuple[pf.Fn, ...]) -> list[tuple[str, str]]:
    return sorted((fn.name, fn.body) for fn in functions)


def test_0032_replaces_the_functions_and_its_downgrade_puts_0029s_back(db_dsn):
    assert sources(db_dsn) == shipped(pf.FUNCTIONS)
    assert {fn.name for fn in pf.REPLACED_IN_0032} < {fn.name for fn in pf.FUNCTIONS}
    downgrade(db_dsn, "0031_retention_reach")
    assert sources(db_dsn) == shipped(pf.FUNCTIONS_0029) != shipped(pf.FUNCTIONS)
    # The grants survive both ways (CREATE OR REPLACE keeps them).
    granted = "SELECT has_function_privilege('fsar_operator', %s, 'EXECUTE')"
    assert q(db_dsn, granted, (pf.ENSURE.signature,)) == [(True,)]
    migrate(db_dsn)
    assert sources(db_dsn) == shipped(pf.FUNCTIONS)
    assert q(db_dsn, granted, (pf.ENSURE.signature,)) == [(True,)]
    pub = "SELECT count(*) FROM pg_proc WHERE proname = ANY (%s) AND has_function_privilege('public', oid, 'execute')"
    assert q(db_dsn, pub, ([fn.name for fn in pf.FUNCTIONS],)) == [(0,)]
