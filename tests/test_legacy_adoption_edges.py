"""Adopting a legacy database the customer built on: their triggers, views and cached plans.

- the backfills of revisions 0003 and 0024 fire none of the customer's triggers (an audit
  row per update, a bumped updated_at) and change none of their data; the triggers are
  back as they were (enabled, ALWAYS, REPLICA, disabled) and live afterwards;
- a view, materialized view, trigger, policy, function or column that a pending revision
  cannot carry is named before any revision runs (exit 2, nothing changed), not a raw
  dependency error halfway; a plain view the revisions can carry is carried;
- a legacy writer's auto-prepared `SELECT *` fails once after the migration ("cached plan
  must not change result type": PostgreSQL's behaviour); DISCARD ALL / DEALLOCATE ALL or a
  new connection, the README's remedy, avoids it.
"""

from __future__ import annotations

import psycopg
import pytest

from fsar_tui.db.migrations import head_revision, known_revisions, migrate
from fsar_tui.errors import UsageError
from support.sql import q, x

# The customer's triggers: each call leaves a row in trigger_calls.
CUSTOMER_TRIGGERS = """
    ALTER TABLE execution_tasks ADD COLUMN updated_at timestamp NOT NULL DEFAULT '2026-01-03 00:00:00';
    CREATE TABLE trigger_calls (id serial PRIMARY KEY, trigger_name text NOT NULL, task_id integer);
    CREATE FUNCTION audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO trigger_calls (trigger_name, task_id) VALUES (TG_NAME, CASE WHEN TG_LEVEL = 'ROW' THEN OLD.id END);
        RETURN NULL;
    END $$;
    CREATE FUNCTION bump_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO trigger_calls (trigger_name, task_id) VALUES (TG_NAME, OLD.id);
        NEW.updated_at := clock_timestamp();
        RETURN NEW;
    END $$;
    CREATE TRIGGER audit_row AFTER UPDATE ON execution_tasks FOR EACH ROW EXECUTE FUNCTION audit_update();
    CREATE TRIGGER audit_statement AFTER UPDATE ON execution_tasks FOR EACH STATEMENT EXECUTE FUNCTION audit_update();
    CREATE TRIGGER bump BEFORE UPDATE ON execution_tasks FOR EACH ROW EXECUTE FUNCTION bump_updated_at();
    CREATE TRIGGER audit_always AFTER UPDATE ON execution_tasks FOR EACH ROW EXECUTE FUNCTION audit_update();
    ALTER TABLE execution_tasks ENABLE ALWAYS TRIGGER audit_always;
    CREATE TRIGGER audit_replica AFTER UPDATE ON execution_tasks FOR EACH ROW EXECUTE FUNCTION audit_update();
    ALTER TABLE execution_tasks ENABLE REPLICA TRIGGER audit_replica;
    CREATE TRIGGER audit_off AFTER UPDATE ON execution_tasks FOR EACH ROW EXECUTE FUNCTION audit_update();
    ALTER TABLE execution_tasks DISABLE TRIGGER audit_off;
"""
TRIGGER_MODES = (
    "SELECT tgname::text, tgenabled::text FROM pg_trigger "
    "WHERE tgrelid = 'execution_tasks'::regclass AND NOT tgisinternal AND tgname NOT LIKE 'execution\\_tasks\\_%' "
    "ORDER BY 1"
)


def customer_rows(dsn: str, *, adopted: bool) -> list[tuple]:
    """Every legacy column and the customer's updated_at, timestamps as UTC text."""
    utc = " AT TIME ZONE 'UTC'" if adopted else ""
    stamps = ", ".join(
        f"to_char({c}{utc}, 'YYYY-MM-DD HH24:MI:SS.US')" for c in ("created_at", "started_at", "finished_at")
    )
    return q(
        dsn,
        f"SELECT id, task_type, status, payload, result, error, worker_id, {stamps}, "
        "to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US') FROM execution_tasks ORDER BY id",
    )


