"""Alembic chain: reversibility with data, legacy adoption, refusal, unknown revisions."""

from __future__ import annotations

import psycopg
import pytest

from fsar_tui.db import migrations
from fsar_tui.db.migrations import LEGACY_REVISION, downgrade, head_revision, known_revisions, migrate
from fsar_tui.db.tasks import COUNTS_DRIFT_SQL as TASKS_COUNTS_DRIFT
from fsar_tui.errors import CheckFailed, UnknownRevision
from support.sql import q, x


def current_revision(dsn):
    rows = (
        q(dsn, "SELECT version_num FROM alembic_version")
        if q(dsn, "SELECT to_regclass('alembic_version')")[0][0]
        else []
    )
    return rows[0][0] if rows else None


def columns(dsn, table="execution_tasks"):
    return {r[0] for r in q(dsn, "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))}


def tables(dsn):
    return {r[0] for r in q(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def schema_fingerprint(dsn):
    """Everything about the schema a migration could change, for before/after equality."""
    return (
        q(
            dsn,
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2",
        ),
        q(
            dsn,
            (
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = "
                "'public'::regnamespace ORDER BY 1"
            ),
        ),
        q(dsn, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"),
        q(dsn, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"),
    )


def legacy_rows(dsn):
    return q(
        dsn,
        "SELECT id, task_type, status, payload, result, error, worker_id, "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
        "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
        "to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM execution_tasks ORDER BY id",
    )


def legacy_rows_naive(dsn):
    """Same columns read from the unadopted legacy table (timestamps without zone are UTC)."""
    return q(
        dsn,
        "SELECT id, task_type, status, payload, result, error, worker_id, "
        "to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'), to_char(started_at, 'YYYY-MM-DD HH24:MI:SS'), "
        "to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS') FROM execution_tasks ORDER BY id",
    )


def insert_head_data(dsn):
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO fsar_proposals (id, reported_at, severity, body, source_sha256) "
            "VALUES ('fsar_x', now(), 6, 'self_improvement: fix', repeat('a', 64))"
        )
        conn.execute("INSERT INTO rollouts (target, kind) VALUES ('prompt/main', 'prompt')")
        conn.execute(
            "INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256) "
            "SELECT id, 1, '{\"p\": 1}', repeat('b', 64) FROM rollouts"
        )
        conn.execute("UPDATE rollouts SET active_revision = 1")
        conn.execute("""INSERT INTO execution_tasks (task_type, ai_model, status, payload, attempt, proposal_id,
                            rollout_revision_id, input_tokens, output_tokens, cost_minor, currency, started_at,
                                finished_at)
                        SELECT 'implement_idea', 'gpt-4o', 'succeeded', '{"n": 1}', 1, 'fsar_x', r.id, 10, 20, 3, 'USD',
                               now() - interval '1 minute', now() FROM rollout_revisions r""")
        conn.execute("INSERT INTO execution_tasks (task_type, ai_model) VALUES ('self_improvement', 'claude-3')")
        conn.execute(
            "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id) "
            "VALUES ('stripe', 'evt_1', 'revenue', 1999, 'USD', now(), 'idea_1')"
        )
        conn.execute(
            "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, "
            "effective_from) "
            "VALUES ('gpt-4o', 'USD', 250, 1000, now())"
        )
        conn.execute(
            "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold) "
            "VALUES ('fail', 'failure_rate', '1 hour', '<', 0.2)"
        )
        conn.execute(
            "INSERT INTO operator_actions (actor, action, target, reason) VALUES ('ops', 'retry', 'task:1', 'test')"
        )


def test_known_revisions_form_one_chain_with_ai_model_alone():
    revs = known_revisions()
    assert revs[0] == LEGACY_REVISION and revs[-1] == head_revision()
    assert revs[1] == "0002_add_ai_model"
    assert len(set(revs)) == len(revs)


def test_base_head_base_head_on_a_database_holding_data(empty_dsn):
    migrate(empty_dsn)
    insert_head_data(empty_dsn)
    head_schema = schema_fingerprint(empty_dsn)
    kept = legacy_rows(empty_dsn)

    # Step down one revision at a time and back up: every revision is reversible with data present.
    revs = known_revisions()
    for rev in reversed(revs[:-1]):
        downgrade(empty_dsn, rev)
        assert current_revision(empty_dsn) == rev
    assert legacy_rows(empty_dsn) == kept  # the task rows survive down to the legacy shape
    assert "ai_model" not in columns(empty_dsn)
    migrate(empty_dsn)
    assert schema_fingerprint(empty_dsn) == head_schema
    assert legacy_rows(empty_dsn) == kept

    downgrade(empty_dsn, "base")
    assert tables(empty_dsn) == {"alembic_version"}
    assert current_revision(empty_dsn) is None
    migrate(empty_dsn)
    assert schema_fingerprint(empty_dsn) == head_schema
    insert_head_data(empty_dsn)
    assert current_revision(empty_dsn) == head_revision()


def test_legacy_adoption_keeps_every_row_and_is_idempotent(legacy_dsn):
    # A column fsar-tui does not know, with data, must stay untouched.
    x(legacy_dsn, "ALTER TABLE execution_tasks ADD COLUMN legacy_note text")
    x(legacy_dsn, "UPDATE execution_tasks SET legacy_note = 'note-' || id")
    before = legacy_rows_naive(legacy_dsn)
    notes = q(legacy_dsn, "SELECT id, legacy_note FROM execution_tasks ORDER BY id")
    assert len(before) == 4

    result = migrate(legacy_dsn)
    assert result.adopted and result.before is None and result.after == head_revision()
    assert result.applied[0] == "0002_add_ai_model"
    assert legacy_rows(legacy_dsn) == before
    assert q(legacy_dsn, "SELECT id, legacy_note FROM execution_tasks ORDER BY id") == notes
    assert {"ai_model", "attempt", "lease_expires_at", "rollout_revision_id", "proposal_id"} <= columns(legacy_dsn)
    assert {"task_events", "ledger_entries", "operator_actions", "fsar_proposals", "rollouts"} <= tables(legacy_dsn)
    assert (
        q(
            legacy_dsn,
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'execution_tasks' AND column_name = 'created_at'",
        )[0][0]
        == "timestamp with time zone"
    )

    # Adoption counted the existing rows for the queue screen's counters.
    assert q(legacy_dsn, TASKS_COUNTS_DRIFT) == []
    assert q(legacy_dsn, "SELECT sum(n)::int FROM task_counts") == [(4,)]

    fingerprint = schema_fingerprint(legacy_dsn)
    again = migrate(legacy_dsn)
    assert not again.adopted and again.applied == []
    assert schema_fingerprint(legacy_dsn) == fingerprint and legacy_rows(legacy_dsn) == before

    # The legacy executor's own statements still work, and now it can record its model.
    x(
        legacy_dsn,
        "INSERT INTO execution_tasks (task_type, status, payload, worker_id) "
        "VALUES ('implement_idea', 'queued', '{\"idea_id\": \"idea_018\"}', 'w-9')",
    )
    x(
        legacy_dsn,
        "UPDATE execution_tasks SET status = 'running', started_at = now(), ai_model = 'gpt-4o' "
        "WHERE worker_id = 'w-9'",
    )
    x(
        legacy_dsn,
        "UPDATE execution_tasks SET status = 'succeeded', finished_at = now(), result = '{}' WHERE worker_id = 'w-9'",
    )
    assert q(
        legacy_dsn,
        "SELECT to_status FROM task_events e JOIN execution_tasks t ON t.id = e.task_id "
        "WHERE t.worker_id = 'w-9' ORDER BY e.id",
    ) == [("queued",), ("running",), ("succeeded",)]


def test_legacy_adoption_refuses_violating_rows_and_changes_nothing(legacy_dsn):
    x(legacy_dsn, "INSERT INTO execution_tasks (task_type, status) VALUES ('implement_idea', 'done')")
    x(
        legacy_dsn,
        "INSERT INTO execution_tasks (task_type, status, finished_at) VALUES ('implement_idea', 'succeeded', NULL)",
    )
    x(
        legacy_dsn,
        "INSERT INTO execution_tasks (task_type, status, finished_at) VALUES ('implement_idea', 'queued', now())",
    )
    fingerprint, rows = schema_fingerprint(legacy_dsn), legacy_rows_naive(legacy_dsn)

    with pytest.raises(CheckFailed) as err:
        migrate(legacy_dsn)
    assert "3 existing row(s) violate" in err.value.message and "nothing changed" in err.value.message
    details = "\n".join(err.value.details)
    assert "id=5: status 'done' is not one of" in details
    assert "id=6: status 'succeeded' is terminal but finished_at is empty" in details
    assert "id=7: status 'queued' is not terminal" in details
    assert schema_fingerprint(legacy_dsn) == fingerprint and legacy_rows_naive(legacy_dsn) == rows
    assert "alembic_version" not in tables(legacy_dsn)


def test_legacy_table_missing_columns_is_refused(empty_dsn):
    x(empty_dsn, "CREATE TABLE execution_tasks (id serial PRIMARY KEY, task_type text)")
    with pytest.raises(CheckFailed, match="lacks legacy column"):
        migrate(empty_dsn)
    assert "alembic_version" not in tables(empty_dsn)


def test_unknown_revision_is_refused(db_dsn):
    x(db_dsn, "UPDATE alembic_version SET version_num = 'f00dfeed_future'")
    with pytest.raises(UnknownRevision, match="f00dfeed_future"):
        migrate(db_dsn)


def test_concurrent_migrations_serialise(empty_dsn):
    """Two migrators at once: one applies, the other waits on the lock then finds nothing to do."""
    import threading

    results, errors = [], []

    def run():
        try:
            results.append(migrate(empty_dsn))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(len(r.applied) for r in results) == [0, len(known_revisions())]


def test_script_location_resolves():
    assert (migrations.script_location() / "env.py").exists()
