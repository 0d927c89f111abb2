"""Stripe ingestion against a real database: the published fixture file to the cent,
idempotent re-ingestion, signatures made by Stripe's own signing code, every kind of
bad line (rejected alone, the others kept), cumulative refunds in any order, and a
property test that the pure parser only ever raises its documented rejection."""

from __future__ import annotations

import json
import os
from argparse import Namespace
from collections import Counter, defaultdict
from pathlib import Path
from unittest import mock

import pytest

from fsar_tui.commands.base import Context
from fsar_tui.commands.stripe import run_ingest_stripe
from fsar_tui.config import Settings
from support.sql import q
from support.stripe_events import FIXTURE, SECRET, T0, charge, dispute, envelope, event, refund, sign, write_lines


def ingest(db_dsn: str, path: Path, capsys, secret: str | None = None) -> tuple[int, str, list[str]]:
    """The real command function, in-process: (exit code, summary line, rejection lines)."""
    env = {k: v for k, v in os.environ.items() if k != "FSAR_STRIPE_WEBHOOK_SECRET"}
    if secret is not None:
        env["FSAR_STRIPE_WEBHOOK_SECRET"] = secret
    with mock.patch.dict(os.environ, env, clear=True):
        code = run_ingest_stripe(Namespace(file=str(path)), Context(Settings(dsn=db_dsn)))
    out, err = capsys.readouterr()
    return code, out.strip(), err.splitlines()


def ledger(db_dsn: str) -> list[tuple]:
    return q(
        db_dsn,
        "SELECT kind, amount_minor, currency, external_id, idea_id, customer_id, task_id "
        "FROM ledger_entries ORDER BY id",
    )


def dump(db_dsn: str) -> dict[str, list[tuple]]:
    return {
        t: q(db_dsn, f"SELECT * FROM {t} ORDER BY 1, 2, 3")
        for t in ("ledger_entries", "stripe_events", "ledger_daily", "payment_funnel_daily")
    }


# ---------------------------------------------------------------- the published fixture


def expected_from_file(path: Path) -> tuple[dict, Counter, Counter]:
    """Ledger sums per (kind, currency), funnel counts and outcomes, computed from the file by hand."""
    sums: dict[tuple[str, str], int] = defaultdict(int)
    funnel: Counter = Counter()
    types: Counter = Counter()
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        obj, cur = ev["data"]["object"], ev["data"]["object"].get("currency", "").upper()
        types[ev["type"]] += 1
        if ev["type"] == "charge.succeeded":
            sums["revenue", cur] += obj["amount"]
        elif ev["type"] == "charge.refunded":
            sums["refund", cur] -= obj["amount_refunded"]  # one refund event per charge in this file
        elif ev["type"] == "charge.dispute.created":
            sums["dispute", cur] -= obj["amount"]
        elif ev["type"] == "payment_intent.created":
            funnel["created", cur, ""] += 1
        elif ev["type"] == "payment_intent.succeeded":
            funnel["succeeded", cur, ""] += 1
        elif ev["type"] == "payment_intent.payment_failed":
            funnel["failed", cur, obj["last_payment_error"]["decline_code"]] += 1
    return dict(sums), funnel, types