def test_backfills_fire_none_of_the_customers_triggers_and_keep_their_data(legacy_dsn):
    x(legacy_dsn, CUSTOMER_TRIGGERS)
    modes = q(legacy_dsn, TRIGGER_MODES)
    assert len(modes) == 6
    before = customer_rows(legacy_dsn, adopted=False)

    migrate(legacy_dsn, "0023_explicit_tick")  # 0003's backfill: queued_at, attempt
    assert q(legacy_dsn, "SELECT count(*) FROM trigger_calls") == [(0,)]
    assert customer_rows(legacy_dsn, adopted=True) == before
    assert q(legacy_dsn, "SELECT id, attempt FROM execution_tasks ORDER BY id") == [(1, 1), (2, 1), (3, 1), (4, 0)]

    # Tasks with a cost, for 0024's backfill (waste, unpriced attempts) to touch.
    x(
        legacy_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, started_at, finished_at, "
        "input_tokens, output_tokens, cost_minor, currency) VALUES "
        "('implement_idea', 'gpt-4o', 'failed', 1, now() - interval '2 minutes', now(), 10, 20, 7, 'USD'), "
        "('implement_idea', 'gpt-4o', 'succeeded', 1, now() - interval '2 minutes', now(), 10, 20, 3, 'USD')",
    )
    x(legacy_dsn, "TRUNCATE trigger_calls")
    before = customer_rows(legacy_dsn, adopted=True)

    migrate(legacy_dsn)  # 0024's backfill, and 0029 moves the triggers to the partitioned table
    assert q(legacy_dsn, "SELECT count(*) FROM trigger_calls") == [(0,)]
    assert customer_rows(legacy_dsn, adopted=True) == before
    # The backfill did run (with their triggers off, not instead of it).
    assert q(legacy_dsn, "SELECT id, waste_minor, unpriced_attempts FROM execution_tasks WHERE id > 4 ORDER BY id") == [
        (5, 7, 1),
        (6, None, 1),
    ]
    # Back as they were, and live: the legacy executor's next update fires them.
    assert q(legacy_dsn, TRIGGER_MODES) == modes
    x(legacy_dsn, "UPDATE execution_tasks SET error = 'retried by hand' WHERE id = 2")
    assert q(legacy_dsn, "SELECT trigger_name, task_id FROM trigger_calls ORDER BY trigger_name") == [
        ("audit_always", 2),
        ("audit_row", 2),
        ("audit_statement", None),
        ("bump", 2),
    ]
    assert q(legacy_dsn, "SELECT updated_at > '2026-01-03' FROM execution_tasks WHERE id = 2") == [(True,)]


def assert_unchanged_legacy(dsn: str) -> None:
    """Nothing of the migration happened: not stamped, created_at still without time zone."""
    assert q(dsn, "SELECT to_regclass('alembic_version') IS NULL, to_regclass('task_events') IS NULL") == [(True, True)]
    assert q(
        dsn,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'execution_tasks' AND column_name = 'created_at'",
    ) == [("timestamp without time zone",)]


def test_a_view_on_a_rewritten_column_is_named_exit_2_and_its_remedy_works(legacy_dsn, run_cli):
    view = "CREATE VIEW recent_tasks AS SELECT * FROM execution_tasks WHERE created_at > '2026-01-01'"
    x(legacy_dsn, view)

    proc = run_cli("migrate", "--dsn", legacy_dsn)

    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1 and err.startswith("fsar-tui: "), err
    for needle in ("view public.recent_tasks", "execution_tasks.", "0003_task_lifecycle", "pg_get_viewdef"):
        assert needle in err, err
    assert err.endswith("nothing changed") and proc.stdout == ""
    assert_unchanged_legacy(legacy_dsn)
    assert q(legacy_dsn, "SELECT count(*) FROM recent_tasks") == [(4,)]

    # What the line says to do: keep the definition, drop, migrate, recreate.
    definition = q(legacy_dsn, "SELECT pg_get_viewdef('public.recent_tasks'::regclass)")[0][0]
    x(legacy_dsn, "DROP VIEW recent_tasks")
    assert run_cli("migrate", "--dsn", legacy_dsn).returncode == 0
    x(legacy_dsn, f"CREATE VIEW recent_tasks AS {definition}")
    assert q(legacy_dsn, "SELECT count(*) FROM recent_tasks") == [(4,)]


