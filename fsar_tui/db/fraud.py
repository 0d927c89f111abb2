"""Fraud-flag reads (the rules and their thresholds: domain/fraud.py).

One plan, `_plan`, yields the statements and turns their rows into flags; the async
reader (the ROI screen) and the sync one (CLI, report) only run what it yields.

Where each figure comes from, so a window of 30 days over a million entries stays cheap:
- velocity per customer: the window's charges by customer and time from the partial
  index ledger_entries_customer_idx (revenue only; an index-only scan once the table is
  vacuumed), a `lead()` over it to find the starts of dense runs, the runs merged into
  bursts, and only the bursts' charges read back (with their ids) through the same
  index. The domain then recomputes the windows exactly on those charges.
- velocity per card: the same over metadata ->> 'card_fingerprint', which has no index:
  the window's charges that carry one are read from the table (heap) in one pass.
- country mismatch: the partial index ledger_entries_country_mismatch_idx holds just
  the mismatched charges; grouped per customer and country pair, newest ids kept.
- dispute rate and refund spikes: ledger_daily (per day × kind × currency × idea), the
  window's days plus the refund history before them; then, only for the flags that
  fire, their newest disputes / refunds from ledger_entries.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow

from fsar_tui.domain import fraud
from fsar_tui.domain.fraud import Flag, FraudRules

# Starts of runs of k charges less than a window apart (lead over the subject's charges
# in time order), merged into bursts (a start after the previous run's end opens a new
# one), then the bursts' charges with their ids. OFFSET 0 keeps the lateral read a
# per-burst index range scan rather than a join against every charge.
VELOCITY_CUSTOMER_SQL = """
    WITH w AS (
        SELECT customer_id AS subject, occurred_at AS t0,
               lead(occurred_at, %(k1)s) OVER (PARTITION BY customer_id ORDER BY occurred_at) AS t1
        FROM ledger_entries
        WHERE kind = 'revenue' AND customer_id IS NOT NULL AND occurred_at >= %(start)s AND occurred_at < %(end)s),
    hits AS (
        SELECT subject, t0, t1, t0 > lag(t1) OVER (PARTITION BY subject ORDER BY t0, t1) IS NOT FALSE AS opens
        FROM w WHERE t1 < t0 + %(window)s),
    islands AS (
        SELECT subject, t0, t1, count(*) FILTER (WHERE opens) OVER (PARTITION BY subject ORDER BY t0, t1
                                                                    ROWS UNBOUNDED PRECEDING) AS island
        FROM hits),
    bursts AS (SELECT subject, min(t0) AS t0, max(t1) AS t1 FROM islands GROUP BY subject, island)
    SELECT b.subject, e.occurred_at, e.id
    FROM bursts b CROSS JOIN LATERAL (
        SELECT e.occurred_at, e.id FROM ledger_entries e
        WHERE e.kind = 'revenue' AND e.customer_id = b.subject AND e.occurred_at >= b.t0 AND e.occurred_at <= b.t1
        OFFSET 0) e"""

# No index on the fingerprint: one pass over the window's charges that have one, the
# members of dense runs marked there (a charge is in a run when one of the k runs that
# can hold it starts at most k-1 charges before it).
VELOCITY_CARD_SQL = """
    SELECT subject, occurred_at, id FROM (
        SELECT subject, occurred_at, id,
               bool_or(starts) OVER (PARTITION BY subject ORDER BY occurred_at, id
                                     ROWS BETWEEN %(k1)s PRECEDING AND CURRENT ROW) AS member
        FROM (SELECT metadata ->> 'card_fingerprint' AS subject, occurred_at, id,
                     lead(occurred_at, %(k1)s) OVER (PARTITION BY metadata ->> 'card_fingerprint'
                                                     ORDER BY occurred_at, id) < occurred_at + %(window)s AS starts
              FROM ledger_entries
              WHERE kind = 'revenue' AND metadata ? 'card_fingerprint'
                AND metadata ->> 'card_fingerprint' IS NOT NULL
                AND occurred_at >= %(start)s AND occurred_at < %(end)s) s) m
    WHERE member"""

# The predicate repeats the partial index's, so the planner can use it.
COUNTRY_MISMATCH_SQL = """
    WITH m AS (
        SELECT id, occurred_at, customer_id, metadata ->> 'card_country' AS card, metadata ->> 'ip_country' AS ip
        FROM ledger_entries
        WHERE kind = 'revenue' AND metadata ->> 'card_country' <> metadata ->> 'ip_country'
          AND occurred_at >= %(start)s AND occurred_at < %(end)s AND customer_id IS NOT NULL),
    flagged AS (SELECT customer_id FROM m GROUP BY customer_id HAVING count(*) >= %(min)s)
    SELECT customer_id, card, ip, count(*),
           (array_agg(id ORDER BY occurred_at DESC, id DESC))[1:%(max)s],
           (array_agg(occurred_at ORDER BY occurred_at DESC, id DESC))[1:%(max)s]
    FROM m JOIN flagged USING (customer_id)
    GROUP BY customer_id, card, ip"""

DAILY_SQL = """
    SELECT day, idea_id,
           coalesce(sum(entries) FILTER (WHERE kind = 'revenue'), 0)::bigint,
           coalesce(sum(entries) FILTER (WHERE kind = 'dispute'), 0)::bigint,
           coalesce(sum(entries) FILTER (WHERE kind = 'refund'), 0)::bigint
    FROM ledger_daily
    WHERE day >= %(from)s AND day <= %(last)s AND kind IN ('revenue', 'dispute', 'refund')
    GROUP BY day, idea_id"""

HISTORY_SQL = "SELECT min(day) FROM ledger_daily WHERE entries > 0"

FLAG_ENTRIES_SQL = """
    SELECT id, occurred_at, kind, amount_minor, currency, customer_id, idea_id, metadata
    FROM ledger_entries WHERE id = ANY(%s::bigint[])"""


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return start, end


def _entries_statement(
    ideas: list[str], overall: bool, days: list[date], first: date, last: date, limit: int
) -> tuple[str, dict[str, Any]]:
    """The newest disputes of the flagged ideas (or of all) over the window's days, and
    the newest refunds of the spiking days: rows (part, subject, occurred_at, id)."""
    parts = []
    if ideas:
        parts.append("""
            SELECT 'idea', subject, occurred_at, id FROM (
                SELECT idea_id AS subject, occurred_at, id,
                       row_number() OVER (PARTITION BY idea_id ORDER BY occurred_at DESC, id DESC) AS rn
                FROM ledger_entries
                WHERE kind = 'dispute' AND idea_id = ANY(%(ideas)s::text[])
                  AND occurred_at >= %(dstart)s AND occurred_at < %(dend)s) d
            WHERE rn <= %(limit)s""")
    if overall:
        parts.append("""
            SELECT * FROM (
                SELECT 'all', '', occurred_at, id FROM ledger_entries
                WHERE kind = 'dispute' AND occurred_at >= %(dstart)s AND occurred_at < %(dend)s
                ORDER BY occurred_at DESC, id DESC LIMIT %(limit)s) a""")
    if days:
        parts.append("""
            SELECT 'day', to_char(d.day, 'YYYY-MM-DD'), r.occurred_at, r.id
            FROM unnest(%(days)s::date[]) AS d(day) CROSS JOIN LATERAL (
                SELECT occurred_at, id FROM ledger_entries
                WHERE kind = 'refund' AND occurred_at >= d.day::timestamp AT TIME ZONE 'UTC'
                  AND occurred_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
                ORDER BY occurred_at DESC, id DESC LIMIT %(limit)s) r""")
    dstart, dend = _bounds(first, last)
    return " UNION ALL ".join(parts), {"ideas": ideas, "days": days, "dstart": dstart, "dend": dend, "limit": limit}


Plan = Generator[tuple[str, dict[str, Any]], list[TupleRow], list[Flag]]


def _plan(start: datetime, end: datetime, rules: FraudRules) -> Plan:
    """Yields (sql, params), receives each statement's rows, returns the sorted flags."""
    first, last = fraud.window_days(start, end)
    window = {"start": start, "end": end, "k1": rules.velocity_charges - 1, "window": rules.velocity_window}
    flags: list[Flag] = []
    flags += fraud.velocity_flags(fraud.VELOCITY_CUSTOMER, (yield VELOCITY_CUSTOMER_SQL, window), rules)
    flags += fraud.velocity_flags(fraud.VELOCITY_CARD, (yield VELOCITY_CARD_SQL, window), rules)
    mismatches = yield (
        COUNTRY_MISMATCH_SQL,
        {"start": start, "end": end, "min": rules.mismatch_charges, "max": rules.max_entries},
    )
    flags += fraud.country_mismatch_flags(mismatches, rules)

    history_from = (yield HISTORY_SQL, {})[0][0]
    daily_rows = yield DAILY_SQL, {"from": first - timedelta(days=rules.refund_history_days), "last": last}
    totals = [(idea, charges, disputes) for day, idea, charges, disputes, _ in daily_rows if day >= first]
    refunds: dict[date, int] = {}
    for day, _, _, _, n in daily_rows:
        refunds[day] = refunds.get(day, 0) + n
    disputes = fraud.dispute_rate_flags(totals, first, last, rules)
    spikes = fraud.refund_spike_flags(refunds, first, last, history_from, rules)

    if (disputes or spikes) and rules.max_entries > 0:
        ideas = [f.subject for f in disputes if f.subject != fraud.ALL_IDEAS]
        overall = any(f.subject == fraud.ALL_IDEAS for f in disputes)
        days = [date.fromisoformat(f.subject) for f in spikes]
        rows = yield _entries_statement(ideas, overall, days, first, last, rules.max_entries)
        ids: dict[tuple[str, str], list[int]] = {}
        for part, subject, _, entry_id in sorted(rows, key=lambda r: (r[2], r[3]), reverse=True):
            ids.setdefault((part, subject), []).append(entry_id)
        disputes = [
            replace(
                f, entry_ids=tuple(ids.get(("all", "") if f.subject == fraud.ALL_IDEAS else ("idea", f.subject), ()))
            )
            for f in disputes
        ]
        spikes = [replace(f, entry_ids=tuple(ids.get(("day", f.subject), ()))) for f in spikes]
    return fraud.sort_flags(flags + disputes + spikes)


