"""Revision 0041: a cost, price or rate is a number a float8 holds — never NaN, ±Infinity
or beyond 1e300 — so no row can stop the fold, the sketches and the exporter.

Found by an attack on `fsar-tui metrics`: a task inserted (as the owner, who keeps the
costs it writes) with cost_minor = 1e400 made every later fold fail "out of range for type
double precision", and a NaN cost was exported as NaN. Each test below fails on 0040."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from fsar_tui.db.migrations import downgrade, migrate
from support.sql import q, x

BEFORE = "0040_notify_labels"
HOSTILE = ("NaN", "Infinity", "-Infinity", "1e400", "-1")


def insert_task(dsn: str, column: str, value: str) -> None:
    x(
        dsn,
        f"INSERT INTO execution_tasks (task_type, status, ai_model, currency, {column}) "
        "VALUES ('finite', 'queued', 'm', 'USD', %s::numeric)",
        (value,),
    )


def insert_finished_at_1e400(dsn: str) -> None:
    """A finished task (so a sample the fold reads) costed 1e400, as 0040 let the owner write."""
    x(
        dsn,
        "INSERT INTO execution_tasks (task_type, status, ai_model, currency, queued_at, started_at, finished_at, "
        "cost_minor) VALUES ('finite', 'succeeded', 'm', 'USD', now() - interval '2 minutes', "
        "now() - interval '1 minute', now(), 1e400)",
    )


def fold(dsn: str) -> None:
    x(dsn, "SELECT fsar_fold_duration_samples()")


@pytest.mark.parametrize("column", ["cost_minor", "compute_cost_minor", "waste_minor"])
def test_a_task_cost_that_is_not_a_finite_amount_is_refused(db_dsn, column):
    for value in HOSTILE:
        with pytest.raises(psycopg.errors.CheckViolation):
            insert_task(db_dsn, column, value)
    insert_task(db_dsn, column, "1e299")  # large but a float8 holds it
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks") == [(1,)]


def test_prices_and_rates_that_are_not_finite_are_refused(db_dsn):
    for value in ("NaN", "-1"):
        with pytest.raises(psycopg.errors.CheckViolation):
            x(
                db_dsn,
                "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, "
                "effective_from) VALUES ('m', 'USD', %s::numeric, 1, now())",
                (value,),
            )
        with pytest.raises(psycopg.errors.CheckViolation):
            x(
                db_dsn,
                "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) "
                "VALUES ('USD', %s::numeric, now())",
                (value,),
            )


def test_an_absurd_token_count_at_the_highest_price_still_finishes_and_folds(db_dsn):
    """The bound sits far above what pricing can reach: a lower one (1e18, say) would have
    made this finish — an executor's, a cancel, a reaper batch — fail on the CHECK."""
    x(
        db_dsn,
        "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from) "
        "VALUES ('m', 'USD', 999999999999.999999, 999999999999.999999, now() - interval '1 day')",
    )
    x(
        db_dsn,
        "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) "
        "VALUES ('USD', 1, now() - interval '1 day')",
    )
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        (task,) = conn.execute(
            "INSERT INTO execution_tasks (task_type, status, ai_model, currency) "
            "VALUES ('finite', 'queued', 'm', 'USD') RETURNING id"
        ).fetchone()
        conn.execute(
            "UPDATE execution_tasks SET status = 'running', started_at = now() - interval '1 minute' WHERE id = %s",
            (task,),
        )
        conn.execute(
            "UPDATE execution_tasks SET input_tokens = 9223372036854775807, output_tokens = 9223372036854775807 "
            "WHERE id = %s",
            (task,),
        )
        conn.execute("UPDATE execution_tasks SET status = 'succeeded', finished_at = now() WHERE id = %s", (task,))
    ((status, cost),) = q(db_dsn, "SELECT status, cost_minor FROM execution_tasks WHERE id = %s", (task,))
    assert status == "succeeded" and cost > Decimal("1e24")
    fold(db_dsn)  # its sample's cost is a float8 too


