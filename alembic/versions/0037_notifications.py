"""Notifications (issue 20 point 3): the last notified state of each event key, every
claimed change, its deliveries per channel and every attempt (db/notifications.py).

- notify_states: event key → firing | resolved, what was said (labels, annotations) and
  since when; the claim of a change is an upsert guarded by "the state differs", so two
  audit passes racing notify once.
- notify_events: every claimed change.
- notify_deliveries: per event × channel (masked text; a hash of the URL to find it in
  the config again): pending → ok | failed (given up), the next attempt's time, the last
  outcome. An index on the pending ones by due time.
- notify_attempts: append-only, every attempt and its outcome.
- fsar_notify_claim / fsar_notify_take / fsar_notify_record: SECURITY DEFINER, EXECUTE
  to fsar_operator (the audit pass); fsar_viewer reads the tables (SELECT, as everywhere).

Revision ID: 0037_notifications
Revises: 0036_canary_guards
"""

from alembic import op

from fsar_tui.db import notify_functions_history as notify_functions
from fsar_tui.db.shipped_sql import replace_sql

revision = "0037_notifications"
down_revision = "0036_canary_guards"
branch_labels = None
depends_on = None

TABLES = ("notify_states", "notify_events", "notify_deliveries", "notify_attempts")
SEQUENCES = ("notify_events_id_seq", "notify_deliveries_id_seq", "notify_attempts_id_seq")


def upgrade() -> None:
    op.execute("""
        CREATE TABLE notify_events (
            id           bigserial PRIMARY KEY,
            event_key    text NOT NULL CHECK (length(event_key) BETWEEN 1 AND 300),
            kind         text NOT NULL CHECK (kind IN ('drift', 'gate', 'canary', 'proposal', 'rollback')),
            state        text NOT NULL CHECK (state IN ('firing', 'resolved')),
            labels       jsonb NOT NULL CHECK (jsonb_typeof(labels) = 'object'),
            annotations  jsonb NOT NULL CHECK (jsonb_typeof(annotations) = 'object'),
            starts_at    timestamptz NOT NULL,
            ends_at      timestamptz,
            created_at   timestamptz NOT NULL DEFAULT now(),
            claimed_by   text NOT NULL DEFAULT session_user
        )
    """)
    op.execute("CREATE INDEX notify_events_key_idx ON notify_events (event_key, id DESC)")
    op.execute("""
        CREATE TABLE notify_states (
            event_key    text PRIMARY KEY CHECK (length(event_key) BETWEEN 1 AND 300),
            state        text NOT NULL CHECK (state IN ('firing', 'resolved')),
            labels       jsonb NOT NULL DEFAULT '{}'::jsonb,
            annotations  jsonb NOT NULL DEFAULT '{}'::jsonb,
            starts_at    timestamptz NOT NULL,
            changed_at   timestamptz NOT NULL DEFAULT now(),
            event_id     bigint REFERENCES notify_events (id)
        )
    """)
    op.execute("""
        CREATE TABLE notify_deliveries (
            id               bigserial PRIMARY KEY,
            event_id         bigint NOT NULL REFERENCES notify_events (id),
            channel_key      text NOT NULL CHECK (length(channel_key) BETWEEN 1 AND 100),
            channel          text NOT NULL CHECK (length(channel) BETWEEN 1 AND 500),
            status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'failed')),
            attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            next_attempt_at  timestamptz,
            last_at          timestamptz,
            last_http_status integer,
            last_error       text,
            UNIQUE (event_id, channel_key),
            CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
        )
    """)
    op.execute("CREATE INDEX notify_deliveries_due_idx ON notify_deliveries (next_attempt_at) WHERE status = 'pending'")
    op.execute(
        "CREATE INDEX notify_deliveries_failed_idx ON notify_deliveries (last_at DESC) "
        "WHERE status <> 'ok' AND attempts > 0"
    )
    op.execute("""
        CREATE TABLE notify_attempts (
            id             bigserial PRIMARY KEY,
            delivery_id    bigint NOT NULL REFERENCES notify_deliveries (id),
            attempt        integer NOT NULL CHECK (attempt >= 1),
            at             timestamptz NOT NULL,
            outcome        text NOT NULL CHECK (outcome IN ('ok', 'failed')),
            http_status    integer,
            error          text,
            next_retry_at  timestamptz,
            UNIQUE (delivery_id, attempt)
        )
    """)
    op.execute("""
        CREATE TRIGGER notify_attempts_append_only BEFORE UPDATE OR DELETE ON notify_attempts
        FOR EACH ROW EXECUTE FUNCTION fsar_reject_change()
    """)
    # The default privileges (revision 0017) give fsar_viewer SELECT on what the migrating
    # role creates; said again here so the grant does not hang on who ran 0017.
    for table in TABLES:
        op.execute(f"GRANT SELECT ON {table} TO fsar_viewer")
    for sequence in SEQUENCES:
        op.execute(f"GRANT SELECT ON SEQUENCE {sequence} TO fsar_viewer")
    for statement in replace_sql((), notify_functions.FUNCTIONS_0037, "fsar_operator"):
        op.execute(statement)


def downgrade() -> None:
    for fn in notify_functions.FUNCTIONS_0037:
        op.execute(fn.drop_sql())
    op.execute("DROP TABLE notify_attempts")
    op.execute("DROP TABLE notify_deliveries")
    op.execute("DROP TABLE notify_states")
    op.execute("DROP TABLE notify_events")
