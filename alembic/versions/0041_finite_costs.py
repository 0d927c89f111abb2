"""Finite costs: a task's cost, compute cost and waste, and every price and rate, are
numbers a float8 can hold — never NaN, ±Infinity or beyond 1e300.

Why (an attack on `fsar-tui metrics`): the numeric cost columns accepted 'NaN',
'Infinity' and 1e400. One task inserted with cost_minor = 1e400 made its sample's
`coalesce(cost_minor, 0)::float8` (fsar_sample_metrics, the cost sketch) fail "out of
range for type double precision": the duration fold, the profile sketches, the audit
pass and the exporter failed on every run after it, and deleting the task did not help
(its −1 sample carries the same cost). A NaN cost was summed into the cost rollups and
exported as NaN, poisoning every total it joined (a folded `other` series). Only the
owner's members keep a cost they write (revision 0028 clears and reprices a non-owner's
insert; prices are numeric(18, 6)), but the owner is the seeder, the bulk loader and
whatever tool an operator runs as it — and the class of failure is revision 0034's: one
row stopping the rollups for good.

The bound is 1e300, not a business limit: pricing cannot come near it (tokens are
bigint, < 9.3e18, prices < 1e12 minor units per Mtok; run times are finite, < 1e13 s),
so no executor's finish, operator's cancel or reaper batch can fail on it — a lower bound
would have turned an absurd token count into a failed write.

CHECK constraints, validated:
- execution_tasks: cost_minor, compute_cost_minor, waste_minor each NULL or in
  [0, 1e300) (0003's cost_minor ≥ 0 check let NaN through: NaN sorts above every number);
- model_prices: input/output_minor_per_mtok in [0, 1e12) (numeric(18, 6) already stops
  Infinity; NaN it does not);
- compute_rates: minor_per_hour likewise;
- task_duration_samples: the same as execution_tasks (only the triggers and the owner
  write there; a sample at 1e400 alone stopped the fold).
The price and rate lookups (fsar_model_price_at / _in, fsar_compute_rate_at) read a
price or rate in force that breaks the rule — one kept from before — as none: the
attempt is unpriced (counted in unpriced_attempts) rather than a NaN cost the task's
CHECK would refuse, which would fail the finish, a cancel, the reaper's whole batch.

Rows written before: a task's cost that breaks the rule is not a cost — it becomes
unknown (NULL), as the bulk loader writes (the owner's `fsar.bulk_load`: the pricing
trigger would ignore a direct write, and the rollup triggers leave the row alone), and
so does the same column of any unfolded sample, a deleted task's too (the fold would
fail on 1e400 or sum a NaN). Left as it was, such a task could not even be updated — a cancel, the reaper's
batch — since a CHECK is checked on every new row version. No row is removed; `fsar-tui
migrate` says how many were mended. Sums already folded from such a cost (cost_rollups,
the cost sketches) cannot be taken apart: the count of those rows is said, and they are
left. A price or rate that breaks the rule cannot be mended (it priced attempts): its
constraint stays NOT VALID — new rows checked, the count said.

Downgrade drops the constraints and restores the lookups as revision 0028 left them.

Revision ID: 0041_finite_costs
Revises: 0040_notify_labels
"""

import logging

from alembic import op

revision = "0041_finite_costs"
down_revision = "0040_notify_labels"
branch_labels = None
depends_on = None

log = logging.getLogger("fsar_tui.migration_notes")  # printed by `fsar-tui migrate`


def _finite(column: str, below: str) -> str:
    # `x < bound` is false for NaN (it sorts above every number) and for Infinity.
    return f"({column} IS NULL OR ({column} >= 0 AND {column} < {below}))"


COSTS = ("cost_minor", "compute_cost_minor", "waste_minor")
TASK_CHECK = " AND ".join(_finite(c, "1e300") for c in COSTS)
MENDED = ", ".join(f"{c} = CASE WHEN {_finite(c, '1e300')} THEN {c} END" for c in COSTS)
PRICES = ("input_minor_per_mtok", "output_minor_per_mtok")


def _price_check(prefix: str = "") -> str:
    return " AND ".join(_finite(f"{prefix}{c}", "1e12") for c in PRICES)


TASK_TABLES = ("execution_tasks", "task_duration_samples")
CONSTRAINTS = (
    ("execution_tasks", "execution_tasks_costs_finite", TASK_CHECK),
    ("task_duration_samples", "task_duration_samples_costs_finite", TASK_CHECK),
    ("model_prices", "model_prices_finite", _price_check()),
    ("compute_rates", "compute_rates_finite", _finite("minor_per_hour", "1e12")),
)

