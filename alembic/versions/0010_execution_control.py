"""Execution control: the blocks every executor obeys, and control events.

- `execution_blocks` (view): one row per reason a task type must not be claimed now —
  an open FSAR proposal with block_execution (status new or accepted, block not
  lifted), or a hard, enabled audit gate whose latest verdict is 'fail'. A NULL
  task_type blocks every type (a gate with no type in its scope). Executors filter
  their claim with it, so a block takes effect at the commit that creates it.
- `active_rollout_revisions` (view): per rollout target, the active revision's id and
  artifact; the claim stamps a task with the one for its type (else the fleet-wide one).
- Control NOTIFYs on `fsar_events` when a rollout's active revision changes, a
  proposal's blocking state changes, or a gate verdict is recorded, so listeners
  refresh at once instead of polling:
      {"kind": "rollout", "target": …, "revision": …}
      {"kind": "block", "source": "proposal"|"gate", "task_type": …}

Revision ID: 0010_execution_control
Revises: 0009_operator_actions
"""

from alembic import op

revision = "0010_execution_control"
down_revision = "0009_operator_actions"
branch_labels = None
depends_on = None

# A module constant because 0016 rebuilds the view and restores this one on downgrade.
BLOCKS_VIEW = """
        CREATE VIEW execution_blocks AS
        SELECT p.task_type, 'proposal'::text AS source, p.id AS ref,
               format('FSAR proposal %s (severity %s) blocks execution', p.id, p.severity) AS reason
        FROM fsar_proposals p
        WHERE p.block_execution AND p.block_lifted_at IS NULL AND p.status IN ('new', 'accepted')
        UNION ALL
        SELECT g.scope ->> 'task_type', 'gate', g.name,
               format('hard audit gate %s failed at %s', g.name, r.at)
        FROM audit_gates g
        JOIN LATERAL (SELECT verdict, at FROM audit_runs WHERE gate_id = g.id ORDER BY at DESC, id DESC LIMIT 1) r ON true
        WHERE g.hard AND g.enabled AND r.verdict = 'fail'
"""  # noqa: E501 - SQL of an applied revision, kept as it ran


def upgrade() -> None:
    op.execute(BLOCKS_VIEW)
    op.execute("""
        CREATE VIEW active_rollout_revisions AS
        SELECT r.id AS rollout_id, r.target, r.kind, r.task_type, rr.id AS revision_id, rr.revision, rr.artifact
        FROM rollouts r
        JOIN rollout_revisions rr ON rr.rollout_id = r.id AND rr.revision = r.active_revision
    """)
    op.execute("""
        CREATE FUNCTION fsar_control_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'rollouts' THEN
                PERFORM pg_notify('fsar_events', json_build_object(
                    'kind', 'rollout', 'target', NEW.target, 'revision', NEW.active_revision)::text);
            ELSIF TG_TABLE_NAME = 'fsar_proposals' THEN
                PERFORM pg_notify('fsar_events', json_build_object(
                    'kind', 'block', 'source', 'proposal', 'ref', NEW.id, 'task_type', NEW.task_type)::text);
            ELSE
                PERFORM pg_notify('fsar_events', json_build_object(
                    'kind', 'block', 'source', 'gate', 'ref', NEW.gate_id, 'verdict', NEW.verdict)::text);
            END IF;
            RETURN NULL;
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER rollouts_control AFTER INSERT OR UPDATE OF active_revision ON rollouts
        FOR EACH ROW EXECUTE FUNCTION fsar_control_changed()
    """)
    op.execute("""
        CREATE TRIGGER fsar_proposals_control
        AFTER INSERT OR UPDATE OF block_execution, block_lifted_at, status ON fsar_proposals
        FOR EACH ROW EXECUTE FUNCTION fsar_control_changed()
    """)
    op.execute("""
        CREATE TRIGGER audit_runs_control AFTER INSERT ON audit_runs
        FOR EACH ROW EXECUTE FUNCTION fsar_control_changed()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_runs_control ON audit_runs")
    op.execute("DROP TRIGGER fsar_proposals_control ON fsar_proposals")
    op.execute("DROP TRIGGER rollouts_control ON rollouts")
    op.execute("DROP FUNCTION fsar_control_changed()")
    op.execute("DROP VIEW active_rollout_revisions")
    op.execute("DROP VIEW execution_blocks")