def test_fixture_file_to_the_cent_and_reingest_changes_nothing(run_cli, db_dsn):
    sums, funnel, types = expected_from_file(FIXTURE)
    # The same figures written out, as read from the file.
    assert sums == {
        ("revenue", "USD"): 27000,
        ("revenue", "EUR"): 7500,
        ("refund", "USD"): -500,
        ("dispute", "USD"): -2750,
    }
    assert sum(types.values()) == 44 and types["customer.created"] == 1
    assert sum(n for (stage, *_), n in funnel.items() if stage == "created") == 14
    assert sum(n for (stage, *_), n in funnel.items() if stage == "succeeded") == 12
    assert {(r, n) for (stage, _, r), n in funnel.items() if stage == "failed"} == {
        ("insufficient_funds", 1),
        ("stolen_card", 1),
    }

    first = run_cli("ingest-stripe", str(FIXTURE), "--dsn", db_dsn)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "accepted 43, duplicate 0, rejected 0, skipped 1 (customer.created: 1)"
    assert first.stderr == ""

    got = q(db_dsn, "SELECT kind, currency, sum(amount_minor)::bigint FROM ledger_entries GROUP BY 1, 2")
    assert {(k, c): s for k, c, s in got} == sums  # no fee anywhere: none is given, none is estimated
    assert (
        q(db_dsn, "SELECT stage, currency, reason, n FROM payment_funnel_daily WHERE n <> 0")
        and Counter(
            {
                (s, c, r): n
                for s, c, r, n in q(
                    db_dsn, "SELECT stage, currency, reason, sum(n)::int FROM payment_funnel_daily GROUP BY 1, 2, 3"
                )
            }
        )
        == funnel
    )
    assert dict(q(db_dsn, "SELECT outcome, count(*) FROM stripe_events GROUP BY 1")) == {"applied": 43, "skipped": 1}
    assert q(db_dsn, "SELECT type, object_id FROM stripe_events WHERE outcome = 'skipped'") == [
        ("customer.created", "cus_fx_9")
    ]
    # ledger_daily is exactly the ledger, by day × kind × currency × idea.
    assert q(
        db_dsn, "SELECT day, kind, currency, idea_id, entries, amount_minor FROM ledger_daily ORDER BY 1, 2, 3, 4"
    ) == q(
        db_dsn,
        "SELECT (occurred_at AT TIME ZONE 'UTC')::date, kind, currency, coalesce(idea_id, ''), count(*), "
        "sum(amount_minor) FROM ledger_entries GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )
    # Refund and dispute are attributed like the charge they belong to.
    attribution = "SELECT idea_id, customer_id FROM ledger_entries WHERE kind = %s AND metadata ->> 'charge' = %s"
    assert q(db_dsn, attribution, ("refund", "ch_fx_0002")) == q(db_dsn, attribution, ("revenue", "ch_fx_0002"))
    assert q(db_dsn, attribution, ("dispute", "ch_fx_0005")) == q(db_dsn, attribution, ("revenue", "ch_fx_0005"))
    assert q(db_dsn, attribution, ("dispute", "ch_fx_0005"))[0][0] == "idea_101"
    revenue = q(db_dsn, "SELECT occurred_at, metadata FROM ledger_entries WHERE external_id = 'evt_fx_0001'")[0]
    assert revenue[0].timestamp() == 1767350000
    assert revenue[1] == {
        "charge": "ch_fx_0000",
        "event": "evt_fx_0001",
        "card_country": "US",
        "card_fingerprint": "AOB934RVNwzk6xtn",
    }

    before = dump(db_dsn)
    again = run_cli("ingest-stripe", str(FIXTURE), "--dsn", db_dsn)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "accepted 0, duplicate 44, rejected 0, skipped 0"
    assert dump(db_dsn) == before


# ---------------------------------------------------------------- bad input


def test_malformed_json_on_line_3_of_5_keeps_the_other_four(run_cli, db_dsn, tmp_path):
    path = write_lines(
        tmp_path / "five.jsonl",
        [
            charge("evt_1", "ch_1"),
            charge("evt_2", "ch_2"),
            '{"id": "evt_3", "type": ',
            charge("evt_4", "ch_4"),
            charge("evt_5", "ch_5", 900, "eur"),
        ],
    )
    proc = run_cli("ingest-stripe", str(path), "--dsn", db_dsn)
    assert proc.returncode == 1
    assert proc.stdout.strip() == "accepted 4, duplicate 0, rejected 1, skipped 0"
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"fsar-tui: {path}:3: malformed JSON (") and "Traceback" not in proc.stderr
    assert [r[0] for r in q(db_dsn, "SELECT id FROM stripe_events ORDER BY id")] == ["evt_1", "evt_2", "evt_4", "evt_5"]
    assert len(ledger(db_dsn)) == 4


