"""audit_gates, audit_runs and drift_alerts.

A gate is a metric over a scope and a window compared with a threshold (optionally
relative to a baseline window), hard or soft; an audit run records one verdict.
A drift alert follows a leading indicator from firing to acked to resolved.

Revision ID: 0007_audit
Revises: 0006_rollouts
"""

from alembic import op

revision = "0007_audit"
down_revision = "0006_rollouts"
branch_labels = None
depends_on = None

METRICS = (
    "failure_rate",
    "p90_run_time",
    "cost_per_success",
    "roi",
    "retry_rate",
    "anomaly_count",
    "open_blocking_proposals",
    "succeeded_without_result_rate",
)


def upgrade() -> None:
    metrics = ", ".join(f"'{m}'" for m in METRICS)
    op.execute(f"""
        CREATE TABLE audit_gates (
            id               bigserial PRIMARY KEY,
            name             text NOT NULL UNIQUE,
            metric           text NOT NULL CHECK (metric IN ({metrics})),
            scope            jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            time_window      interval NOT NULL CHECK (time_window > interval '0'),
            comparator       text NOT NULL CHECK (comparator IN ('<', '<=', '>', '>=')),
            threshold        numeric NOT NULL,
            hard             boolean NOT NULL DEFAULT false,
            baseline_window  interval CHECK (baseline_window IS NULL OR baseline_window > interval '0'),
            enabled          boolean NOT NULL DEFAULT true,
            created_at       timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("""
        CREATE TABLE audit_runs (
            id           bigserial PRIMARY KEY,
            gate_id      bigint NOT NULL REFERENCES audit_gates (id) ON DELETE CASCADE,
            at           timestamptz NOT NULL DEFAULT now(),
            value        numeric,
            baseline     numeric,
            verdict      text NOT NULL CHECK (verdict IN ('pass', 'fail', 'error')),
            sample_size  bigint,
            details      jsonb NOT NULL DEFAULT '{}'::jsonb
        )
    """)
    op.execute("CREATE INDEX audit_runs_gate_at_idx ON audit_runs (gate_id, at DESC)")
    op.execute("""
        CREATE TABLE drift_alerts (
            id           bigserial PRIMARY KEY,
            indicator    text NOT NULL,
            scope        jsonb NOT NULL DEFAULT '{}'::jsonb,
            baseline     numeric,
            current      numeric,
            state        text NOT NULL DEFAULT 'firing' CHECK (state IN ('firing', 'acked', 'resolved')),
            opened_at    timestamptz NOT NULL DEFAULT now(),
            acked_at     timestamptz,
            acked_by     text,
            resolved_at  timestamptz,
            details      jsonb NOT NULL DEFAULT '{}'::jsonb,
            CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
            CHECK (state = 'firing' OR acked_at IS NOT NULL OR resolved_at IS NOT NULL)
        )
    """)
    op.execute("CREATE INDEX drift_alerts_open_idx ON drift_alerts (opened_at) WHERE state <> 'resolved'")


def downgrade() -> None:
    op.execute("DROP TABLE drift_alerts")
    op.execute("DROP TABLE audit_runs")
    op.execute("DROP TABLE audit_gates")
