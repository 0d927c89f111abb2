"""rollouts and rollout_revisions: versioned artifacts, one active revision per target.

A rollout target is what the agent system runs (a model, prompt, policy or config).
Each revision is a full artifact snapshot (jsonb) with its sha256. A rollback creates a
new revision copying an older artifact (as Helm does): revisions are never updated or
deleted, so history is never rewritten. `rollouts.active_revision` names the one
active revision; tasks are stamped with the revision they ran under.

Revision ID: 0006_rollouts
Revises: 0005_money
"""

from alembic import op

revision = "0006_rollouts"
down_revision = "0005_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE rollouts (
            id               bigserial PRIMARY KEY,
            target           text NOT NULL UNIQUE,
            kind             text NOT NULL CHECK (kind IN ('model', 'prompt', 'policy', 'config')),
            task_type        text,
            active_revision  integer,
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("""
        CREATE TABLE rollout_revisions (
            id               bigserial PRIMARY KEY,
            rollout_id       bigint NOT NULL REFERENCES rollouts (id),
            revision         integer NOT NULL CHECK (revision >= 1),
            artifact         jsonb NOT NULL,
            sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            created_at       timestamptz NOT NULL DEFAULT now(),
            created_by       text,
            reason           text,
            rollback_of      integer,
            UNIQUE (rollout_id, revision)
        )
    """)
    op.execute("""
        ALTER TABLE rollouts ADD CONSTRAINT rollouts_active_revision_fk
            FOREIGN KEY (id, active_revision) REFERENCES rollout_revisions (rollout_id, revision)
            DEFERRABLE INITIALLY DEFERRED
    """)
    op.execute("""
        CREATE TRIGGER rollout_revisions_append_only
        BEFORE UPDATE OR DELETE ON rollout_revisions
        FOR EACH ROW EXECUTE FUNCTION fsar_reject_change()
    """)
    op.execute("ALTER TABLE execution_tasks ADD COLUMN rollout_revision_id bigint REFERENCES rollout_revisions (id)")


def downgrade() -> None:
    op.execute("ALTER TABLE execution_tasks DROP COLUMN rollout_revision_id")
    op.execute("ALTER TABLE rollouts DROP CONSTRAINT rollouts_active_revision_fk")
    op.execute("DROP TABLE rollout_revisions")
    op.execute("DROP TABLE rollouts")
