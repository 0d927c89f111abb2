"""Least-privilege roles, logged reveals, proposals' checklists and linked tasks.

Three NOLOGIN roles to grant to logins (`GRANT fsar_operator TO alice`), each including
the one before it:
- `fsar_viewer`: reads everything (every screen, report and export). Cannot write.
- `fsar_operator`: the actions — retry/cancel/requeue (only the lifecycle columns of
  execution_tasks), rollbacks, accept/reject/implement proposals and lift their blocks,
  ingest FSAR reports, acknowledge alerts, the scheduled audit pass (verdicts, drift
  alerts) — plus INSERT on the tables the task triggers feed (events, counters, samples),
  since triggers run as the role that fired them. operator_actions: INSERT only.
- `fsar_admin`: reveal raw data (EXECUTE on `fsar_record_reveal`, which appends the
  reveal to operator_actions: no reveal without its log row), anonymize (UPDATE of
  payload/result/error, ledger metadata and Stripe event payloads), audit gates and
  overrides.
Postgres enforces the writes and the logged reveal whatever the app shows; it cannot
redact what a role may SELECT (a viewer with psql reads raw payloads — fsar-tui redacts
client-side). Tables later revisions create get the viewer's SELECT by default
privileges; their write grants must be added by those revisions.

The task triggers run as the role that fired them and, now and then, fold the counters
and samples they append to (fsar_compact_task_counts, fsar_fold_duration_samples, …).
Those housekeeping functions become SECURITY DEFINER (with a pinned search_path), so an
operator's retry or cancel needs INSERT on the append-only tables only, never DELETE on
the rollups. A later `CREATE OR REPLACE` of one of them must say SECURITY DEFINER again.

Roles are cluster-wide: another
database of the same cluster may have created them already, so creation is skipped when
they exist, and the downgrade only drops them when nothing else depends on them.

Revision ID: 0017_governance_roles
Revises: 0016_gates_and_alerts
"""

from alembic import op

revision = "0017_governance_roles"
down_revision = "0016_gates_and_alerts"
branch_labels = None
depends_on = None

ROLES = ("fsar_viewer", "fsar_operator", "fsar_admin")

# The tables an operator's actions write through triggers (task events, counters,
# duration samples, dirty marks) or directly.
TRIGGER_FED = ("task_events", "task_count_deltas", "task_duration_samples", "duration_sketch_dirty")
HOUSEKEEPING = (
    "fsar_compact_task_counts()",
    "fsar_fold_duration_samples()",
    "fsar_close_blocks_and_rebuild_sketches()",
    "fsar_rebuild_sketches()",
)

GRANTS = [
    "GRANT USAGE ON SCHEMA public TO fsar_viewer",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO fsar_viewer",
    "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO fsar_viewer",
    "GRANT fsar_viewer TO fsar_operator",
    "GRANT fsar_operator TO fsar_admin",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO fsar_operator",
    "GRANT INSERT ON operator_actions TO fsar_operator",
    "GRANT UPDATE (status, finished_at, lease_expires_at, queued_at, max_attempts) ON execution_tasks TO fsar_operator",
    f"GRANT INSERT ON {', '.join(TRIGGER_FED)} TO fsar_operator",
    "GRANT INSERT, UPDATE (status, block_lifted_at, checklist) ON fsar_proposals TO fsar_operator",
    "GRANT INSERT, UPDATE ON drift_alerts TO fsar_operator",
    "GRANT INSERT ON audit_runs TO fsar_operator",
    "GRANT INSERT ON rollout_revisions TO fsar_operator",
    "GRANT UPDATE (active_revision, updated_at) ON rollouts TO fsar_operator",
    "GRANT INSERT, UPDATE ON audit_gates, audit_gate_overrides TO fsar_admin",
    "GRANT UPDATE (payload, result, error) ON execution_tasks TO fsar_admin",
    "GRANT UPDATE (metadata) ON ledger_entries TO fsar_admin",
    "GRANT UPDATE (payload) ON stripe_events TO fsar_admin",
    "REVOKE ALL ON FUNCTION fsar_record_reveal(text, text, text) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION fsar_record_reveal(text, text, text) TO fsar_admin",
]


def upgrade() -> None:
    for role in ROLES:
        op.execute(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} NOLOGIN;
                END IF;
            END $$""")
    # A checklist tick per risk/mitigation: {"mitigations/0": {"by": …, "at": …}, …}.
    op.execute("ALTER TABLE fsar_proposals ADD COLUMN checklist jsonb NOT NULL DEFAULT '{}'::jsonb")
    # The proposals screen lists a proposal's tasks; most tasks have none.
    op.execute(
        "CREATE INDEX execution_tasks_proposal_idx ON execution_tasks (proposal_id) WHERE proposal_id IS NOT NULL"
    )
    # Not SECURITY DEFINER: it runs as the caller, so the log row names the real role,
    # and EXECUTE (fsar_admin only) is what "allowed to see raw data" means in Postgres.
    op.execute("""
        CREATE FUNCTION fsar_record_reveal(actor text, target text, reason text) RETURNS bigint
        LANGUAGE sql VOLATILE AS $$
            INSERT INTO operator_actions (actor, action, target, reason)
            VALUES (actor, 'reveal', target, reason) RETURNING seq
        $$
    """)
    for grant in GRANTS:
        op.execute(grant)
    for function in HOUSEKEEPING:
        op.execute(f"ALTER FUNCTION {function} SECURITY DEFINER SET search_path = public, pg_temp")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO fsar_viewer")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON SEQUENCES TO fsar_viewer")


def downgrade() -> None:
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM fsar_viewer")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON SEQUENCES FROM fsar_viewer")
    for function in HOUSEKEEPING:
        op.execute(f"ALTER FUNCTION {function} SECURITY INVOKER RESET search_path")
    for role in reversed(ROLES):
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
        op.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
    op.execute("DROP FUNCTION fsar_record_reveal(text, text, text)")
    op.execute("DROP INDEX execution_tasks_proposal_idx")
    op.execute("ALTER TABLE fsar_proposals DROP COLUMN checklist")
    for role in reversed(ROLES):
        # Another database of the cluster may still grant to it: then it stays.
        op.execute(f"""
            DO $$ BEGIN
                DROP ROLE IF EXISTS {role};
            EXCEPTION WHEN dependent_objects_still_exist THEN
                RAISE NOTICE 'role {role} kept: other databases still use it';
            END $$""")