class FlagEntry(NamedTuple):
    """A ledger entry behind a fraud flag (a typed row that still unpacks as a tuple)."""

    id: int
    occurred_at: datetime
    kind: str
    amount_minor: int
    currency: str
    customer_id: str | None
    idea_id: str | None
    metadata: dict[str, Any] | None


def _entries_in_order(rows: list[TupleRow], ids: list[int]) -> list[FlagEntry]:
    by_id = {row[0]: FlagEntry(*row) for row in rows}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


# The readers never prepare: psycopg prepares a statement after 5 runs, and after 5 more
# the server may switch to a generic plan, blind to how wide the window is; on a pooled
# connection that doubled the 30-day velocity read. Planning afresh costs a millisecond.


async def fraud_flags(
    conn: AsyncConnection, start: datetime, end: datetime, rules: FraudRules = FraudRules()
) -> list[Flag]:
    """Flags for the window [start, end) (timezone-aware), most severe first."""
    plan = _plan(start, end, rules)
    try:
        statement = next(plan)
        while True:
            cur = await conn.execute(*statement, prepare=False)
            statement = plan.send(await cur.fetchall())
    except StopIteration as done:
        flags: list[Flag] = done.value
        return flags


def fraud_flags_sync(conn: Connection, start: datetime, end: datetime, rules: FraudRules = FraudRules()) -> list[Flag]:
    plan = _plan(start, end, rules)
    try:
        statement = next(plan)
        while True:
            statement = plan.send(conn.execute(*statement, prepare=False).fetchall())
    except StopIteration as done:
        flags: list[Flag] = done.value
        return flags


async def flag_entries(conn: AsyncConnection, ids: list[int]) -> list[FlagEntry]:
    """(id, occurred_at, kind, amount_minor, currency, customer_id, idea_id, metadata) of
    the given entries, in the order given (entries since deleted are left out)."""
    if not ids:
        return []
    cur = await conn.execute(FLAG_ENTRIES_SQL, (list(ids),))
    return _entries_in_order(await cur.fetchall(), list(ids))


def flag_entries_sync(conn: Connection, ids: list[int]) -> list[FlagEntry]:
    if not ids:
        return []
    return _entries_in_order(conn.execute(FLAG_ENTRIES_SQL, (list(ids),)).fetchall(), list(ids))
