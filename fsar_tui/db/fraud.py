"""Fraud-flag reads (the rules and their thresholds: domain/fraud.py).

One plan, `_plan`, yields the statements and turns their rows into flags; the async
reader (the ROI screen) and the sync one (CLI, report) only run what it yields.

Where each figure comes from, so that what a check reads follows what is suspicious, not
how many entries the ledger holds:
- velocity per customer and per card: the velocity state (revision 0027; the maths in
  domain/fraud_velocity.py) — the hours in which a subject has at least ⌈k/2⌉ charges,
  through the partial index fraud_velocity_busy_idx — gives stretches that hold every
  burst; only their charges are read back (with their ids), by
  ledger_entries_customer_idx / ledger_entries_card_idx. The domain then recomputes
  the windows exactly on those charges. Rules the state does not serve (a window over an hour, fewer than 5 charges)
  are read by the full scan of db/fraud_scan.py, the algorithm before revision 0027.
- country mismatch: the partial index ledger_entries_mismatch_idx holds just the
  mismatched charges, with their customer: the customers with enough of them in the
  window are counted there (index-only), then only their mismatched charges are read
  (ledger_entries_mismatch_customer_idx), grouped per country pair, newest ids kept.
  Its cost follows the window's mismatched charges (a few bytes of index each), not
  all charges: the rule is about every one of them.
- dispute rate and refund spikes: ledger_daily (per day × kind × currency × idea), the
  window's days plus the refund history before them; then, only for the flags that
  fire, their newest disputes / refunds from ledger_entries, newest first by index
  (ledger_entries_dispute_idea_idx, ledger_entries_refund_dispute_idx) with a LIMIT.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow

from fsar_tui.db import fraud_scan
from fsar_tui.domain import fraud
from fsar_tui.domain import fraud_velocity as velocity
from fsar_tui.domain.fraud import Flag, FraudRules

# The velocity state's busy hours, where a burst could be (the first condition is the
# partial index's predicate, which the planner needs to see).
BUSY_SQL = f"""
    SELECT subject_kind, subject, hour FROM fraud_velocity
    WHERE charges >= {velocity.MIN_BUSY} AND charges >= %(busy)s AND hour >= %(from)s AND hour < %(end)s"""

# The charges of the stretches, per subject kind, by index. OFFSET 0 keeps each lateral
# read a per-stretch index range scan rather than a join against every charge.
STRETCH_CHARGES_SQL = """
    SELECT 'customer', r.subject, e.occurred_at, e.id
    FROM unnest(%(customers)s::text[], %(customers_from)s::timestamptz[], %(customers_to)s::timestamptz[])
         AS r(subject, t0, t1)
    CROSS JOIN LATERAL (
        SELECT occurred_at, id FROM ledger_entries
        WHERE kind = 'revenue' AND customer_id = r.subject AND occurred_at >= r.t0 AND occurred_at < r.t1
        OFFSET 0) e
    UNION ALL
    SELECT 'card', r.subject, e.occurred_at, e.id
    FROM unnest(%(cards)s::text[], %(cards_from)s::timestamptz[], %(cards_to)s::timestamptz[]) AS r(subject, t0, t1)
    CROSS JOIN LATERAL (
        SELECT occurred_at, id FROM ledger_entries
        WHERE kind = 'revenue' AND metadata ? 'card_fingerprint' AND metadata ->> 'card_fingerprint' = r.subject
          AND occurred_at >= r.t0 AND occurred_at < r.t1
        OFFSET 0) e"""

# The customers with enough mismatched charges, counted from the partial index
# ledger_entries_mismatch_idx alone (it holds their time and customer: an index-only
# scan once vacuumed; the predicate repeats the index's, so the planner can use it); then
# only those customers' mismatched charges, by ledger_entries_mismatch_customer_idx.
COUNTRY_MISMATCH_SQL = """
    WITH flagged AS (
        SELECT customer_id FROM ledger_entries
        WHERE kind = 'revenue' AND metadata ->> 'card_country' <> metadata ->> 'ip_country'
          AND occurred_at >= %(start)s AND occurred_at < %(end)s AND customer_id IS NOT NULL
        GROUP BY customer_id HAVING count(*) >= %(min)s),
    m AS (
        SELECT e.id, e.occurred_at, f.customer_id, e.metadata ->> 'card_country' AS card,
               e.metadata ->> 'ip_country' AS ip
        FROM flagged f CROSS JOIN LATERAL (
            SELECT id, occurred_at, metadata FROM ledger_entries
            WHERE kind = 'revenue' AND metadata ->> 'card_country' <> metadata ->> 'ip_country'
              AND customer_id = f.customer_id AND occurred_at >= %(start)s AND occurred_at < %(end)s
            OFFSET 0) e)
    SELECT customer_id, card, ip, count(*),
           (array_agg(id ORDER BY occurred_at DESC, id DESC))[1:%(max)s],
           (array_agg(occurred_at ORDER BY occurred_at DESC, id DESC))[1:%(max)s]
    FROM m GROUP BY customer_id, card, ip"""

DAILY_SQL = """
    SELECT day, idea_id,
           coalesce(sum(entries) FILTER (WHERE kind = 'revenue'), 0)::bigint,
           coalesce(sum(entries) FILTER (WHERE kind = 'dispute'), 0)::bigint,
           coalesce(sum(entries) FILTER (WHERE kind = 'refund'), 0)::bigint
    FROM ledger_daily
    WHERE day >= %(from)s AND day <= %(last)s AND kind IN ('revenue', 'dispute', 'refund')
    GROUP BY day, idea_id"""

HISTORY_SQL = "SELECT min(day) FROM ledger_daily WHERE entries > 0"

# A flagged idea's newest disputes, by ledger_entries_dispute_idea_idx (idea, time, id).
IDEA_DISPUTES_SQL = """
    SELECT 'idea', i.idea, d.occurred_at, d.id
    FROM unnest(%(ideas)s::text[]) AS i(idea) CROSS JOIN LATERAL (
        SELECT occurred_at, id FROM ledger_entries
        WHERE kind = 'dispute' AND idea_id = i.idea AND occurred_at >= %(dstart)s AND occurred_at < %(dend)s
        ORDER BY occurred_at DESC, id DESC LIMIT %(limit)s) d"""

FLAG_ENTRIES_SQL = """
    SELECT id, occurred_at, kind, amount_minor, currency, customer_id, idea_id, metadata
    FROM ledger_entries WHERE id = ANY(%s::bigint[])"""


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return start, end


def _entries_statement(
    ideas: list[str], overall: bool, days: list[date], first: date, last: date, limit: int, scan: bool
) -> tuple[str, dict[str, Any]]:
    """The newest disputes of the flagged ideas (or of all) over the window's days, and
    the newest refunds of the spiking days: rows (part, subject, occurred_at, id)."""
    parts = []
    if ideas:
        parts.append(fraud_scan.IDEA_DISPUTES_SQL if scan else IDEA_DISPUTES_SQL)
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


def _velocity_plan(start: datetime, end: datetime, rules: FraudRules, scan: bool) -> Plan:
    """The velocity flags: from the state (revision 0027) or, `scan` or rules it does not
    serve, from every charge of the window."""
    if scan or not velocity.served(rules):
        window = {"start": start, "end": end, "k1": rules.velocity_charges - 1, "window": rules.velocity_window}
        customers = yield fraud_scan.VELOCITY_CUSTOMER_SQL, window
        cards = yield fraud_scan.VELOCITY_CARD_SQL, window
        return fraud.velocity_flags(fraud.VELOCITY_CUSTOMER, customers, rules) + fraud.velocity_flags(
            fraud.VELOCITY_CARD, cards, rules
        )
    busy = yield BUSY_SQL, {"busy": velocity.busy_threshold(rules), "from": velocity.first_hour(start), "end": end}
    stretches = velocity.ranges(((kind, subject, hour) for kind, subject, hour in busy), rules, start, end)
    if not stretches:
        return []
    params: dict[str, Any] = {}
    for kind, name in ((velocity.CUSTOMER, "customers"), (velocity.CARD, "cards")):
        mine = [s for s in stretches if s[0] == kind]
        params[name] = [s[1] for s in mine]
        params[f"{name}_from"] = [s[2] for s in mine]
        params[f"{name}_to"] = [s[3] for s in mine]
    charges = yield STRETCH_CHARGES_SQL, params
    flags: list[Flag] = []
    for kind, rule in velocity.RULE_OF.items():
        flags += fraud.velocity_flags(rule, [(s, at, i) for k, s, at, i in charges if k == kind], rules)
    return flags


def _plan(start: datetime, end: datetime, rules: FraudRules, scan: bool = False) -> Plan:
    """Yields (sql, params), receives each statement's rows, returns the sorted flags.
    `scan`: the reads before revision 0027 (every charge of the window; the bench's and
    the equivalence test's baseline)."""
    first, last = fraud.window_days(start, end)
    flags: list[Flag] = yield from _velocity_plan(start, end, rules, scan)
    mismatches = yield (
        fraud_scan.COUNTRY_MISMATCH_SQL if scan else COUNTRY_MISMATCH_SQL,
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
        rows = yield _entries_statement(ideas, overall, days, first, last, rules.max_entries, scan)
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
    return _run_sync(conn, _plan(start, end, rules))


def fraud_flags_scan_sync(
    conn: Connection, start: datetime, end: datetime, rules: FraudRules = FraudRules()
) -> list[Flag]:
    """The same flags read as before revision 0027 (every charge of the window): the
    bench's baseline and the equivalence test's reference."""
    return _run_sync(conn, _plan(start, end, rules, scan=True))


def _run_sync(conn: Connection, plan: Plan) -> list[Flag]:
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