BAD_LINES = [
    pytest.param(
        charge("evt_b", "ch_b", currency="xyz"), "unknown currency 'xyz' (not an ISO 4217 code)", id="unknown-currency"
    ),
    pytest.param(
        charge("evt_b", "ch_b", amount=12.5),
        "data.object.amount must be an integer amount in minor units, got 12.5",
        id="float-amount",
    ),
    pytest.param(
        charge("evt_b", "ch_b", amount="1200"),
        "data.object.amount must be an integer amount in minor units, got '1200'",
        id="string-amount",
    ),
    pytest.param(
        charge("evt_b", "ch_b", amount=True), "must be an integer amount in minor units, got True", id="bool-amount"
    ),
    pytest.param(charge("evt_b", "ch_b", amount=None), "data.object.amount is missing", id="missing-amount"),
    pytest.param(charge("evt_b", "ch_b", amount=-5), "data.object.amount out of range", id="negative-amount"),
    pytest.param(charge("evt_b", "ch_b", currency=None), "data.object.currency is missing", id="missing-currency"),
    pytest.param(
        charge("evt_b", "ch_b", balance_transaction={"id": "txn", "fee": 8.8}),
        "balance_transaction.fee must be an integer amount",
        id="float-fee",
    ),
    pytest.param(
        refund("evt_b", "ch_b", amount_refunded="500"),
        "data.object.amount_refunded must be an integer",
        id="string-refund",
    ),
    pytest.param({k: v for k, v in charge("evt_b", "ch_b").items() if k != "id"}, "event has no id", id="missing-id"),
    pytest.param(
        {k: v for k, v in charge("evt_b", "ch_b").items() if k != "type"}, "event has no type", id="missing-type"
    ),
    pytest.param(
        {k: v for k, v in charge("evt_b", "ch_b").items() if k != "created"},
        "event has no created",
        id="missing-created",
    ),
    pytest.param(
        {**charge("evt_b", "ch_b"), "created": "yesterday"}, "event.created must be Unix seconds", id="string-created"
    ),
    pytest.param(charge("evt_b", "ch_b", description="nul\u0000here"), "NUL character", id="nul"),
    pytest.param(event("evt_b", "charge.succeeded", None), "data.object is missing", id="no-object"),
    pytest.param("[1, 2]", "expected a JSON object, got an array", id="array"),
    pytest.param('{"id": "evt_b", "amount": NaN}', "malformed JSON (NaN is not valid JSON)", id="nan"),
]


@pytest.mark.parametrize("line, reason", BAD_LINES)
def test_bad_line_is_rejected_with_its_reason_and_nothing_stored(db_dsn, tmp_path, capsys, line, reason):
    path = write_lines(tmp_path / "bad.jsonl", [charge("evt_ok", "ch_ok"), line])
    code, summary, errors = ingest(db_dsn, path, capsys)
    assert code == 1 and summary == "accepted 1, duplicate 0, rejected 1, skipped 0"
    assert len(errors) == 1 and errors[0].startswith(f"fsar-tui: {path}:2: ") and reason in errors[0], errors
    assert q(db_dsn, "SELECT id FROM stripe_events") == [("evt_ok",)]
    assert [r[3] for r in ledger(db_dsn)] == ["evt_ok"]


