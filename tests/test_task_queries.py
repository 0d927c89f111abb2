"""Queue reads and operator actions against a real database."""

from __future__ import annotations

import psycopg
import pytest

from fsar_tui.db import actions, tasks
from fsar_tui.db.connect import aconnect
from fsar_tui.domain.task_filter import parse_filter


@pytest.fixture(scope="module")
def seeded_template(server_dsn, template_db):
    """The seeded queue, made once for the module: seeding was most of each test's time."""
    from conftest import _unique_name, create_database, drop_database
    from fsar_tui.sim.seed import seed_history

    name = _unique_name()
    dsn = create_database(server_dsn, name, template=template_db)
    try:
        seed_history(dsn, days=3, tasks=1500, seed=11)  # what `fsar-tui seed` runs
        with psycopg.connect(dsn, autocommit=True) as conn:
            # More failures than the profiles produce, some with awkward error text.
            conn.execute(
                "UPDATE execution_tasks SET status = 'failed', error = 'TimeoutError: model call exceeded 120s' "
                "WHERE id % 50 = 0 AND status = 'succeeded'"
            )
            conn.execute(
                "UPDATE execution_tasks SET error = 'upstream [bold]timeout[/] 50%_done' WHERE id % 100 = 0 "
                "AND status = 'failed'"
            )
        yield name
    finally:
        drop_database(server_dsn, name)


@pytest.fixture
def seeded(server_dsn, seeded_template):
    """A copy of the seeded queue of this test's own (some tests act on its tasks)."""
    from conftest import database_copy

    with database_copy(server_dsn, seeded_template) as dsn:
        yield dsn


async def all_pages(conn, req):
    rows, after = [], None
    while True:
        batch = await tasks.page(conn, tasks.PageRequest(req.filter, req.sort, req.descending, after, limit=97))
        rows += batch
        if len(batch) < 97:
            return rows
        after = tasks.sort_key(batch[-1], req.sort)


@pytest.mark.parametrize("sort", list(tasks.SORTABLE))
@pytest.mark.parametrize("descending", [True, False])
async def test_keyset_pages_equal_one_big_ordered_query(seeded, sort, descending):
    conn = await aconnect(seeded)
    try:
        got = [r.id for r in await all_pages(conn, tasks.PageRequest(sort=sort, descending=descending))]
        col = tasks.SORTABLE[sort]
        direction = "DESC" if descending else "ASC"
        nulls = "NULLS LAST" if descending else "NULLS FIRST"
        cur = await conn.execute(
            f"SELECT t.id FROM execution_tasks t ORDER BY {col} {direction} {nulls}, t.id {direction}"
        )
        assert got == [r[0] for r in await cur.fetchall()]
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "text,sql",
    [
        ("status:failed", "status = 'failed'"),
        ("type:self_improvement model:gpt-4o", "task_type = 'self_improvement' AND ai_model = 'gpt-4o'"),
        ("since:1d", "created_at >= now() - interval '1 day'"),
        ("error~timeout", "error ILIKE '%timeout%'"),
        ('error~"50%_done"', "position('50%_done' in error) > 0"),
        ("status:queued,running", "status IN ('queued', 'running')"),
    ],
)
async def test_server_side_filters_match_equivalent_sql(seeded, text, sql):
    conn = await aconnect(seeded)
    try:
        f = parse_filter(text)
        got = {r.id for r in await all_pages(conn, tasks.PageRequest(filter=f))}
        cur = await conn.execute(f"SELECT id FROM execution_tasks WHERE {sql}")
        expected = {r[0] for r in await cur.fetchall()}
        assert got == expected and await tasks.count_matching(conn, f) == len(expected)
    finally:
        await conn.close()


