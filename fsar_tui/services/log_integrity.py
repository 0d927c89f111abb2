"""The operator log judged in the client — what `fsar-tui log verify` and `fsar-tui
security-audit` both run:

1. the chain: every hash recomputed in Python (domain/action_chain.py) from the rows'
   fields, compared with the head the chain trigger keeps (last rows deleted) and with
   an anchor from outside the database when there is one (`log verify`'s file);
2. the protections: the triggers the log rests on exist, run their function, fire as
   created and are enabled; they are the ONLY triggers on the log's tables (any other —
   a BEFORE INSERT returning NULL drops every row silently — is a problem, enabled or
   not); the tables have no rule (`DO INSTEAD NOTHING` drops rows just as silently), no
   row-level security or policy (rows hidden from the verifying role), no inheritance;
   they are owned by the migrating role (the owner of alembic_version, which owns every
   fsar table), which is no fsar role nor a member of one — an owner may disable the
   triggers itself, so a login the panel's users use must not own them; the log's
   functions are the shipped ones (source sha256, SECURITY DEFINER/INVOKER, pinned
   search_path) and PUBLIC may not EXECUTE them; the record of where the encoding starts
   is there and agrees with the re-chained rows.
The database's own `fsar_operator_actions_verify()` is asked only when every function of
the log is the shipped one (a replaced function is never called: it would run as us),
and only as a second opinion.

What this cannot see: a superuser who rewrites rows AND recomputes every later hash AND
the head leaves a consistent chain — only an anchor kept outside the database (another
host, a CI artefact) still knows the old hashes. That includes the simplest case: the
last rows deleted and operator_log_head rewound to the previous seq and hash (the guard
trigger disabled, or session_replication_role = replica, for a moment) — the chain and
the head agree, and only `log verify`'s anchor, if it was taken after those rows, says
the log ends before it. A session with session_replication_role = replica (superuser
only) skips the triggers without disabling them. The checks of 2. read the catalogs as
they are now: a superuser who adds a rule, drops rows through it and removes it again
leaves nothing for them (the head, or the anchor, still shows the missing rows only if
the chain trigger ran for them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import Connection

from fsar_tui.domain.action_chain import Verdict
from fsar_tui.errors import CheckFailed


@dataclass(frozen=True)
class LogIntegrity:
    verdict: Verdict
    problems: list[str] = field(default_factory=list)  # protections missing or replaced
    database_says: int | None = None  # the database's function, when it is the shipped one
    notes: list[str] = field(default_factory=list)  # facts worth printing (a recorded old break)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.problems and self.database_says is None


def check_log(conn: Connection, anchor: tuple[int, str] | None = None, *, ask_database: bool = True) -> LogIntegrity:
    from fsar_tui.db import log_functions, operator_log, privileges
    from fsar_tui.domain.action_chain import verify

    if not operator_log.has_head_table(conn):
        raise CheckFailed(
            "the operator log predates revision 0019 (no operator_log_head): run `fsar-tui migrate`, "
            "which verifies and re-chains it"
        )
    problems = privileges.trigger_problems(conn, log_functions.TRIGGERS)
    problems += privileges.log_table_problems(conn, log_functions.TRIGGERS)
    function_problems = privileges.shipped_function_problems(conn, log_functions.FUNCTIONS)
    problems += function_problems
    notes: list[str] = []
    head = operator_log.head(conn)
    if head is None:
        problems.append("operator_log_head has no row (deleted): the end of the log cannot be checked")
    recorded = {e.encoding: e for e in operator_log.encodings(conn)}
    start = recorded.get(2)
    if start is None:
        problems.append("operator_log_encodings has no record of where encoding 2 starts")
    else:
        if start.rechained_upto and operator_log.legacy_hash_at(conn, start.rechained_upto) != start.legacy_head_hash:
            problems.append(
                f"seq {start.rechained_upto}: its old-encoding hash differs from the one recorded when revision "
                "0019 re-chained the log"
            )
        if start.old_chain_broken_at is not None:
            notes.append(
                f"the old chain was broken at seq {start.old_chain_broken_at} when revision 0019 re-chained it "
                f"({start.at:%Y-%m-%d}): history before that is unverified"
            )
    rows = operator_log.chain_rows(conn)
    try:
        verdict = verify(rows, anchor, head)
    except (psycopg.DataError, OverflowError) as exc:  # e.g. an `at` of 'infinity' written around the trigger
        first = str(exc).splitlines()[0]
        verdict = Verdict(False, 0, 0, "", f"a row cannot be read ({first}): edited around the chain trigger")
    finally:
        rows.close()
    database_says = None
    if ask_database and not function_problems:  # a replaced function (or one it calls) is never run
        database_says = operator_log.database_verdict_sync(conn)
    return LogIntegrity(verdict, problems, database_says, notes)