def test_terminal_output_has_no_escape_sequences_and_stdin_works(run_cli, db_dsn):
    lines = [
        json.dumps(event("evt_esc", "evil.\x1b]52;c;SGVsbG8=\x07type\x1b[2J", {"id": "x"})),
        json.dumps(charge("evt_esc2", "ch_esc", currency="\x1b[31mred")),
        "",
        "   ",
    ]
    proc = run_cli("ingest-stripe", "-", "--dsn", db_dsn, input="\n".join(lines) + "\n")
    assert proc.returncode == 1
    assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout + proc.stderr
    assert proc.stdout.strip() == "accepted 0, duplicate 0, rejected 1, skipped 1 (evil.type: 1)"
    assert proc.stderr.startswith("fsar-tui: -:2: unknown currency '\\x1b[31mred'")


def test_missing_file_and_unreachable_database_are_exit_2(run_cli, tmp_path):
    missing = run_cli("ingest-stripe", str(tmp_path / "nope.jsonl"), "--dsn", "host=127.0.0.1 port=1 dbname=x")
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "cannot connect" not in missing.stderr
    path = write_lines(tmp_path / "one.jsonl", [charge("evt_1", "ch_1")])
    down = run_cli("ingest-stripe", str(path), "--dsn", "host=127.0.0.1 port=1 dbname=x connect_timeout=2")
    assert down.returncode == 2 and "cannot connect" in down.stderr and "Traceback" not in down.stderr
    assert down.stdout == ""


# ---------------------------------------------------------------- signatures


def test_signed_envelopes_verify_and_bad_ones_are_rejected(run_cli, db_dsn, tmp_path, isolated_env):
    good = charge("evt_s1", "ch_s1", created=T0)
    tampered_payload = json.dumps(charge("evt_s2", "ch_s2", amount=100))
    tampered = json.dumps(
        {"stripe_signature": sign(tampered_payload, timestamp=T0), "payload": tampered_payload.replace("100", "999999")}
    )
    path = write_lines(
        tmp_path / "signed.jsonl",
        [
            envelope(good, timestamp=T0),  # months old: files are checked without a timestamp tolerance
            tampered,
            envelope(charge("evt_s3", "ch_s3"), secret="whsec_someone_else"),
            charge("evt_s4", "ch_s4"),  # unsigned
            json.dumps({"payload": json.dumps(charge("evt_s5", "ch_s5"))}),  # envelope without a signature
            json.dumps({"stripe_signature": "garbage", "payload": json.dumps(charge("evt_s6", "ch_s6"))}),
        ],
    )
    proc = run_cli(
        "ingest-stripe", str(path), "--dsn", db_dsn, env={**isolated_env, "FSAR_STRIPE_WEBHOOK_SECRET": SECRET}
    )
    assert proc.returncode == 1
    assert proc.stdout.strip() == "accepted 1, duplicate 0, rejected 5, skipped 0"
    assert SECRET not in proc.stdout + proc.stderr
    errors = proc.stderr.splitlines()
    no_match = "bad Stripe signature: No signatures found matching the expected signature for payload"
    assert errors[0] == f"fsar-tui: {path}:2: {no_match}"
    assert errors[1] == f"fsar-tui: {path}:3: {no_match}"
    assert errors[2].startswith(f"fsar-tui: {path}:4: missing Stripe signature")
    assert errors[3].startswith(f"fsar-tui: {path}:5: missing Stripe signature")
    assert (
        errors[4] == f"fsar-tui: {path}:6: bad Stripe signature: Unable to extract timestamp and signatures from header"
    )
    assert q(db_dsn, "SELECT id FROM stripe_events") == [("evt_s1",)]


def test_an_empty_secret_is_a_usage_error(run_cli, tmp_path, isolated_env):
    path = write_lines(tmp_path / "one.jsonl", [charge("evt_1", "ch_1")])
    proc = run_cli(
        "ingest-stripe",
        str(path),
        "--dsn",
        "host=127.0.0.1 port=1 dbname=x",
        env={**isolated_env, "FSAR_STRIPE_WEBHOOK_SECRET": ""},
    )
    assert proc.returncode == 2 and "FSAR_STRIPE_WEBHOOK_SECRET is set but empty" in proc.stderr


# ---------------------------------------------------------------- refunds, disputes, fees, tasks


