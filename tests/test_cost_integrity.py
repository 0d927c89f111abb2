"""Derived costs and rollups a fleet writer cannot bend (issue 17, a reviewer's findings;
revision 0028): the bulk flag honoured for the owner's members only, costs derived on
INSERT too, an attempt priced in its task's currency only, a missing compute rate
counted. Each runs as a real non-owner role holding what the integration contract gives
the fleet: SELECT on everything, INSERT and UPDATE on execution_tasks and ledger_entries."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from fsar_tui.db.roi import COST_DRIFT_SQL, LEDGER_DRIFT_SQL
from fsar_tui.db.tasks import COUNTS_DRIFT_SQL
from support.sql import q, x

pytestmark = pytest.mark.services

WRITES = "execution_tasks, ledger_entries"
SEQUENCES = "execution_tasks_id_seq, ledger_entries_id_seq"


@pytest.fixture
def fleet(db_dsn, login):
    """The DSN of a fleet-like role: SELECT all, INSERT/UPDATE on the two contract tables."""
    dsn = login()
    role = psycopg.conninfo.conninfo_to_dict(dsn)["user"]
    x(db_dsn, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    x(db_dsn, f"GRANT INSERT, UPDATE ON {WRITES} TO {role}")
    x(db_dsn, f"GRANT USAGE ON SEQUENCE {SEQUENCES} TO {role}")
    yield dsn
    x(db_dsn, f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
    x(db_dsn, f"REVOKE ALL ON SEQUENCE {SEQUENCES} FROM {role}")


def price(dsn, model, currency, inp, out, since):
    x(
        dsn,
        "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from) "
        "VALUES (%s, %s, %s, %s, now() - %s::interval)",
        (model, currency, inp, out, since),
    )


def rate(dsn, currency, per_hour, since="2 days"):
    x(
        dsn,
        "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) VALUES (%s, %s, now() - %s::interval)",
        (currency, per_hour, since),
    )


def no_drift(dsn):
    assert q(dsn, COST_DRIFT_SQL) == []
    assert q(dsn, LEDGER_DRIFT_SQL) == []
    assert q(dsn, COUNTS_DRIFT_SQL) == []


def costs(dsn, task_id):
    return q(
        dsn,
        "SELECT cost_minor, compute_cost_minor, waste_minor, unpriced_attempts, currency FROM execution_tasks "
        "WHERE id = %s",
        (task_id,),
    )[0]


FINISHED = (
    "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, started_at, finished_at, input_tokens, "
    "output_tokens, cost_minor, compute_cost_minor, waste_minor, unpriced_attempts, currency, idea_id) "
    "VALUES ('s7', %s, %s, 1, now() - interval '60 minutes', now() - interval '30 minutes', %s, %s, "
    "123456.789, 999, 999, 7, %s, 'idea-s7') RETURNING id"
)


def test_the_bulk_flag_hides_nothing_from_a_fleet_role(db_dsn, fleet):
    with psycopg.connect(fleet) as conn:
        conn.execute("SET LOCAL fsar.bulk_load = 'on'")
        row = conn.execute(
            "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, started_at, finished_at, "
            "cost_minor, currency, idea_id) VALUES ('s7', 'm-usd', 'succeeded', 1, now() - interval '1 minute', "
            "now(), 500, 'USD', 'idea-s7') RETURNING id"
        ).fetchone()
        assert row is not None
        task_id = row[0]
        conn.execute(
            "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id, "
            "customer_id) VALUES ('stripe', 'evt_s7', 'revenue', 10000, 'USD', now(), 'idea-s7', 'cus_s7')"
        )
        conn.execute("UPDATE execution_tasks SET status = 'failed' WHERE id = %s", (task_id,))
    no_drift(db_dsn)
    assert q(db_dsn, "SELECT to_status FROM task_events WHERE task_id = %s ORDER BY id", (task_id,)) == [
        ("succeeded",),
        ("failed",),
    ]


def test_forged_costs_on_insert_are_ignored_and_derived(db_dsn, fleet):
    price(db_dsn, "m", "USD", 100, 400, "1 day")
    rate(db_dsn, "USD", 60)
    finished = q(fleet, FINISHED, ("m", "succeeded", 1_000_000, 500_000, "USD"))[0][0]
    failed = q(fleet, FINISHED, ("m", "failed", 0, 0, "USD"))[0][0]
    queued = q(
        fleet,
        "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, cost_minor, waste_minor, "
        "unpriced_attempts, currency) VALUES ('s7', 'm', 'queued', 0, 5, 5, 7, 'USD') RETURNING id",
    )[0][0]
    # 1M × 100 + 0.5M × 400 per million = 300; 30 minutes at 60 an hour = 30.
    assert costs(db_dsn, finished) == (Decimal(300), Decimal(30), None, 0, "USD")
    assert costs(db_dsn, failed) == (None, Decimal(30), Decimal(30), 0, "USD")  # no tokens: no model cost
    assert costs(db_dsn, queued) == (None, None, None, 0, "USD")
    no_drift(db_dsn)
    # The owner's members (migrations, the seeder) keep what they write.
    owned = q(db_dsn, FINISHED, ("m", "succeeded", 1, 1, "USD"))[0][0]
    assert costs(db_dsn, owned) == (Decimal("123456.789"), Decimal(999), Decimal(999), 7, "USD")


def test_an_attempt_is_priced_in_its_tasks_currency_only(db_dsn, fleet):
    price(db_dsn, "m", "USD", 100, 400, "1 day")
    price(db_dsn, "m", "EUR", 90_000, 90_000, "2 hours")  # newer, another currency
    rate(db_dsn, "USD", 60)
    rate(db_dsn, "EUR", 50_000)
    rate(db_dsn, "GBP", 60)
    usd = q(fleet, FINISHED, ("m", "succeeded", 1_000_000, 0, "USD"))[0][0]
    gbp = q(fleet, FINISHED, ("m", "succeeded", 1_000_000, 0, "GBP"))[0][0]
    assert costs(db_dsn, usd) == (Decimal(100), Decimal(30), None, 0, "USD")
    assert costs(db_dsn, gbp) == (None, Decimal(30), None, 1, "GBP")  # no GBP price: unpriced, not EUR's
    # Through an executor's UPDATEs: claimed, then finished with tokens.
    task = q(
        fleet,
        "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, currency) "
        "VALUES ('s7', 'm', 'queued', 0, 'USD') RETURNING id",
    )[0][0]
    x(
        fleet,
        "UPDATE execution_tasks SET status = 'running', attempt = 1, worker_id = 'w', "
        "started_at = now() - interval '30 minutes' WHERE id = %s",
        (task,),
    )
    x(
        fleet,
        "UPDATE execution_tasks SET status = 'succeeded', finished_at = started_at + interval '30 minutes', "
        "input_tokens = 2000000, output_tokens = 0 WHERE id = %s",
        (task,),
    )
    assert costs(db_dsn, task) == (Decimal(200), Decimal(30), None, 0, "USD")
    # Amounts in USD are never relabelled as another currency's.
    x(fleet, "UPDATE execution_tasks SET currency = 'EUR' WHERE id = %s", (usd,))
    assert costs(db_dsn, usd)[4] == "USD"
    no_drift(db_dsn)


def test_a_missing_compute_rate_is_counted(db_dsn, fleet):
    price(db_dsn, "m", "USD", 100, 400, "1 day")  # a model price, but no compute rate in USD
    task = q(fleet, FINISHED, ("m", "failed", 1_000_000, 0, "USD"))[0][0]
    assert costs(db_dsn, task) == (Decimal(100), None, Decimal(100), 1, "USD")
    no_drift(db_dsn)
