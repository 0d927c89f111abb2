"""Duration-profile reads over the rollups (revision 0013), and the backfill driver.

The profile query adds up the rollup rows that tile the window (domain.rollup_windows)
plus the samples the trigger has not folded yet, grouped by the requested dimensions,
metric and bucket; domain.profiles turns that into percentiles. Its cost depends on the
number of (block × bucket) rows — a few thousand — not on the number of tasks. The
type × model profile (the screen's main table and the CLI's default) reads the block
sketches of revision 0015 instead: one row of arrays per block and group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection, Connection, sql
from psycopg.rows import TupleRow

from fsar_tui.db import roi as roi_queries
from fsar_tui.db.rows import one
from fsar_tui.domain import profiles, rollup_windows
from fsar_tui.domain.profile_money import money_days
from fsar_tui.domain.roi import CostRow

DIMENSIONS = {"type": "task_type", "model": "ai_model", "rollout": "rollout_revision_id"}


# The window's pieces as the database holds them (rollup_windows.as_stored, from
# rollup_state.sketched_until read just before; it only moves forward, so pieces it
# calls materialised or sketched stay so) — arrays rather than SQL, so the planner sees
# a handful of pieces and probes the rollups' index for each.
PIECES_CTE = """
    pieces AS (SELECT * FROM unnest(%(grains)s::smallint[], %(starts)s::timestamptz[], %(sketched)s::boolean[])
                              AS c(grain, start, sketched))"""


def profile_sql(by: tuple[str, ...]) -> str:
    # Plain group columns (not an array key) and int4 counts (sum(int8) is numeric):
    # the aggregate is most of the query's time. Without the rollout dimension the
    # compact rows (revision -1) are read: a third as many.
    cols = ", ".join(DIMENSIONS[d] for d in by)
    revisions = "r.rollout_revision_id >= 0" if "rollout" in by else "r.rollout_revision_id = -1"
    return f"""
        WITH {PIECES_CTE},
        rows AS (
            SELECT r.task_type, r.ai_model, r.rollout_revision_id, r.outcome, r.metric, r.bucket, r.currency,
                   r.n::integer AS n, r.total
            FROM duration_rollups r JOIN pieces c ON r.grain = c.grain AND r.start = c.start
            WHERE {revisions}
            UNION ALL
            SELECT s.task_type, s.ai_model, s.rollout_revision_id, s.outcome, m.metric, m.bucket, m.currency,
                   s.n::integer, s.n * m.value
            FROM task_duration_samples s CROSS JOIN LATERAL fsar_sample_metrics(s) m
            WHERE s.finished_at >= %(start)s AND s.finished_at < %(end)s)
        SELECT {cols}, outcome, metric, bucket, currency, sum(n), sum(total)
        FROM rows GROUP BY {cols}, outcome, metric, bucket, currency HAVING sum(n) <> 0"""


# The type × model profile (revision 0015): block sketches (arrays) for the closed
# day/block pieces, plus open blocks (today), hour pieces and unfolded samples summed
# row by row — one statement,
# so one snapshot (a fold committing between two reads would count samples twice or
# not at all). Rows: (is_sketch, type, model, outcome, metric, currency, buckets, counts, total).
SKETCH_SQL = f"""
    WITH {PIECES_CTE},
    fine AS (
        SELECT r.task_type, r.ai_model, r.outcome, r.metric, r.bucket, r.currency, r.n::integer AS n, r.total
        FROM pieces c JOIN duration_rollups r ON r.grain = c.grain AND r.start = c.start
        WHERE NOT c.sketched AND r.rollout_revision_id = -1
        UNION ALL  -- sketched blocks whose sketch a late change made stale: their rows
        SELECT r.task_type, r.ai_model, r.outcome, r.metric, r.bucket, r.currency, r.n::integer, r.total
        FROM pieces c
        JOIN (SELECT DISTINCT grain, start, task_type, ai_model FROM duration_sketch_dirty) x
             ON x.grain = c.grain AND x.start = c.start
        JOIN duration_rollups r ON r.grain = x.grain AND r.start = x.start AND r.rollout_revision_id = -1
                               AND r.task_type = x.task_type AND r.ai_model = x.ai_model
        WHERE c.sketched
        UNION ALL
        SELECT s.task_type, s.ai_model, CASE WHEN m.metric = 2 THEN s.outcome ELSE '*' END, m.metric, m.bucket,
               m.currency, s.n::integer, s.n * m.value
        FROM task_duration_samples s CROSS JOIN LATERAL fsar_sample_metrics(s) m
        WHERE s.finished_at >= %(start)s AND s.finished_at < %(end)s
          AND (m.metric = 2 OR s.outcome IN ('succeeded', 'failed')))
    SELECT k.task_type, k.ai_model, k.outcome, k.metric, k.currency, k.buckets, k.counts, k.total
    FROM duration_sketches k JOIN pieces c ON k.grain = c.grain AND k.start = c.start
    WHERE c.sketched AND NOT EXISTS (SELECT 1 FROM duration_sketch_dirty x
                                     WHERE x.grain = k.grain AND x.start = k.start
                                       AND x.task_type = k.task_type AND x.ai_model = k.ai_model)
    UNION ALL
    SELECT task_type, ai_model, outcome, metric, currency, array_agg(bucket), array_agg(n), sum(total)
    FROM (SELECT task_type, ai_model, outcome, metric, bucket, currency, sum(n)::bigint AS n, sum(total) AS total
          FROM fine GROUP BY task_type, ai_model, outcome, metric, bucket, currency HAVING sum(n) <> 0) summed
    GROUP BY task_type, ai_model, outcome, metric, currency"""


async def type_model_profiles(
    conn: AsyncConnection, start: datetime, end: datetime, now: datetime
) -> list[profiles.Profile]:
    """Profiles per task_type × ai_model over [start, end) — the screen's and the CLI's main read."""
    until = one(await (await conn.execute(SKETCHED_UNTIL_SQL)).fetchone())[0]
    cur = await conn.cursor(binary=True).execute(SKETCH_SQL, _params(start, end, now, until))
    return profiles.build_from_sketches(await cur.fetchall())


def type_model_profiles_sync(conn: Connection, start: datetime, end: datetime, now: datetime) -> list[profiles.Profile]:
    until = one(conn.execute(SKETCHED_UNTIL_SQL).fetchone())[0]
    return profiles.build_from_sketches(
        conn.cursor(binary=True).execute(SKETCH_SQL, _params(start, end, now, until)).fetchall()
    )


async def load_profiles(
    conn: AsyncConnection, start: datetime, end: datetime, now: datetime, by: tuple[str, ...] = ("type", "model")
) -> list[profiles.Profile]:
    if by == ("type", "model"):
        return await type_model_profiles(conn, start, end, now)
    return profiles.build(await profile_rows(conn, start, end, now, by))


def load_profiles_sync(
    conn: Connection, start: datetime, end: datetime, now: datetime, by: tuple[str, ...] = ("type", "model")
) -> list[profiles.Profile]:
    if by == ("type", "model"):
        return type_model_profiles_sync(conn, start, end, now)
    return profiles.build(profile_rows_sync(conn, start, end, now, by))


async def group_series(
    conn: AsyncConnection, start: datetime, end: datetime, now: datetime, key: profiles.Key, hourly: bool
) -> list[TupleRow]:
    """(slot start, bucket, n) of one type × model's run times, per hour (hour rows are
    kept four days) or per day, for the p90-over-time chart."""
    grain = rollup_windows.HOUR if hourly else 0
    first = rollup_windows.floor_hour(start) if hourly else rollup_windows.floor_day(start)
    cur = await conn.execute(
        """SELECT slot, bucket, sum(n)::bigint FROM (
               SELECT r.start AS slot, r.bucket, r.n FROM duration_rollups r
               WHERE r.grain = %(grain)s AND r.start >= %(first)s AND r.start < %(end)s
                 AND r.rollout_revision_id = -1 AND r.outcome = '*'
                 AND r.task_type = %(type)s AND r.ai_model = %(model)s AND r.metric = 0
               UNION ALL
               SELECT date_trunc(%(unit)s, s.finished_at, 'UTC'), m.bucket, s.n
               FROM task_duration_samples s CROSS JOIN LATERAL fsar_sample_metrics(s) m
               WHERE s.finished_at >= %(first)s AND s.finished_at < %(end)s AND m.metric = 0
                 AND s.task_type = %(type)s AND s.ai_model = %(model)s AND s.outcome IN ('succeeded', 'failed')) x
           GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2""",
        {
            "grain": grain,
            "first": first,
            "end": end,
            "type": key[0],
            "model": key[1],
            "unit": "hour" if hourly else "day",
        },
    )
    return await cur.fetchall()


def _keyed(rows: list[TupleRow], by: tuple[str, ...]) -> list[TupleRow]:
    """(key tuple, outcome, metric, bucket, currency, n, total) from the query's rows; the
    rollout revision id becomes text like the other dimensions."""
    k = len(by)
    if "rollout" in by:
        return [(tuple(str(v) for v in row[:k]), *row[k:]) for row in rows]
    return [(row[:k], *row[k:]) for row in rows]


SKETCHED_UNTIL_SQL = "SELECT sketched_until FROM rollup_state"


def _params(start: datetime, end: datetime, now: datetime, sketched_until: date) -> dict[str, Any]:
    cover = rollup_windows.cover(start, end, now)
    effective = cover[0][1] if cover else start
    pieces = rollup_windows.as_stored(cover, sketched_until)
    return {
        "grains": [g for g, _, _ in pieces],
        "starts": [s for _, s, _ in pieces],
        "sketched": [k for _, _, k in pieces],
        "start": effective,
        "end": end,
    }


def _statement(
    by: tuple[str, ...], start: datetime, end: datetime, now: datetime, sketched_until: date
) -> tuple[str, dict[str, Any]]:
    if not by:
        raise ValueError("profiles need at least one dimension")
    return profile_sql(by), _params(start, end, now, sketched_until)


async def profile_rows(
    conn: AsyncConnection, start: datetime, end: datetime, now: datetime, by: tuple[str, ...] = ("type", "model")
) -> list[TupleRow]:
    until = one(await (await conn.execute(SKETCHED_UNTIL_SQL)).fetchone())[0]
    cur = await conn.execute(*_statement(by, start, end, now, until))
    return _keyed(await cur.fetchall(), by)


def profile_rows_sync(
    conn: Connection, start: datetime, end: datetime, now: datetime, by: tuple[str, ...] = ("type", "model")
) -> list[TupleRow]:
    until = one(conn.execute(SKETCHED_UNTIL_SQL).fetchone())[0]
    return _keyed(conn.execute(*_statement(by, start, end, now, until)).fetchall(), by)


def backfill_state(conn: Connection) -> tuple[int, int]:
    """(backfilled_upto, backfill_target)."""
    upto, target = one(conn.execute("SELECT backfilled_upto, backfill_target FROM rollup_state").fetchone())
    return upto, target


def _bounded_by_size(conn: Connection) -> None:
    """For the rest of the current transaction: no statement timeout (the work is bounded
    by its batch size, not by the interactive timeout), but no lock waited for longer than
    the statement timeout would have (lock_timeout takes its value): a table held locked
    elsewhere fails `profile --backfill` in the usual time ("lock timeout") instead of
    stalling it. Transaction-local, so behind a pooler nothing outlives the transaction."""
    conn.execute("SELECT set_config('lock_timeout', current_setting('statement_timeout'), true)")
    conn.execute("SET LOCAL statement_timeout = 0")


def backfill_batch(conn: Connection, batch_size: int) -> int:
    """One batch in its own transaction; returns the new cursor. A batch is bounded by
    its size, not by the interactive statement timeout (its lock waits are)."""
    with conn.transaction():
        _bounded_by_size(conn)
        cursor: int = one(conn.execute("SELECT fsar_backfill_rollups(%s)", (batch_size,)).fetchone())[0]
        return cursor


def vacuum_rollups(conn: Connection) -> None:
    """After a bulk fold (seed, backfill): clear the folded samples' dead rows now rather
    than when autovacuum gets to them (needs an autocommit connection). No statement
    timeout, but the statement timeout as lock_timeout, as _bounded_by_size (session SETs,
    reset after: a pooled connection keeps them itself, see db/pooler.py)."""
    limit = one(conn.execute("SHOW statement_timeout").fetchone())[0]
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(limit)))
    conn.execute("SET statement_timeout = 0")
    try:
        conn.execute(
            "VACUUM ANALYZE task_duration_samples, task_count_deltas, duration_rollups, duration_sketches, "
            "cost_rollups, ledger_entries, ledger_daily, fraud_velocity"
        )
    finally:
        conn.execute("RESET statement_timeout")
        conn.execute("RESET lock_timeout")


def count_loaded(conn: Connection, first_id: int, last_id: int) -> None:
    """For the bulk loader, whose transaction skips the trigger: its ids are new (above
    the backfill target), so the rule counts every finished task it loaded."""
    conn.execute(
        "INSERT INTO task_duration_samples SELECT (fsar_task_sample(t, 1::smallint)).* FROM execution_tasks t "
        "WHERE id BETWEEN %s AND %s AND status IN ('succeeded', 'failed', 'cancelled')",
        (first_id, last_id),
    )
    conn.execute("SELECT fsar_fold_duration_samples()")
    conn.execute("SELECT fsar_rebuild_sketches()")


def rebuild_sketches(conn: Connection) -> None:
    """After a bulk change of history (backfill): close blocks and rebuild noted sketches now
    rather than on the next fold."""
    with conn.transaction():
        _bounded_by_size(conn)
        conn.execute("SELECT fsar_rebuild_sketches()")


# Rollups (one grain tiles all time; both the detailed and the compact rows) + unfolded
# samples vs a recount from the tasks the rules count; rows where they differ. A full
# scan: for checks and tests.
ROLLUP_DRIFT_SQL = """
    WITH st AS (SELECT * FROM rollup_state),
    finished AS MATERIALIZED (
        SELECT (fsar_task_sample(t, 1::smallint)).*
        FROM execution_tasks t CROSS JOIN st
        WHERE t.status IN ('succeeded', 'failed', 'cancelled')
          AND (t.id > st.backfill_target OR t.finished_at >= st.epoch OR t.id <= st.backfilled_upto)),
    counted_detail AS (
        SELECT s.task_type, s.ai_model, s.rollout_revision_id AS rev, s.outcome, m.metric, m.bucket, m.currency,
               count(*) AS n, sum(m.value) AS total
        FROM finished s CROSS JOIN LATERAL fsar_sample_metrics(s::task_duration_samples) m
        GROUP BY 1, 2, 3, 4, 5, 6, 7),
    counted AS (
        SELECT * FROM counted_detail
        UNION ALL
        SELECT task_type, ai_model, -1, CASE WHEN metric = 2 THEN outcome ELSE '*' END, metric, bucket, currency,
               sum(n), sum(total)
        FROM counted_detail WHERE metric = 2 OR outcome IN ('succeeded', 'failed')
        GROUP BY 1, 2, 3, 4, 5, 6, 7),
    sample_rows AS (
        SELECT s.task_type, s.ai_model, s.rollout_revision_id AS rev, s.outcome, m.metric, m.bucket, m.currency,
               s.n, s.n * m.value AS total
        FROM task_duration_samples s CROSS JOIN LATERAL fsar_sample_metrics(s) m),
    kept AS (
        SELECT task_type, ai_model, rev, outcome, metric, bucket, currency, sum(n) AS n, sum(total) AS total
        FROM (SELECT task_type, ai_model, rollout_revision_id AS rev, outcome, metric, bucket, currency, n, total
              FROM duration_rollups WHERE grain = 0
              UNION ALL
              SELECT * FROM sample_rows
              UNION ALL
              SELECT task_type, ai_model, -1, CASE WHEN metric = 2 THEN outcome ELSE '*' END, metric, bucket,
                     currency, n, total
              FROM sample_rows WHERE metric = 2 OR outcome IN ('succeeded', 'failed')) x
        GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(n) <> 0)
    SELECT task_type, ai_model, rev, outcome, metric, bucket, currency, counted.n, kept.n, counted.total, kept.total
    FROM counted FULL JOIN kept USING (task_type, ai_model, rev, outcome, metric, bucket, currency)
    WHERE counted.n IS DISTINCT FROM kept.n
       OR abs(coalesce(counted.total, 0) - coalesce(kept.total, 0)) > 1e-6 * greatest(1, abs(counted.total))"""

# Sketches (revision 0015) of sketched blocks vs the compact rollup rows they mirror
# (blocks noted dirty are read from their rows and skipped here); rows that differ.
SKETCH_DRIFT_SQL = """
    WITH su AS (SELECT sketched_until::timestamp AT TIME ZONE 'UTC' AS t FROM rollup_state),
    clean AS (
        SELECT k.* FROM duration_sketches k
        WHERE NOT EXISTS (SELECT 1 FROM duration_sketch_dirty x WHERE x.grain = k.grain AND x.start = k.start
                          AND x.task_type = k.task_type AND x.ai_model = k.ai_model)),
    kept AS (
        SELECT k.grain, k.start, k.task_type, k.ai_model, k.outcome, k.metric, k.currency, b.bucket, b.n
        FROM clean k CROSS JOIN LATERAL unnest(k.buckets, k.counts) AS b(bucket, n)),
    source AS (
        SELECT r.grain, r.start, r.task_type, r.ai_model, r.outcome, r.metric, r.currency, r.bucket, r.n
        FROM duration_rollups r CROSS JOIN su
        WHERE r.rollout_revision_id = -1 AND r.grain >= 0 AND r.n <> 0
          AND r.start + make_interval(days => 1 << r.grain) <= su.t
          AND NOT EXISTS (SELECT 1 FROM duration_sketch_dirty x WHERE x.grain = r.grain AND x.start = r.start
                          AND x.task_type = r.task_type AND x.ai_model = r.ai_model)),
    source_rows AS (
        SELECT r.* FROM duration_rollups r CROSS JOIN su
        WHERE r.rollout_revision_id = -1 AND r.grain >= 0 AND r.n <> 0
          AND r.start + make_interval(days => 1 << r.grain) <= su.t),
    totals AS (
        SELECT k.grain, k.start, k.task_type, k.ai_model, k.outcome, k.metric, k.currency
        FROM clean k
        JOIN (SELECT grain, start, task_type, ai_model, outcome, metric, currency, sum(total) AS total
              FROM source_rows GROUP BY 1, 2, 3, 4, 5, 6, 7) r
             USING (grain, start, task_type, ai_model, outcome, metric, currency)
        WHERE abs(k.total - r.total) > 1e-6 * greatest(1, abs(r.total)))
    SELECT grain, start, task_type, ai_model, outcome, metric, currency, bucket, kept.n, source.n
    FROM kept FULL JOIN source USING (grain, start, task_type, ai_model, outcome, metric, currency, bucket)
    WHERE kept.n IS DISTINCT FROM source.n
    UNION ALL
    SELECT grain, start, task_type, ai_model, outcome, metric, currency, -1::smallint, NULL, NULL FROM totals"""

# Materialised 2–32-day block rows vs the sum of their day rows, and no rows for blocks
# not materialised yet (revision 0015); rows that differ.
BLOCK_DRIFT_SQL = """
    WITH su AS (SELECT sketched_until - date '1970-01-01' AS day FROM rollup_state),
    days AS (
        SELECT g.grain, timestamptz '1970-01-01 00:00:00+00'
                        + make_interval(days => d.day - d.day % (1 << g.grain)) AS start,
               d.task_type, d.ai_model, d.rollout_revision_id, d.outcome, d.metric, d.bucket, d.currency,
               sum(d.n) AS n
        FROM (SELECT (start AT TIME ZONE 'UTC')::date - date '1970-01-01' AS day, * FROM duration_rollups
              WHERE grain = 0) d
        CROSS JOIN generate_series(1, 5) AS g(grain) CROSS JOIN su
        WHERE d.day - d.day % (1 << g.grain) + (1 << g.grain) <= su.day
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 HAVING sum(d.n) <> 0),
    blocks AS (SELECT grain, start, task_type, ai_model, rollout_revision_id, outcome, metric, bucket, currency, n
               FROM duration_rollups WHERE grain >= 1 AND n <> 0)
    SELECT * FROM days FULL JOIN blocks
        USING (grain, start, task_type, ai_model, rollout_revision_id, outcome, metric, bucket, currency)
    WHERE days.n IS DISTINCT FROM blocks.n"""


# -- money beside the profiles: the cost rollups (revision 0014/0024), as the ROI screen --


def money_window(window_s: int, now: datetime) -> tuple[date, date]:
    """The whole UTC days whose money stands beside a profile window of `window_s` (the ROI
    screen's window of as many days)."""
    return roi_queries.window_days(money_days(window_s), now.date())


def _cost_rows(rows: list[TupleRow]) -> list[CostRow]:
    """The per-group rows of roi.COSTS_SQL (not its per-day ones) as CostRows."""
    return [CostRow(*row[2:]) for row in rows if not row[0]]


async def money_rows(conn: AsyncConnection, first: date, last: date) -> list[CostRow]:
    """Task cost sums per type × model × rollout × idea × currency over whole UTC days:
    the ROI screen's own query (exact decimals, unfolded samples added in)."""
    cur = await conn.execute(roi_queries.COSTS_SQL, {"first": first, "last": last})
    return _cost_rows(await cur.fetchall())


def money_rows_sync(conn: Connection, first: date, last: date) -> list[CostRow]:
    return _cost_rows(conn.execute(roi_queries.COSTS_SQL, {"first": first, "last": last}).fetchall())


@dataclass(frozen=True)
class ProfileWindow:
    """The profiles screen's round: the window's profiles, and what it compares them with —
    the window before (compare "window") or the rows per rollout revision ("rollout");
    and the money of the UTC days that stand for the window (money_window)."""

    found: list[profiles.Profile]
    before: list[profiles.Profile]
    by_revision: list[TupleRow]
    money: list[CostRow]
    money_days: tuple[date, date]


async def profile_window(
    conn: AsyncConnection, start: datetime, end: datetime, now: datetime, compare: str | None
) -> ProfileWindow:
    found = await load_profiles(conn, start, end, now)
    before: list[profiles.Profile] = []
    by_revision: list[TupleRow] = []
    if compare == "window":
        before = await load_profiles(conn, start - (end - start), start, now)
    elif compare == "rollout":
        by_revision = await profile_rows(conn, start, end, now, ("type", "model", "rollout"))
    days = money_window(int((end - start).total_seconds()), end)
    return ProfileWindow(found, before, by_revision, await money_rows(conn, *days), days)
