"""fsar_proposals: the FSAR Proposal Reports the AI system writes about itself.

Identified by the report's own id; `source_sha256` makes re-ingestion of the same
report a no-op and a different report under the same id a detectable conflict.
Tasks may name the proposal that originated them.

Revision ID: 0008_fsar_proposals
Revises: 0007_audit
"""

from alembic import op

revision = "0008_fsar_proposals"
down_revision = "0007_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE fsar_proposals (
            id               text PRIMARY KEY,
            reported_at      timestamptz NOT NULL,
            severity         smallint NOT NULL CHECK (severity BETWEEN 0 AND 10),
            block_execution  boolean NOT NULL DEFAULT false,
            block_lifted_at  timestamptz,
            task_type        text,
            body             text NOT NULL,
            risks            jsonb NOT NULL DEFAULT '[]'::jsonb,
            mitigations      jsonb NOT NULL DEFAULT '[]'::jsonb,
            extra_headers    jsonb NOT NULL DEFAULT '{}'::jsonb,
            status           text NOT NULL DEFAULT 'new'
                             CHECK (status IN ('new', 'accepted', 'rejected', 'implemented')),
            source_sha256    text NOT NULL CHECK (source_sha256 ~ '^[0-9a-f]{64}$'),
            ingested_at      timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("""
        CREATE INDEX fsar_proposals_blocking_idx ON fsar_proposals (task_type)
        WHERE block_execution AND block_lifted_at IS NULL
    """)
    op.execute("ALTER TABLE execution_tasks ADD COLUMN proposal_id text REFERENCES fsar_proposals (id)")


def downgrade() -> None:
    op.execute("ALTER TABLE execution_tasks DROP COLUMN proposal_id")
    op.execute("DROP TABLE fsar_proposals")
