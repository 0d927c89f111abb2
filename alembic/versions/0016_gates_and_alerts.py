"""Audit gates that act: overrides, scopes beyond the task type, built-in audits; drift
alerts that can be acknowledged with a reason.

- `audit_runs.verdict` may be 'inconclusive' (too few samples, or a zero baseline): it
  never blocks — a gate that cannot judge must not stop the fleet, nor pass silently.
- Two metrics join the list: `sensitive_results` (succeeded results in the window in
  which the redaction detector finds personal data or a secret) and
  `broken_rollback_artifacts` (rollout targets whose rollback revision's artifact no
  longer matches its sha256, or whose rehearsal fails): a broken rollback artifact is a
  failing hard gate, as the audit issue asks.
- `audit_gate_overrides`: an operator lets a failing hard gate's scope run anyway, with a
  reason (and optionally until a time). An override counts (view `live_gate_overrides`)
  while it is newer than the gate's latest 'pass' and not expired: once the gate passes
  again the override is spent, and a later failure blocks again.
- `execution_blocks` is rebuilt: gate rows carry the scope's `ai_model` as well as its
  task type (a rollout-scoped gate blocks its rollout target's task type) and skip
  overridden gates. The claim (db/executor.py) matches both.
- Built-in gates (`builtin` = true, names `builtin:…`), on by default; all soft except
  `builtin:rollback-artifacts`. Their thresholds are in the table, so operators tune them
  with `fsar-tui audit gate set`.
- `drift_alerts.ack_reason`, and at most one open (firing or acked) alert per indicator
  and scope, so a detector that keeps firing updates its alert instead of piling new ones.

Revision ID: 0016_gates_and_alerts
Revises: 0015_duration_sketches
"""

from alembic import op

from fsar_tui.db.migrations import revision_module

revision = "0016_gates_and_alerts"
down_revision = "0015_duration_sketches"
branch_labels = None
depends_on = None

OLD_METRICS = (
    "failure_rate",
    "p90_run_time",
    "cost_per_success",
    "roi",
    "retry_rate",
    "anomaly_count",
    "open_blocking_proposals",
    "succeeded_without_result_rate",
)
METRICS = OLD_METRICS + ("sensitive_results", "broken_rollback_artifacts")

# (name, metric, window, comparator, threshold, hard, baseline window, description). As in
# every gate, comparator and threshold are the condition to PASS (Argo's successCondition).
BUILTIN_GATES = (
    (
        "builtin:failure-rate-drift",
        "failure_rate",
        "1 hour",
        "<=",
        2.0,
        False,
        "24 hours",
        "silent degradation: failure rate of the last hour over the day before, as a ratio",
    ),
    (
        "builtin:p90-drift",
        "p90_run_time",
        "1 hour",
        "<=",
        1.5,
        False,
        "7 days",
        "silent degradation: p90 run time of the last hour over the week before, as a ratio",
    ),
    (
        "builtin:cost-per-success-drift",
        "cost_per_success",
        "1 hour",
        "<=",
        1.5,
        False,
        "7 days",
        "silent degradation: cost per success of the last hour over the week before, as a ratio",
    ),
    (
        "builtin:retry-rate-drift",
        "retry_rate",
        "1 hour",
        "<=",
        2.0,
        False,
        "24 hours",
        "silent degradation: share of finished tasks that needed a retry, last hour over the day before",
    ),
    (
        "builtin:trust-inflation",
        "succeeded_without_result_rate",
        "1 hour",
        "<=",
        0.0,
        False,
        None,
        "trust inflation: succeeded with an empty result, zero run time, zero tokens or no event trail",
    ),
    (
        "builtin:sensitive-results",
        "sensitive_results",
        "1 hour",
        "<=",
        0.0,
        False,
        None,
        "personal data or secrets in succeeded results (the redaction detector)",
    ),
    (
        "builtin:anomalies",
        "anomaly_count",
        "1 hour",
        "<=",
        0.0,
        False,
        None,
        "tasks whose cost, run time or tokens are robust-z outliers for their type x model",
    ),
    (
        "builtin:rollback-artifacts",
        "broken_rollback_artifacts",
        "1 hour",
        "<=",
        0.0,
        True,
        None,
        "every rollout target's rollback artifact re-hashes and its rollback rehearses cleanly",
    ),
)

OLD_BLOCKS_VIEW = revision_module(__file__, "0010_execution_control.py").BLOCKS_VIEW

BLOCKS_VIEW = """
    CREATE VIEW execution_blocks AS
    SELECT p.task_type, 'proposal'::text AS source, p.id AS ref,
           format('FSAR proposal %s (severity %s) blocks execution', p.id, p.severity) AS reason,
           NULL::text AS ai_model
    FROM fsar_proposals p
    WHERE p.block_execution AND p.block_lifted_at IS NULL AND p.status IN ('new', 'accepted')
    UNION ALL
    SELECT coalesce(g.scope ->> 'task_type', (SELECT ro.task_type FROM rollouts ro WHERE ro.target = g.scope ->> 'rollout')),
           'gate', g.name, format('hard audit gate %s failed at %s', g.name, r.at), g.scope ->> 'ai_model'
    FROM audit_gates g
    JOIN LATERAL (SELECT verdict, at FROM audit_runs WHERE gate_id = g.id ORDER BY at DESC, id DESC LIMIT 1) r ON true
    WHERE g.hard AND g.enabled AND r.verdict = 'fail'
      AND NOT EXISTS (SELECT 1 FROM live_gate_overrides o WHERE o.gate_id = g.id)
"""  # noqa: E501 - SQL of an applied revision, kept as it ran