@pytest.mark.parametrize("order", ["in-order", "reversed"])
def test_cumulative_refunds_are_exact_in_any_order(db_dsn, tmp_path, capsys, order):
    first, second = refund("evt_r1", "ch_r", 500, created=T0 + 10), refund("evt_r2", "ch_r", 1000, created=T0 + 20)
    refunds = [first, second] if order == "in-order" else [second, first]
    path = write_lines(
        tmp_path / "refunds.jsonl",
        [charge("evt_c", "ch_r", 2000, metadata={"idea_id": "idea_r"}, customer="cus_r"), *refunds, *refunds],
    )
    code, summary, _ = ingest(db_dsn, path, capsys)
    assert code == 0 and summary == "accepted 3, duplicate 2, rejected 0, skipped 0"
    rows = [r for r in ledger(db_dsn) if r[0] == "refund"]
    assert sum(r[1] for r in rows) == -1000
    expected = [-500, -500] if order == "in-order" else [-1000]
    assert [r[1] for r in rows] == expected
    # The refund events carry no idea or customer: both come from the charge's revenue entry.
    assert {(r[4], r[5]) for r in rows} == {("idea_r", "cus_r")}


def test_fees_disputes_and_task_attribution(db_dsn, tmp_path, capsys):
    [(task_id,)] = q(
        db_dsn, "INSERT INTO execution_tasks (task_type, status) VALUES ('implement_idea', 'queued') RETURNING id"
    )
    path = write_lines(
        tmp_path / "disputes.jsonl",
        [
            charge(
                "evt_c1",
                "ch_1",
                5000,
                metadata={"idea_id": "idea_d", "task_id": str(task_id), "ip_country": "RU"},
                balance_transaction={"id": "txn_1", "object": "balance_transaction", "fee": 175},
            ),
            charge("evt_c2", "ch_2", 700, "jpy", metadata={"task_id": "999"}),  # no such task → NULL
            dispute("evt_d1", "charge.dispute.created", "ch_1", 5000, fees=(1500,)),
            dispute("evt_d2", "charge.dispute.closed", "ch_1", 5000, status="won", created=T0 + 300),
            dispute("evt_d3", "charge.dispute.created", "ch_2", 700),
            dispute("evt_d4", "charge.dispute.closed", "ch_2", 700, status="lost", created=T0 + 300),
        ],
    )
    code, summary, errors = ingest(db_dsn, path, capsys)
    assert (code, errors) == (0, []) and summary == "accepted 6, duplicate 0, rejected 0, skipped 0"
    assert ledger(db_dsn) == [
        ("revenue", 5000, "USD", "evt_c1", "idea_d", "cus_t", task_id),
        ("payment_fee", -175, "USD", "evt_c1:fee", "idea_d", "cus_t", task_id),
        ("revenue", 700, "JPY", "evt_c2", None, "cus_t", None),
        ("dispute", -5000, "USD", "evt_d1", "idea_d", "cus_t", task_id),
        ("dispute_fee", -1500, "USD", "evt_d1:fee", "idea_d", "cus_t", task_id),
        ("dispute_won", 5000, "USD", "evt_d2", "idea_d", "cus_t", task_id),
        ("dispute", -700, "USD", "evt_d3", None, "cus_t", None),
    ]
    assert q(db_dsn, "SELECT metadata FROM ledger_entries WHERE external_id = 'evt_c1'")[0][0] == {
        "charge": "ch_1",
        "event": "evt_c1",
        "card_country": "US",
        "card_fingerprint": "fp_1",
        "ip_country": "RU",
    }
    # The fraud index sees the card/IP country mismatch.
    assert q(
        db_dsn,
        "SELECT external_id FROM ledger_entries WHERE kind = 'revenue' "
        "AND metadata ->> 'card_country' <> metadata ->> 'ip_country'",
    ) == [("evt_c1",)]
