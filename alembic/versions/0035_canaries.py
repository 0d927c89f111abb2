"""Canaries (issue 19): deploy a revision to a slice of a target's tasks, judge it, promote
in steps or abort.

- `rollout_canaries`: one row per canary — the target, the canary and stable revision
  numbers, the steps (weights in %, the last 100), the current step and weight, the
  minimum time per step (`interval_s`), whether a passing step waits for an operator's
  promote (`manual`), the state (running → promoted | aborted; at most one running per
  target), who started and ended it and why, and the judge's latest judgement and why
  the weight holds. Written only by the functions of db/canary_functions.py.
- `canary_analyses`: every analysis the judge recorded (append-only).
- `rollout_routes` (view): per target, the stable (active) revision and, while a canary
  runs, the canary revision and its weight — what the claim reads to stamp a task.
- `execution_blocks` gains `revision_id`: a hard gate scoped to a target's canary (scope
  `{"rollout": T, "canary": true}`) blocks that canary revision only, while one runs;
  the claim then sends the canary's share of the traffic to stable (db/executor.py).
- audit_gates' scope may hold `canary: true` (with `rollout`).
- An index on execution_tasks (rollout_revision_id, finished_at): the judge reads a
  step's window of the two revisions' tasks.
- The functions (deploy, decide, record), the rollback re-created to abort a running
  canary, grants to fsar_operator; a NOTIFY on `fsar_events` ({"kind": "rollout", …})
  when a canary starts, moves or ends, as a rollback sends one.

Revision ID: 0035_canaries
Revises: 0034_finite_task_times
"""

from alembic import op

from fsar_tui.db import action_functions, canary_functions
from fsar_tui.db.migrations import revision_module

revision = "0035_canaries"
down_revision = "0034_finite_task_times"
branch_labels = None
depends_on = None

OLD_BLOCKS_VIEW = revision_module(__file__, "0016_gates_and_alerts.py").BLOCKS_VIEW

BLOCKS_VIEW = """
    CREATE OR REPLACE VIEW execution_blocks AS
    SELECT p.task_type, 'proposal'::text AS source, p.id AS ref,
           format('FSAR proposal %s (severity %s) blocks execution', p.id, p.severity) AS reason,
           NULL::text AS ai_model, NULL::bigint AS revision_id
    FROM fsar_proposals p
    WHERE p.block_execution AND p.block_lifted_at IS NULL AND p.status IN ('new', 'accepted')
    UNION ALL
    SELECT coalesce(g.scope ->> 'task_type', (SELECT ro.task_type FROM rollouts ro WHERE ro.target = g.scope ->> 'rollout')),
           'gate', g.name, format('hard audit gate %s failed at %s', g.name, r.at), g.scope ->> 'ai_model',
           c.revision_id
    FROM audit_gates g
    JOIN LATERAL (SELECT verdict, at FROM audit_runs WHERE gate_id = g.id ORDER BY at DESC, id DESC LIMIT 1) r ON true
    LEFT JOIN LATERAL (SELECT rr.id AS revision_id FROM rollouts ro
                       JOIN rollout_canaries k ON k.rollout_id = ro.id AND k.state = 'running'
                       JOIN rollout_revisions rr ON rr.rollout_id = ro.id AND rr.revision = k.canary_revision
                       WHERE ro.target = g.scope ->> 'rollout' AND g.scope ? 'canary') c ON true
    WHERE g.hard AND g.enabled AND r.verdict = 'fail'
      AND NOT EXISTS (SELECT 1 FROM live_gate_overrides o WHERE o.gate_id = g.id)
      AND (NOT g.scope ? 'canary' OR c.revision_id IS NOT NULL)
"""  # noqa: E501 - SQL of a revision, kept as it runs

ROUTES_VIEW = """
    CREATE VIEW rollout_routes AS
    SELECT r.id AS rollout_id, r.target, r.task_type,
           s.id AS revision_id, s.revision, s.artifact,
           c.id AS canary_id, cr.id AS canary_revision_id, cr.revision AS canary_revision,
           cr.artifact AS canary_artifact, c.weight AS canary_weight
    FROM rollouts r
    JOIN rollout_revisions s ON s.rollout_id = r.id AND s.revision = r.active_revision
    LEFT JOIN rollout_canaries c ON c.rollout_id = r.id AND c.state = 'running'
    LEFT JOIN rollout_revisions cr ON cr.rollout_id = r.id AND cr.revision = c.canary_revision
"""

CANARY_NOTIFY = """
    CREATE FUNCTION fsar_canary_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
        PERFORM pg_notify('fsar_events', json_build_object(
            'kind', 'rollout', 'target', (SELECT r.target FROM rollouts r WHERE r.id = NEW.rollout_id),
            'canary', NEW.id, 'state', NEW.state, 'weight', NEW.weight, 'step', NEW.step)::text);
        RETURN NULL;
    END
    $$
"""

