"""A function fsar-tui ships, as the text its migration creates it from.

The migrations (0019, 0020) create each `Fn` with `create_sql()`; `fsar-tui security-audit`
and `log verify` compare the database's `pg_proc.prosrc` with `body` (sha256), so a function
replaced in the database (`CREATE OR REPLACE … RETURN NULL`) is caught by a check that does
not call it. The text here IS what the migrations ran: changing a body means writing a new
revision that re-creates the function, or the audit fails — on purpose.

Every shipped function pins its search_path (a SECURITY DEFINER function that resolved
names through the caller's search_path could be handed a look-alike table or operator).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

SEARCH_PATH = "public, pg_temp"


@dataclass(frozen=True)
class Fn:
    name: str
    params: str  # as declared: "p_ids bigint[], p_reason text"
    signature: str  # identity, types only: "fsar_x(bigint[], text)" (what regprocedure prints)
    returns: str
    body: str
    language: str = "plpgsql"
    volatility: str = "VOLATILE"
    definer: bool = False
    settings: tuple[tuple[str, str], ...] = ()  # SET name = value beyond search_path

    def create_sql(self) -> str:
        security = "SECURITY DEFINER" if self.definer else "SECURITY INVOKER"
        sets = "".join(f" SET {k} = '{v}'" for k, v in self.settings)
        return (
            f"CREATE OR REPLACE FUNCTION {self.name}({self.params}) RETURNS {self.returns}\n"
            f"LANGUAGE {self.language} {self.volatility} {security} SET search_path = {SEARCH_PATH}{sets}\n"
            f"AS $fsar${self.body}$fsar$"
        )

    def drop_sql(self) -> str:
        return f"DROP FUNCTION IF EXISTS {self.signature}"

    @property
    def source_sha256(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()


def replace_sql(old: Sequence[Fn], new: Sequence[Fn], grantee: str) -> list[str]:
    """The statements a revision runs to replace functions whose signatures change: drop
    each of `old`, then create each of `new` with EXECUTE for `grantee` only (PUBLIC's
    default EXECUTE revoked)."""
    out = [fn.drop_sql() for fn in old]
    for fn in new:
        out += [
            fn.create_sql(),
            f"REVOKE ALL ON FUNCTION {fn.signature} FROM PUBLIC",
            f"GRANT EXECUTE ON FUNCTION {fn.signature} TO {grantee}",
        ]
    return out


class Trigger(NamedTuple):
    """A trigger a migration creates, as pg_trigger records it."""

    table: str
    name: str
    function: str  # the function it runs (public schema)
    tgtype: int  # pg_trigger.tgtype: 1 row, 2 before, 4 insert, 8 delete, 16 update, 32 truncate
