"""Audit gates can watch attempts without a price (issue 17, bad input).

An attempt that used tokens of a model with no price in force at its start is costed
as unknown, not 0 (revision 0024: `execution_tasks.unpriced_attempts`); ROI and the
report say how many there were. Here gates get the metric `unpriced_attempts` — attempts
without a price, summed over the tasks in scope that finished in the window — and a
built-in soft gate `builtin:unpriced-attempts` (pass while there are none in the last
hour), so a model added to the fleet before its price shows up on the audit screen and
in `fsar-tui audit run`, not only as a cost that looks too low.

Only the CHECK on `audit_gates.metric` changes (revision 0016 wrote it) and one row is
added; no table is rewritten.

Downgrade deletes gates on the new metric (their verdicts go with them: ON DELETE
CASCADE) and restores 0016's CHECK.

Revision ID: 0026_unpriced_gate
Revises: 0025_idea_completion
"""

from alembic import op

from fsar_tui.db.migrations import revision_module

revision = "0026_unpriced_gate"
down_revision = "0025_idea_completion"
branch_labels = None
depends_on = None

_V0016 = revision_module(__file__, "0016_gates_and_alerts.py")

OLD_METRICS = _V0016.METRICS
METRICS = OLD_METRICS + ("unpriced_attempts",)

BUILTIN = (
    "builtin:unpriced-attempts",
    "unpriced_attempts",
    "1 hour",
    "<=",
    0,
    (
        "attempts that used a model with no price in force at their start: their cost is unknown, not 0 "
        "(add the model's price to model_prices)"
    ),
)


def _metric_check(metrics: tuple[str, ...]) -> str:
    return "CHECK (metric IN ({}))".format(", ".join(f"'{m}'" for m in metrics))


def upgrade() -> None:
    op.execute("ALTER TABLE audit_gates DROP CONSTRAINT audit_gates_metric_check")
    op.execute(f"ALTER TABLE audit_gates ADD CONSTRAINT audit_gates_metric_check {_metric_check(METRICS)}")
    name, metric, window, comparator, threshold, description = BUILTIN
    op.execute(
        "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold, hard, builtin, description) "
        f"VALUES ('{name}', '{metric}', '{window}', '{comparator}', {threshold}, false, true, "
        f"'{description.replace(chr(39), chr(39) * 2)}') ON CONFLICT (name) DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DELETE FROM audit_gates WHERE metric = 'unpriced_attempts'")
    op.execute("ALTER TABLE audit_gates DROP CONSTRAINT audit_gates_metric_check")
    op.execute(f"ALTER TABLE audit_gates ADD CONSTRAINT audit_gates_metric_check {_metric_check(OLD_METRICS)}")