async def test_retry_cancel_requeue_with_optimistic_check_and_audit(seeded):
    conn = await aconnect(seeded)
    try:
        failed = [
            (r.id, r.status) for r in await tasks.page(conn, tasks.PageRequest(parse_filter("status:failed"), limit=3))
        ]
        assert len(failed) == 3
        # Someone else retries one of them first: it must be reported, not hit.
        await conn.execute(
            "UPDATE execution_tasks SET status = 'queued', finished_at = NULL WHERE id = %s", (failed[0][0],)
        )
        result = await actions.apply_action(
            conn, "retry", failed, "flaky upstream", scope="task filter status:failed", actor="alice"
        )
        assert result.done == sorted(i for i, _ in failed[1:]) and result.changed == [failed[0][0]]
        cur = await conn.execute(
            "SELECT actor, claimed_os_user, action, target, reason, before, after FROM operator_actions"
        )
        ((actor, claimed, action, target, reason, before, after),) = await cur.fetchall()
        assert (actor, claimed, action, reason) == ("postgres", "alice", "task.retry", "flaky upstream")
        assert before == {"status": {str(i): "failed" for i, _ in failed[1:]}} and after["status"] == "queued"
        cur = await conn.execute(
            "SELECT status, finished_at IS NULL, attempt < max_attempts FROM execution_tasks WHERE id = ANY(%s)",
            (result.done,),
        )
        assert set(await cur.fetchall()) == {("queued", True, True)}

        cancelled = await actions.apply_action(
            conn,
            "cancel",
            [(result.done[0], "queued"), (failed[0][0], "failed")],
            "wrong idea",
            scope="task",
            actor="alice",
        )
        assert (
            cancelled.done == [result.done[0]]
            and cancelled.changed == []
            and cancelled.not_applicable == [failed[0][0]]
        )
        requeued = await actions.apply_action(conn, "requeue", [(result.done[0], "cancelled")], "oops", scope="task")
        assert requeued.done == [result.done[0]]
        cur = await conn.execute("SELECT count(*), bool_and(db_role = current_user) FROM operator_actions")
        assert await cur.fetchone() == (3, True)
        cur = await conn.execute("SELECT fsar_operator_actions_verify()")
        assert await cur.fetchone() == (None,)
    finally:
        await conn.close()


async def test_read_only_session_is_refused_with_a_plain_message(seeded):
    conn = await aconnect(seeded)
    try:
        await conn.set_read_only(True)
        cur = await conn.execute("SELECT id FROM execution_tasks WHERE status = 'failed' LIMIT 1")
        ((task_id,),) = await cur.fetchall()
        with pytest.raises(actions.ActionRefused, match="read-only"):
            await actions.apply_action(conn, "retry", [(task_id, "failed")], "r", scope="task")
    finally:
        await conn.close()


async def test_detail_counts_running_workers_activity(seeded):
    conn = await aconnect(seeded)
    try:
        detail = await tasks.task_detail(conn, 1)
        assert detail["id"] == 1 and detail["events"][0]["to_status"] == "queued"
        counts = await tasks.status_type_counts(conn)
        assert sum(c.n for c in counts) == 1500
        assert len(await tasks.activity(conn, 10)) == 10
        await tasks.running_tasks(conn)
        await tasks.workers(conn)
        assert await tasks.task_detail(conn, 10**9) is None
    finally:
        await conn.close()


async def test_activity_counts_finished_and_enqueued_per_minute(db_dsn):
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("""INSERT INTO task_events (task_id, from_status, to_status, attempt, at)
                        SELECT 1, f, t, 1, date_trunc('minute', now()) - make_interval(mins => ago) + interval
                            '7 seconds'
                        FROM (VALUES (NULL, 'queued', 0), ('running', 'succeeded', 0), ('running', 'failed', 0),
                                     (NULL, 'queued', 2), ('queued', 'running', 2), ('running', 'cancelled', 3),
                                     ('running', 'succeeded', 9)) v(f, t, ago)""")
    conn = await aconnect(db_dsn)
    try:
        rows = await tasks.activity(conn, 5)
    finally:
        await conn.close()
    assert len(rows) == 5 and [r.minute for r in rows] == sorted(r.minute for r in rows)
    assert [(r.finished, r.enqueued) for r in rows] == [(0, 0), (1, 0), (0, 1), (0, 0), (2, 1)]