# The attack on the 0029 preflight: bound to execution_tasks by OID, on no column whose type changes.
ATTACK_FUNCTION = (
    "CREATE FUNCTION f1() RETURNS bigint LANGUAGE sql "
    "BEGIN ATOMIC SELECT count(*) FROM execution_tasks WHERE status <> 'zzz'; END"
)
ATTACK_RULE = (
    "CREATE TABLE other (a text); "
    "CREATE RULE r2 AS ON INSERT TO other DO ALSO INSERT INTO execution_tasks (task_type) VALUES (new.a)"
)
TOUCH = "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';"
# (the customer's DDL, how the refusal names it, the revision it names)
IN_THE_WAY = (
    (  # no rewritten column, but it would keep reading the old rows only
        "CREATE MATERIALIZED VIEW task_status AS SELECT task_type, status FROM execution_tasks",
        "materialized view public.task_status",
        "0029_partitions",
    ),
    (
        "CREATE MATERIALIZED VIEW daily AS SELECT created_at::date AS day, count(*) FROM execution_tasks GROUP BY 1",
        "materialized view public.daily",
        "0003_task_lifecycle",
    ),
    (
        TOUCH + " CREATE TRIGGER started BEFORE UPDATE OF started_at ON execution_tasks "
        "FOR EACH ROW EXECUTE FUNCTION touch()",
        "trigger started on public.execution_tasks",
        "0003_task_lifecycle",
    ),
    (
        TOUCH + " CREATE TRIGGER finishing BEFORE UPDATE ON execution_tasks "
        "FOR EACH ROW WHEN (NEW.finished_at IS NOT NULL) EXECUTE FUNCTION touch()",
        "trigger finishing on public.execution_tasks",
        "0003_task_lifecycle",
    ),
    (  # the partitioned table would carry none
        (
            "ALTER TABLE execution_tasks ENABLE ROW LEVEL SECURITY; "
            "CREATE POLICY mine ON execution_tasks USING (worker_id = current_user)"
        ),
        "policy mine on public.execution_tasks",
        "0029_partitions",
    ),
    (
        (
            "CREATE FUNCTION since(t timestamp) RETURNS bigint LANGUAGE sql "
            "BEGIN ATOMIC SELECT count(*) FROM execution_tasks WHERE created_at > t; END"
        ),
        "function since(timestamp without time zone)",
        "0003_task_lifecycle",
    ),
    (  # found by both checks (0003's column, 0029's table): named once, as what it is
        (
            "CREATE PROCEDURE purge(t timestamp) LANGUAGE sql "
            "BEGIN ATOMIC DELETE FROM execution_tasks WHERE created_at < t; END"
        ),
        "procedure purge(timestamp without time zone)",
        "0003_task_lifecycle",
    ),
    ("CREATE TABLE task_snapshots (task execution_tasks)", "column public.task_snapshots.task", "0003_task_lifecycle"),
    ("CREATE TABLE execution_tasks_p0 (note text)", "table public.execution_tasks_p0", "0029_partitions"),
    # On no column whose type changes: what 0029 alone would leave bound to execution_tasks_p0.
    (ATTACK_FUNCTION, "function f1()", "0029_partitions"),  # would read the old rows only
    (ATTACK_RULE, "rule r2 on public.other", "0029_partitions"),  # would insert into p0: partition constraint
    (
        (
            "CREATE VIEW intake AS SELECT ''::text AS a; CREATE RULE r3 AS ON INSERT TO intake "
            "DO INSTEAD INSERT INTO execution_tasks (task_type) VALUES (new.a)"
        ),
        "rule r3 on public.intake",
        "0029_partitions",
    ),
    (
        (
            "CREATE TABLE notes (kind text); ALTER TABLE notes ENABLE ROW LEVEL SECURITY; "
            "CREATE POLICY known ON notes USING (EXISTS (SELECT 1 FROM execution_tasks t WHERE t.task_type = kind))"
        ),
        "policy known on public.notes",
        "0029_partitions",
    ),
    (  # CREATE OR REPLACE VIEW would drop its options
        "CREATE VIEW guarded WITH (security_barrier) AS SELECT task_type, status FROM execution_tasks",
        "view public.guarded",
        "0029_partitions",
    ),
    (
        "ALTER TABLE execution_tasks ADD COLUMN kind text GENERATED ALWAYS AS (upper(task_type)) STORED",
        "generated column public.execution_tasks.kind",
        "0029_partitions",
    ),
    (
        "ALTER TABLE execution_tasks ADD CONSTRAINT positive CHECK (id > 0) NO INHERIT",
        "constraint positive on public.execution_tasks",
        "0029_partitions",
    ),
    (
        "ALTER TABLE execution_tasks ADD CONSTRAINT one_each EXCLUDE (payload WITH =) WHERE (status = 'x')",
        "constraint one_each on public.execution_tasks",
        "0029_partitions",
    ),
    (  # a key without id: the partitioned table cannot hold it unique
        (
            "CREATE UNIQUE INDEX by_worker ON execution_tasks (task_type, worker_id); "
            "CREATE TABLE claims (t text, w text, FOREIGN KEY (t, w) REFERENCES execution_tasks (task_type, worker_id))"
        ),
        "constraint claims_t_w_fkey on public.claims",
        "0029_partitions",
    ),
    (
        "CREATE STATISTICS type_status ON task_type, status FROM execution_tasks",
        "statistics object public.type_status",
        "0029_partitions",
    ),
    (
        "CREATE FUNCTION label(t execution_tasks) RETURNS text LANGUAGE sql AS 'SELECT t.task_type'",
        "function label(execution_tasks)",
        "0029_partitions",
    ),
    ("CREATE DOMAIN task_rows AS execution_tasks[]", "type public.task_rows", "0029_partitions"),
)