# The price and rate lookups: a price or rate in force that breaks the rule (one kept
# NOT VALID from before) is no price — the attempt is unpriced, as with none in force —
# not a NaN cost that the task's CHECK would refuse, failing the finish, the cancel, the
# reaper's whole batch (an attack's finding). Never an older price instead: that would
# price with one no longer in force.
_PRICE = """
    CREATE OR REPLACE FUNCTION fsar_model_price_{name}(model text,{cur} at timestamptz,
                                OUT currency text, OUT input_per_mtok numeric, OUT output_per_mtok numeric)
    LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
        SELECT p.currency::text, {inp}, {out} FROM model_prices p
        WHERE p.ai_model = model{where} AND p.effective_from <= at
        ORDER BY p.effective_from DESC, p.currency LIMIT 1
    $$"""
_RATE = """
    CREATE OR REPLACE FUNCTION fsar_compute_rate_at(cur text, at timestamptz) RETURNS numeric
    LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
        SELECT {rate} FROM compute_rates r
        WHERE r.currency = cur AND r.effective_from <= at
        ORDER BY r.effective_from DESC LIMIT 1
    $$"""


def _lookups(checked: bool) -> list[str]:
    inp, out, rate = "p.input_minor_per_mtok", "p.output_minor_per_mtok", "r.minor_per_hour"
    if checked:
        inp, out = (f"CASE WHEN {_price_check('p.')} THEN {column} END" for column in (inp, out))
        rate = f"CASE WHEN {_finite(rate, '1e12')} THEN {rate} END"
    return [
        _PRICE.format(name="at", cur="", inp=inp, out=out, where=""),
        _PRICE.format(name="in", cur=" cur text,", inp=inp, out=out, where=" AND (cur IS NULL OR p.currency = cur)"),
        _RATE.format(rate=rate),
    ]


ROLLUP_SUMS = ("model_cost_minor", "compute_cost_minor", "failed_cost_minor", "waste_minor")


def _count(sql: str) -> int:
    return int(op.get_bind().exec_driver_sql(sql).scalar() or 0)


def _mend_tasks() -> dict[str, int]:
    """Make the bad costs of tasks and samples unknown (NULL); how many rows each table had.
    The samples apart from their tasks: a deleted task leaves its +1 and −1 samples, both
    with the bad cost, and the fold failed on them all the same."""
    bad = {t: _count(f"SELECT count(*) FROM {t} WHERE NOT ({TASK_CHECK})") for t in TASK_TABLES}
    if not any(bad.values()):
        return bad
    op.execute("SELECT set_config('fsar.bulk_load', 'on', true)")
    for table, n in bad.items():
        if n:
            op.execute(f"UPDATE {table} SET {MENDED} WHERE NOT ({TASK_CHECK})")
    op.execute("SELECT set_config('fsar.bulk_load', 'off', true)")
    poisoned = " OR ".join(f"NOT ({c} > -1e300 AND {c} < 1e300)" for c in ROLLUP_SUMS)
    folded = _count(f"SELECT count(*) FROM cost_rollups WHERE {poisoned}")
    if folded:
        log.info("cost_rollups: %d row(s) already sum such a cost (NaN or infinite): left as they are", folded)
    return bad


def upgrade() -> None:
    for sql in _lookups(checked=True):
        op.execute(sql)
    before = _mend_tasks()
    for table, name, check in CONSTRAINTS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check}) NOT VALID")
        # A task table found clean before mending is clean: not counted twice.
        bad = 0 if before.get(table) == 0 else _count(f"SELECT count(*) FROM {table} WHERE NOT ({check})")
        if before.get(table):
            # Counted after the UPDATE: only the owner's members have the bulk flag
            # honoured; for anyone else the pricing trigger keeps the old costs.
            log.info(
                "%s: %d row(s) had a cost that is NaN, infinite or beyond 1e300: %d now unknown (NULL)",
                table,
                before[table],
                before[table] - bad,
            )
        if bad:
            log.info(
                "%s: %d row(s) with a cost, price or rate that is NaN or beyond its bound — kept; "
                "%s stays NOT VALID (new rows are checked)",
                table,
                bad,
                name,
            )
        else:
            op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def downgrade() -> None:
    for table, name, _check in CONSTRAINTS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for sql in _lookups(checked=False):
        op.execute(sql)
