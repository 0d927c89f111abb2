"""Least privilege enforced by PostgreSQL: operators change state only through functions
that check the transition and write the operator log; PUBLIC executes nothing of ours.

Until now (revision 0017) fsar_operator could UPDATE execution_tasks.status to anything
('failed' → 'succeeded'), INSERT any rollout revision and move the active one, INSERT a
'pass' into audit_runs (lifting a hard gate's block with no override and no log row),
write drift alerts and proposals, and falsify the queue counters through
task_count_deltas; and any login — a viewer, or a role with no fsar grant — could
EXECUTE the SECURITY DEFINER housekeeping (`fsar_compact_task_counts()`, …): PUBLIC has
EXECUTE on a new function by default. From here:

1. every fsar_* function: EXECUTE revoked from PUBLIC, then granted as
   domain/privileges.py declares: the read helpers to fsar_viewer, the state-changing
   SECURITY DEFINER functions (db/action_functions.py, db/governance_functions.py,
   created here) to fsar_operator or fsar_admin, housekeeping and triggers to nobody
   (the owner). New functions the migrating role creates: no PUBLIC EXECUTE by default;
2. table grants rebuilt: fsar_viewer SELECT on every table, view and sequence; fsar_admin
   UPDATE of the anonymized columns (payload/result/error, ledger metadata, Stripe event
   payloads); nothing else — no INSERT, UPDATE, DELETE or TRUNCATE for any fsar role;
3. the task and ledger triggers that feed counters and rollups (task_events,
   task_count_deltas, task_duration_samples, ledger_daily, payment_funnel_daily) become
   SECURITY DEFINER with a pinned search_path: those tables are written by the
   migration's role only, whoever changed the task;
4. task_events gets the CHECK its statuses always had by construction (the five task
   statuses). It is added NOT VALID and validated when the existing rows satisfy it (rows
   written by hand before — an operator could INSERT there — keep it unvalidated, with a
   NOTICE; new rows are checked either way).

Downgrade restores revision 0017's grants and PUBLIC EXECUTE, the invoker triggers and
fsar_record_reveal as it was, and drops the functions and the CHECK.

Revision ID: 0020_least_privilege
Revises: 0019_operator_log_encoding
"""

from alembic import op

from fsar_tui.db import action_functions, governance_functions, log_functions
from fsar_tui.db.migrations import revision_module

revision = "0020_least_privilege"
down_revision = "0019_operator_log_encoding"
branch_labels = None
depends_on = None

ROLES = ("fsar_viewer", "fsar_operator", "fsar_admin")
STATUSES = "('queued', 'running', 'succeeded', 'failed', 'cancelled')"
TRIGGER_WRITERS = (
    "fsar_task_status_changed()",
    "fsar_task_counts_changed()",
    "fsar_task_counts_truncated()",
    "fsar_task_rollups_changed()",
    "fsar_ledger_daily_changed()",
    "fsar_stripe_event_funnel()",
)
VIEWER_FUNCTIONS = (
    "fsar_sample_metrics(task_duration_samples)",
    "fsar_task_sample(execution_tasks, smallint)",
    "fsar_duration_bucket(double precision)",
)
OPERATOR_FUNCTIONS = action_functions.FUNCTIONS + governance_functions.OPERATOR_FUNCTIONS
ADMIN_FUNCTIONS = governance_functions.ADMIN_FUNCTIONS
ADMIN_COLUMNS = (
    "GRANT UPDATE (payload, result, error) ON execution_tasks TO fsar_admin",
    "GRANT UPDATE (metadata) ON ledger_entries TO fsar_admin",
    "GRANT UPDATE (payload) ON stripe_events TO fsar_admin",
)
# Functions that had an explicit ACL before this revision (0017, 0018, 0019): the others
# had none, i.e. PUBLIC EXECUTE, which the downgrade gives back.
HAD_ACL = {
    "fsar_record_reveal",
    "fsar_prune_audit_runs",
    *(fn.name for fn in log_functions.FUNCTIONS),
}

FSAR_FUNCTIONS = """SELECT p.oid::regprocedure FROM pg_proc p
                    WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'fsar\\_%'"""


def upgrade() -> None:
    op.execute(f"""
        ALTER TABLE task_events ADD CONSTRAINT task_events_statuses
            CHECK ((from_status IS NULL OR from_status IN {STATUSES}) AND to_status IN {STATUSES}) NOT VALID""")
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM task_events WHERE NOT ((from_status IS NULL OR from_status IN {STATUSES})
                                                          AND to_status IN {STATUSES})) THEN
                RAISE NOTICE 'task_events holds rows with unknown statuses: task_events_statuses stays NOT VALID';
            ELSE
                ALTER TABLE task_events VALIDATE CONSTRAINT task_events_statuses;
            END IF;
        END $$""")
    for fn in OPERATOR_FUNCTIONS + ADMIN_FUNCTIONS:
        op.execute(fn.create_sql())
    for function in TRIGGER_WRITERS:
        op.execute(f"ALTER FUNCTION {function} SECURITY DEFINER SET search_path = public, pg_temp")
    op.execute(f"""
        DO $$ DECLARE f regprocedure; BEGIN
            FOR f IN {FSAR_FUNCTIONS} LOOP
                EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
            END LOOP;
        END $$""")
    op.execute("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
    for role in ROLES:
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    op.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO fsar_viewer")
    op.execute("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO fsar_viewer")
    for grant in ADMIN_COLUMNS:
        op.execute(grant)
    for function in VIEWER_FUNCTIONS:
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO fsar_viewer")
    for fn in OPERATOR_FUNCTIONS:
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn.signature} TO fsar_operator")
    for fn in ADMIN_FUNCTIONS:
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn.signature} TO fsar_admin")


def downgrade() -> None:
    v0017 = revision_module(__file__, "0017_governance_roles.py")
    for fn in OPERATOR_FUNCTIONS + ADMIN_FUNCTIONS:
        if fn is not governance_functions.RECORD_REVEAL:
            op.execute(fn.drop_sql())
    op.execute("""
        CREATE OR REPLACE FUNCTION fsar_record_reveal(actor text, target text, reason text) RETURNS bigint
        LANGUAGE sql VOLATILE SECURITY INVOKER AS $$
            INSERT INTO operator_actions (actor, action, target, reason)
            VALUES (actor, 'reveal', target, reason) RETURNING seq
        $$""")
    for function in TRIGGER_WRITERS:
        op.execute(f"ALTER FUNCTION {function} SECURITY INVOKER RESET search_path")
    for function in VIEWER_FUNCTIONS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM fsar_viewer")
    op.execute(f"""
        DO $$ DECLARE f regprocedure; BEGIN
            FOR f IN {FSAR_FUNCTIONS} AND p.proname <> ALL ({_array(HAD_ACL)}) LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
            END LOOP;
        END $$""")
    op.execute("ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC")
    for role in ROLES:
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    for grant in v0017.GRANTS:
        op.execute(grant)
    op.execute("ALTER TABLE task_events DROP CONSTRAINT task_events_statuses")


def _array(names: set[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{n}'" for n in sorted(names)) + "]"