@pytest.mark.parametrize(("ddl", "named", "revision"), IN_THE_WAY)
def test_what_a_revision_cannot_carry_is_named_before_any_runs(legacy_dsn, ddl, named, revision):
    x(legacy_dsn, ddl)
    with pytest.raises(UsageError) as refused:
        migrate(legacy_dsn)
    message = refused.value.message
    assert f"{named} (" in message and revision in message and message.endswith("nothing changed"), message
    assert "1 object(s)" in message
    assert_unchanged_legacy(legacy_dsn)


def test_the_attacks_objects_are_refused_by_the_cli_and_work_on_as_before(legacy_dsn, run_cli):
    """A BEGIN ATOMIC function reading execution_tasks and another table's rule writing to
    it: 0029 alone would bind both to execution_tasks_p0 (the function counting the old
    rows only, the rule failing on the partition constraint, retention never dropping p0)."""
    x(legacy_dsn, ATTACK_FUNCTION)
    x(legacy_dsn, ATTACK_RULE)

    proc = run_cli("migrate", "--dsn", legacy_dsn)

    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1 and err.startswith("fsar-tui: "), err
    assert "2 object(s)" in err and err.endswith("nothing changed") and proc.stdout == "", err
    for needle in (
        "function f1() (on execution_tasks, which 0029_partitions",
        "BEGIN ATOMIC",
        "rule r2 on public.other",
    ):
        assert needle in err, err
    assert_unchanged_legacy(legacy_dsn)
    x(legacy_dsn, "INSERT INTO other VALUES ('implement_idea')")
    assert q(legacy_dsn, "SELECT f1(), count(*) FROM execution_tasks") == [(5, 5)]