# The rule for an override that counts, stated once: the blocks and the screens read it.
LIVE_OVERRIDES_VIEW = """
    CREATE VIEW live_gate_overrides AS
    SELECT o.* FROM audit_gate_overrides o
    WHERE (o.expires_at IS NULL OR o.expires_at > now())
      AND o.at > coalesce((SELECT max(p.at) FROM audit_runs p WHERE p.gate_id = o.gate_id AND p.verdict = 'pass'),
                          '-infinity')
"""


def _metric_check(metrics: tuple[str, ...]) -> str:
    return "CHECK (metric IN ({}))".format(", ".join(f"'{m}'" for m in metrics))


def upgrade() -> None:
    op.execute("ALTER TABLE audit_runs DROP CONSTRAINT audit_runs_verdict_check")
    op.execute(
        "ALTER TABLE audit_runs ADD CONSTRAINT audit_runs_verdict_check "
        "CHECK (verdict IN ('pass', 'fail', 'error', 'inconclusive'))"
    )
    op.execute("ALTER TABLE audit_gates DROP CONSTRAINT audit_gates_metric_check")
    op.execute(f"ALTER TABLE audit_gates ADD CONSTRAINT audit_gates_metric_check {_metric_check(METRICS)}")
    op.execute(
        "ALTER TABLE audit_gates ADD COLUMN builtin boolean NOT NULL DEFAULT false, "
        "ADD COLUMN description text NOT NULL DEFAULT ''"
    )
    # Only the keys the evaluator and the blocks understand: a typo must not widen a gate to everything.
    op.execute("""ALTER TABLE audit_gates ADD CONSTRAINT audit_gates_scope_keys CHECK (
                      jsonb_typeof(scope) = 'object' AND scope - 'task_type' - 'ai_model' - 'rollout' = '{}'::jsonb)""")
    op.execute("""
        CREATE TABLE audit_gate_overrides (
            id          bigserial PRIMARY KEY,
            gate_id     bigint NOT NULL REFERENCES audit_gates (id) ON DELETE CASCADE,
            at          timestamptz NOT NULL DEFAULT clock_timestamp(),
            actor       text NOT NULL,
            reason      text NOT NULL CHECK (btrim(reason) <> ''),
            expires_at  timestamptz
        )
    """)
    op.execute("CREATE INDEX audit_gate_overrides_gate_idx ON audit_gate_overrides (gate_id, at DESC)")
    op.execute("CREATE INDEX audit_runs_gate_verdict_idx ON audit_runs (gate_id, verdict, at DESC)")
    op.execute(LIVE_OVERRIDES_VIEW)
    op.execute("DROP VIEW execution_blocks")
    op.execute(BLOCKS_VIEW)
    # An override changes what may run: tell listeners as a verdict does.
    op.execute("""
        CREATE FUNCTION fsar_override_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('fsar_events', json_build_object(
                'kind', 'block', 'source', 'override', 'ref', NEW.gate_id)::text);
            RETURN NULL;
        END $$
    """)
    op.execute("""CREATE TRIGGER audit_gate_overrides_control AFTER INSERT ON audit_gate_overrides
                  FOR EACH ROW EXECUTE FUNCTION fsar_override_changed()""")
    for name, metric, window, comparator, threshold, hard, baseline, description in BUILTIN_GATES:
        op.execute(
            "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold, hard, baseline_window, "
            "builtin, description) VALUES ('{}', '{}', '{}', '{}', {}, {}, {}, true, '{}') "
            "ON CONFLICT (name) DO NOTHING".format(
                name,
                metric,
                window,
                comparator,
                threshold,
                "true" if hard else "false",
                f"'{baseline}'" if baseline else "NULL",
                description.replace("'", "''"),
            )
        )
    op.execute("ALTER TABLE drift_alerts ADD COLUMN ack_reason text")
    op.execute(
        "CREATE UNIQUE INDEX drift_alerts_one_open_idx ON drift_alerts (indicator, scope) WHERE state <> 'resolved'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX drift_alerts_one_open_idx")
    op.execute("ALTER TABLE drift_alerts DROP COLUMN ack_reason")
    op.execute("DROP VIEW execution_blocks")
    op.execute(OLD_BLOCKS_VIEW)
    op.execute("DROP VIEW live_gate_overrides")
    op.execute("DROP TRIGGER audit_gate_overrides_control ON audit_gate_overrides")
    op.execute("DROP FUNCTION fsar_override_changed()")
    op.execute("DROP INDEX audit_runs_gate_verdict_idx")
    op.execute("DROP TABLE audit_gate_overrides")
    op.execute(
        "DELETE FROM audit_gates WHERE builtin OR metric NOT IN ({})".format(", ".join(f"'{m}'" for m in OLD_METRICS))
    )
    op.execute("ALTER TABLE audit_gates DROP CONSTRAINT audit_gates_scope_keys")
    op.execute("ALTER TABLE audit_gates DROP COLUMN description, DROP COLUMN builtin")
    op.execute("ALTER TABLE audit_gates DROP CONSTRAINT audit_gates_metric_check")
    op.execute(f"ALTER TABLE audit_gates ADD CONSTRAINT audit_gates_metric_check {_metric_check(OLD_METRICS)}")
    op.execute("UPDATE audit_runs SET verdict = 'error' WHERE verdict = 'inconclusive'")
    op.execute("ALTER TABLE audit_runs DROP CONSTRAINT audit_runs_verdict_check")
    op.execute(
        "ALTER TABLE audit_runs ADD CONSTRAINT audit_runs_verdict_check CHECK (verdict IN ('pass', 'fail', 'error'))"
    )