SCOPE_KEYS_OLD = """jsonb_typeof(scope) = 'object' AND scope - 'task_type' - 'ai_model' - 'rollout' = '{}'::jsonb"""
SCOPE_KEYS = """jsonb_typeof(scope) = 'object' AND scope - 'task_type' - 'ai_model' - 'rollout' - 'canary' = '{}'::jsonb
                AND (NOT scope ? 'canary' OR (scope -> 'canary' = 'true'::jsonb AND scope ? 'rollout'))"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE rollout_canaries (
            id               bigserial PRIMARY KEY,
            rollout_id       bigint NOT NULL REFERENCES rollouts (id),
            canary_revision  integer NOT NULL,
            stable_revision  integer NOT NULL,
            steps            integer[] NOT NULL CHECK (cardinality(steps) BETWEEN 1 AND 20),
            step             integer NOT NULL DEFAULT 0 CHECK (step >= 0),
            weight           integer NOT NULL CHECK (weight BETWEEN 0 AND 100),
            interval_s       integer NOT NULL CHECK (interval_s BETWEEN 0 AND 604800),
            manual           boolean NOT NULL DEFAULT false,
            state            text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'promoted', 'aborted')),
            started_at       timestamptz NOT NULL DEFAULT now(),
            started_by       text NOT NULL,
            start_reason     text NOT NULL,
            step_started_at  timestamptz NOT NULL DEFAULT now(),
            ended_at         timestamptz,
            ended_by         text,
            end_reason       text,
            judgement        jsonb,
            judged_at        timestamptz,
            hold_reason      text,
            FOREIGN KEY (rollout_id, canary_revision) REFERENCES rollout_revisions (rollout_id, revision),
            FOREIGN KEY (rollout_id, stable_revision) REFERENCES rollout_revisions (rollout_id, revision),
            CHECK ((state = 'running') = (ended_at IS NULL))
        )
    """)
    op.execute("CREATE UNIQUE INDEX rollout_canaries_running ON rollout_canaries (rollout_id) WHERE state = 'running'")
    op.execute("""
        CREATE TABLE canary_analyses (
            id          bigserial PRIMARY KEY,
            canary_id   bigint NOT NULL REFERENCES rollout_canaries (id),
            at          timestamptz NOT NULL DEFAULT clock_timestamp(),
            step        integer NOT NULL,
            verdict     text NOT NULL CHECK (verdict IN ('pass', 'fail', 'inconclusive', 'error')),
            score       numeric,
            judgement   jsonb NOT NULL,
            hold_reason text
        )
    """)
    op.execute("CREATE INDEX canary_analyses_canary_idx ON canary_analyses (canary_id, at DESC)")
    op.execute("""
        CREATE TRIGGER canary_analyses_append_only BEFORE UPDATE OR DELETE ON canary_analyses
        FOR EACH ROW EXECUTE FUNCTION fsar_reject_change()
    """)
    op.execute(
        "CREATE INDEX execution_tasks_revision_finished_idx ON execution_tasks (rollout_revision_id, finished_at) "
        "WHERE rollout_revision_id IS NOT NULL"
    )
    op.execute(ROUTES_VIEW)
    op.execute("ALTER TABLE audit_gates DROP CONSTRAINT audit_gates_scope_keys")
    op.execute(f"ALTER TABLE audit_gates ADD CONSTRAINT audit_gates_scope_keys CHECK ({SCOPE_KEYS})")
    op.execute(BLOCKS_VIEW)
    op.execute(CANARY_NOTIFY)
    op.execute("REVOKE ALL ON FUNCTION fsar_canary_changed() FROM PUBLIC")
    op.execute("""
        CREATE TRIGGER rollout_canaries_control AFTER INSERT OR UPDATE OF state, weight, step ON rollout_canaries
        FOR EACH ROW EXECUTE FUNCTION fsar_canary_changed()
    """)
    for fn in canary_functions.FUNCTIONS_0035:
        op.execute(fn.create_sql())
    for fn in canary_functions.OPERATOR_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {fn.signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn.signature} TO fsar_operator")


def downgrade() -> None:
    # Dropping the tables ends a running canary without a move anyone logged: refuse.
    op.execute("""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM rollout_canaries WHERE state = 'running') THEN
                RAISE EXCEPTION 'a canary is running: promote or abort it before downgrading below 0035'
                    USING ERRCODE = 'object_in_use';
            END IF;
        END $$""")
    op.execute(action_functions.ROLLBACK.create_sql())
    for fn in canary_functions.OPERATOR_FUNCTIONS:
        op.execute(fn.drop_sql())
    op.execute("DROP TRIGGER rollout_canaries_control ON rollout_canaries")
    op.execute("DROP FUNCTION fsar_canary_changed()")
    op.execute("DROP VIEW execution_blocks")
    op.execute(OLD_BLOCKS_VIEW)
    op.execute("GRANT SELECT ON execution_blocks TO fsar_viewer")
    # A canary-scoped gate has no meaning before this revision: disabled, not widened to the target.
    op.execute("UPDATE audit_gates SET scope = scope - 'canary', enabled = false WHERE scope ? 'canary'")
    op.execute("ALTER TABLE audit_gates DROP CONSTRAINT audit_gates_scope_keys")
    op.execute(f"ALTER TABLE audit_gates ADD CONSTRAINT audit_gates_scope_keys CHECK ({SCOPE_KEYS_OLD})")
    op.execute("DROP VIEW rollout_routes")
    op.execute("DROP INDEX execution_tasks_revision_finished_idx")
    op.execute("DROP TABLE canary_analyses")
    op.execute("DROP TABLE rollout_canaries")