def test_a_legacy_database_with_objects_0029_carries_still_migrates(legacy_dsn):
    """What is bound to the table but carried (a plain view, a key to it by id, a trigger),
    and what names it only in text (PL/pgSQL), are not refused, and read the new table."""
    x(
        legacy_dsn,
        "CREATE VIEW by_status AS SELECT status, count(*) AS n FROM execution_tasks GROUP BY status; "
        "CREATE TABLE reviews (task_id integer REFERENCES execution_tasks (id)); "
        "CREATE FUNCTION tasks() RETURNS bigint LANGUAGE plpgsql AS "
        "'BEGIN RETURN (SELECT count(*) FROM execution_tasks); END'; "
        + TOUCH
        + " CREATE TRIGGER reviewed BEFORE INSERT ON reviews FOR EACH ROW EXECUTE FUNCTION touch(); "
        "CREATE TRIGGER touched BEFORE UPDATE ON execution_tasks FOR EACH ROW EXECUTE FUNCTION touch()",
    )
    migrate(legacy_dsn)
    x(legacy_dsn, "INSERT INTO execution_tasks (task_type) VALUES ('implement_idea')")
    x(legacy_dsn, "INSERT INTO reviews VALUES (5)")
    assert q(legacy_dsn, "SELECT tasks(), (SELECT n FROM by_status WHERE status = 'queued')") == [(5, 2)]
    # Nothing of the customer's but the key is left on the old rows' partition.
    assert (
        q(
            legacy_dsn,
            "SELECT DISTINCT classid::regclass::text FROM pg_depend WHERE refobjid = 'execution_tasks_p0'::regclass "
            "AND classid IN ('pg_rewrite'::regclass, 'pg_proc'::regclass, 'pg_policy'::regclass)",
        )
        == []
    )


# Objects on task_events, which exists from 0004 on: found on a database at 0028.
AT_0028 = (
    (
        (
            "CREATE PROCEDURE log_one() LANGUAGE sql BEGIN ATOMIC "
            "INSERT INTO task_events (task_id, to_status, attempt) VALUES (1, 'queued', 0); END"
        ),
        "procedure log_one()",
    ),
    (  # its (id) key becomes (id, at)
        "CREATE TABLE event_notes (event_id bigint REFERENCES task_events (id))",
        "constraint event_notes_event_id_fkey on public.event_notes",
    ),
    ("CREATE MATERIALIZED VIEW failures AS SELECT task_id FROM task_events", "materialized view public.failures"),
)


@pytest.mark.parametrize(("ddl", "named"), AT_0028)
def test_what_0029_cannot_carry_on_task_events_is_named(legacy_dsn, ddl, named):
    migrate(legacy_dsn, "0028_cost_integrity")
    x(legacy_dsn, ddl)
    with pytest.raises(UsageError) as refused:
        migrate(legacy_dsn)
    message = refused.value.message
    assert f"{named} (on task_events, which 0029_partitions" in message and "1 object(s)" in message, message
    assert q(legacy_dsn, "SELECT version_num FROM alembic_version") == [("0028_cost_integrity",)]


def test_a_view_on_an_empty_task_events_is_carried(legacy_dsn):
    """With no event yet 0029 drops the adopted task_events (days only): after re-pointing
    the views on it, not before (the DROP failed on the view)."""
    migrate(legacy_dsn, "0028_cost_integrity")
    x(legacy_dsn, "CREATE VIEW recent_events AS SELECT id, task_id FROM task_events")
    migrate(legacy_dsn)
    x(legacy_dsn, "INSERT INTO task_events (task_id, to_status, attempt) VALUES (1, 'queued', 0)")
    assert q(legacy_dsn, "SELECT count(*) FROM recent_events") == [(1,)]
    assert q(legacy_dsn, "SELECT to_regclass('task_events_p0')") == [(None,)]