def test_0041_mends_an_earlier_bad_cost_keeps_every_row_and_the_fold_works(db_dsn):
    downgrade(db_dsn, BEFORE)
    # As 0040 allowed (the owner keeps the costs it writes): a NaN compute cost, a 1e400
    # cost on a finished task (its sample: the fold failed on it), a NaN price.
    insert_task(db_dsn, "compute_cost_minor", "NaN")
    insert_finished_at_1e400(db_dsn)
    x(
        db_dsn,
        "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from) "
        "VALUES ('m', 'USD', 'NaN', 1, now())",
    )
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        fold(db_dsn)  # what 0040 did: every fold failed from here
    done = migrate(db_dsn)
    assert any("execution_tasks: 2 row(s)" in note and "2 now unknown" in note for note in done.notes), done.notes
    assert any("model_prices: 1 row(s)" in note and "NOT VALID" in note for note in done.notes), done.notes
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks") == [(2,)]  # no row lost
    assert q(
        db_dsn, "SELECT count(*) FROM execution_tasks WHERE cost_minor IS NULL AND compute_cost_minor IS NULL"
    ) == [(2,)]
    valid = "SELECT conname, convalidated FROM pg_constraint WHERE conname LIKE '%%_finite' AND conparentid = 0"
    assert dict(q(db_dsn, valid)) == {
        "execution_tasks_costs_finite": True,
        "task_duration_samples_costs_finite": True,
        "model_prices_finite": False,
        "compute_rates_finite": True,
    }
    fold(db_dsn)  # the sample was mended with its task
    x(db_dsn, "UPDATE execution_tasks SET status = 'cancelled', finished_at = now() WHERE status = 'queued'")
    with pytest.raises(psycopg.errors.CheckViolation):
        insert_task(db_dsn, "cost_minor", "1e400")
    downgrade(db_dsn, BEFORE)
    assert q(db_dsn, valid) == []


def test_0041_mends_the_samples_a_deleted_task_left(db_dsn):
    """Deleting the task did not help: its +1 and −1 samples carry the cost, and the fold
    failed on them."""
    downgrade(db_dsn, BEFORE)
    insert_finished_at_1e400(db_dsn)
    x(db_dsn, "DELETE FROM execution_tasks")
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        fold(db_dsn)
    done = migrate(db_dsn)
    assert any("task_duration_samples: 2 row(s)" in note for note in done.notes), done.notes
    fold(db_dsn)
    assert q(db_dsn, "SELECT count(*) FROM task_duration_samples") == [(0,)]


def test_a_bad_price_or_rate_kept_from_before_leaves_attempts_unpriced_not_failing(db_dsn):
    """A NaN rate or price in force (its constraint left NOT VALID) priced attempts at NaN,
    which the task's CHECK refused: finishes, cancels and the reaper's batches failed."""
    downgrade(db_dsn, BEFORE)
    x(
        db_dsn,
        "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from) "
        "VALUES ('m', 'USD', 'NaN', 1, now() - interval '1 day')",
    )
    x(
        db_dsn,
        "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) "
        "VALUES ('USD', 'NaN', now() - interval '1 day')",
    )
    ids = [
        q(
            db_dsn,
            "INSERT INTO execution_tasks (task_type, status, ai_model, currency, queued_at, started_at, "
            "lease_expires_at) VALUES ('finite', 'running', 'm', 'USD', now() - interval '3 minutes', "
            "now() - interval '2 minutes', now() - interval '1 minute') RETURNING id",
        )[0][0]
        for _ in range(3)
    ]
    migrate(db_dsn)
    x(db_dsn, "UPDATE execution_tasks SET input_tokens = 1000, output_tokens = 1000 WHERE id = %s", (ids[0],))
    x(db_dsn, "UPDATE execution_tasks SET status = 'succeeded', finished_at = now() WHERE id = %s", (ids[0],))
    x(db_dsn, "UPDATE execution_tasks SET status = 'cancelled', finished_at = now() WHERE id = %s", (ids[1],))
    x(db_dsn, "UPDATE execution_tasks SET status = 'failed', finished_at = now() WHERE id = %s", (ids[2],))
    rows = q(
        db_dsn, "SELECT status, cost_minor, compute_cost_minor, unpriced_attempts FROM execution_tasks ORDER BY id"
    )
    assert rows == [("succeeded", None, None, 1), ("cancelled", None, None, 1), ("failed", None, None, 1)]
    fold(db_dsn)
