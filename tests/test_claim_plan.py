"""The claim under a backlog: it reads the first claimable row, not the queue, and its
per-row block test means exactly what the execution_blocks rows say (issue 18's soak
found the old NOT EXISTS planned as a sort of the whole queued set)."""

from __future__ import annotations

import json

import psycopg

from fsar_tui.db import executor
from support.sql import q, x

BACKLOG = 5_000


def _plan_nodes(node: dict) -> list[dict]:
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]


def _tasks_scans(nodes: list[dict]) -> list[dict]:
    return [n for n in nodes if str(n.get("Relation Name", "")).startswith("execution_tasks")]


def test_a_claim_reads_a_handful_of_rows_however_long_the_queue(db_dsn):
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model, priority, max_attempts) "
        "SELECT (ARRAY['implement_idea', 'idea_implementation', 'self_improvement'])[1 + g % 3], 'gpt-x', g % 3, 3 "
        f"FROM generate_series(1, {BACKLOG}) g",
    )
    x(db_dsn, "ANALYZE execution_tasks")
    with psycopg.connect(db_dsn) as conn:
        sql = executor.CLAIM_SQL.replace("%(worker)s", "'w'").replace("%(lease_s)s", "30")
        (plan,) = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").fetchone()
        conn.rollback()  # EXPLAIN ANALYZE ran the claim: undo it
    nodes = _plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    scans = _tasks_scans(nodes)
    assert scans, "the plan reads execution_tasks"
    # The claim's scan of the queue stops at its first row; the old plan read all 5,000.
    queue_scans = [n for n in scans if "queued" in n.get("Index Name", "")]
    next_scan_rows = sum(n["Actual Rows"] * n.get("Actual Loops", 1) for n in queue_scans)
    assert 1 <= next_scan_rows <= 10, [(n["Node Type"], n.get("Index Name"), n["Actual Rows"]) for n in scans]
    sorted_queue = [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort") and _tasks_scans(_plan_nodes(n))]
    assert sorted_queue == []


BLOCKS = [
    (None, "gpt-blocked"),  # a model everywhere
    ('type,with "quotes"', None),  # a type, every model (a name ROW()::text must quote)
    ("pair_type", "pair-model"),  # one pair only
]


def _fake_blocks(dsn: str, rows: list[tuple[str | None, str | None]], canary_revision: int | None = 0) -> None:
    """execution_blocks as given rows (same columns as the real view, this database only),
    plus a canary-scoped row for revision `canary_revision` (of no task here: it must not
    block anything but that revision's share, and its task_type must not block the type)."""
    literal = psycopg.sql.Literal
    values = ", ".join(
        psycopg.sql.SQL("({}::text, 'test'::text, 'test'::text, 'test'::text, {}::text, NULL::bigint)")
        .format(literal(t), literal(m))
        .as_string(None)
        for t, m in rows
    )
    values += f", ('implement_idea', 'gate', 'canary', 'test', NULL, {int(canary_revision or 0)}::bigint)"
    columns = "v(task_type, source, ref, reason, ai_model, revision_id)"
    x(dsn, f"CREATE OR REPLACE VIEW execution_blocks AS SELECT * FROM (VALUES {values}) {columns}")


async def _claim_all(dsn: str) -> set[tuple[str, str | None]]:
    from fsar_tui.db.connect import aconnect

    claimed = set()
    async with await aconnect(dsn) as conn:
        while (task := await executor.claim(conn, "w", 30)) is not None:
            claimed.add((task.task_type, task.ai_model))
    return claimed


async def test_blocks_hold_per_type_per_model_per_pair_and_for_everything(db_dsn):
    kinds = [
        ("implement_idea", "gpt-blocked"),
        ("implement_idea", "gpt-ok"),
        ("implement_idea", None),
        ('type,with "quotes"', "gpt-ok"),
        ('type,with "quotes"', None),
        ("pair_type", "pair-model"),
        ("pair_type", "gpt-ok"),
        ("pair_type", None),
        ("other", "pair-model"),
    ]
    for task_type, model in kinds:
        x(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) VALUES (%s, %s)", (task_type, model))
    _fake_blocks(db_dsn, BLOCKS)
    # What the view's rows mean, said the old way (a NOT EXISTS per task), as the oracle.
    expected = set(
        q(
            db_dsn,
            """SELECT t.task_type, t.ai_model FROM execution_tasks t WHERE t.status = 'queued'
               AND NOT EXISTS (SELECT 1 FROM execution_blocks b WHERE b.revision_id IS NULL
                                                               AND (b.task_type IS NULL OR b.task_type = t.task_type)
                                                               AND (b.ai_model IS NULL OR b.ai_model = t.ai_model))""",
        )
    )
    assert expected == {
        ("implement_idea", "gpt-ok"),
        ("implement_idea", None),
        ("pair_type", "gpt-ok"),
        ("pair_type", None),
        ("other", "pair-model"),
    }
    assert await _claim_all(db_dsn) == expected
    _fake_blocks(db_dsn, [*BLOCKS, (None, None)])  # a block of everything
    x(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-ok')")
    assert await _claim_all(db_dsn) == set()