def test_a_view_on_the_costs_is_named_when_0024_is_pending(legacy_dsn):
    migrate(legacy_dsn, "0023_explicit_tick")
    x(legacy_dsn, "CREATE VIEW spend AS SELECT id, cost_minor FROM execution_tasks")
    with pytest.raises(UsageError, match=r"view public\.spend \(uses execution_tasks\.cost_minor, whose type 0024"):
        migrate(legacy_dsn)
    assert q(legacy_dsn, "SELECT version_num FROM alembic_version") == [("0023_explicit_tick",)]


def test_a_plain_view_the_revisions_carry_is_not_refused_and_reads_the_new_table(legacy_dsn):
    x(legacy_dsn, "CREATE VIEW by_status AS SELECT status, count(*) AS n FROM execution_tasks GROUP BY status")
    migrate(legacy_dsn)
    x(legacy_dsn, "INSERT INTO execution_tasks (task_type) VALUES ('implement_idea')")
    assert q(legacy_dsn, "SELECT n FROM by_status WHERE status = 'queued'") == [(2,)]


def test_fsar_tuis_own_objects_never_stand_in_the_way(empty_dsn):
    """Each revision applied on its own: at every step the preflight sees fsar-tui's own
    triggers (0013's on cost_minor, before 0024) and lets the revision handle them."""
    for revision in known_revisions()[1:]:
        migrate(empty_dsn, revision)
    assert q(empty_dsn, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def _prepared(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%execution_tasks%'")
    return int(row.fetchone()[0])


CHANGED_TYPE = "cached plan must not change result type"


def test_a_writers_cached_plan_fails_after_migrate_and_discard_all_avoids_it(legacy_dsn):
    reads = "SELECT * FROM execution_tasks WHERE id = %s"
    writes = "UPDATE execution_tasks SET worker_id = worker_id WHERE id = %s RETURNING *"
    ids = "SELECT id, status FROM execution_tasks WHERE id = %s"  # id: integer → bigint
    unchanged = "SELECT task_type, status FROM execution_tasks WHERE id = %s"
    with (
        psycopg.connect(legacy_dsn, autocommit=True) as stale_autocommit,
        psycopg.connect(legacy_dsn) as stale_in_transactions,
        psycopg.connect(legacy_dsn, autocommit=True) as discards,
        psycopg.connect(legacy_dsn) as deallocates,
    ):
        writers = (stale_autocommit, stale_in_transactions, discards, deallocates)
        for conn in writers:
            for _ in range(6):  # psycopg prepares a statement on its 6th run (prepare_threshold 5)
                for statement in (reads, writes, ids, unchanged):
                    conn.execute(statement, (1,)).fetchall()
            conn.commit()
            assert _prepared(conn) == 4

        migrate(legacy_dsn)

        # PostgreSQL's behaviour on the writer's side: its plan's row shape changed. In
        # autocommit psycopg keeps the failed statement prepared: it fails every time …
        for _ in range(2):
            for statement in (reads, ids):
                with pytest.raises(psycopg.errors.FeatureNotSupported, match=CHANGED_TYPE):
                    stale_autocommit.execute(statement, (1,))
        # A result whose columns kept their types is re-planned on the new table silently.
        assert stale_autocommit.execute(unchanged, (1,)).fetchall() == [("implement_idea", "succeeded")]
        # … in a transaction the rollback makes psycopg forget its prepared statements: once.
        with pytest.raises(psycopg.errors.FeatureNotSupported, match=CHANGED_TYPE):
            stale_in_transactions.execute(writes, (1,))
        stale_in_transactions.rollback()
        assert stale_in_transactions.execute(writes, (1,)).fetchall()
        stale_in_transactions.rollback()

        # The README's remedy, right after `fsar-tui migrate`: DISCARD ALL (outside a
        # transaction) …
        discards.execute("DISCARD ALL")
        cur = discards.execute(reads, (1,))
        assert "ai_model" in [c.name for c in cur.description] and len(cur.fetchall()) == 1
        # … or DEALLOCATE ALL, which a transaction allows.
        deallocates.execute("DEALLOCATE ALL")
        cur = deallocates.execute(writes, (1,))
        assert "ai_model" in [c.name for c in cur.description]
        deallocates.commit()
