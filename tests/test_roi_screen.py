"""Pilot and snapshot tests of the ROI screen against a real database (clock frozen)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from fsar_tui import clock
from fsar_tui.db import roi as roi_queries
from fsar_tui.db.connect import connect
from fsar_tui.domain.formatting import money
from fsar_tui.domain.roi_display import shown_record, shown_records
from fsar_tui.screens.roi import RoiScreen
from fsar_tui.services.roi_report import records
from support.pilot import make_app, until
from support.snapshot import check_snapshot, settled_svg

FROZEN = datetime(2026, 1, 9, 12, 0, 0, tzinfo=UTC)


def add_history(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO execution_tasks (task_type, ai_model, idea_id, status, attempt, queued_at, started_at,
                                         finished_at, cost_minor, compute_cost_minor, waste_minor, currency)
            SELECT (ARRAY['implement_idea', 'idea_implementation', 'self_improvement'])[1 + g %% 3],
                   (ARRAY['gpt-4o', 'gpt-4o-mini'])[1 + g %% 2],
                   CASE WHEN g %% 3 = 2 THEN NULL ELSE 'idea_' || (g %% 4) END,
                   CASE WHEN g %% 9 = 0 THEN 'failed' ELSE 'succeeded' END, CASE WHEN g %% 7 = 0 THEN 2 ELSE 1 END,
                   %(end)s - make_interval(hours => g) - interval '5 minutes',
                   %(end)s - make_interval(hours => g) - interval '4 minutes',
                   %(end)s - make_interval(hours => g), 40 + g %% 17 + 0.0375 * (g %% 4), 3 + g %% 5,
                   -- as the database prices attempts (revision 0024): all of a failed task is
                   -- waste, and of a success after a retry its first attempt (here 20.5 + …)
                   CASE WHEN g %% 9 = 0 THEN 43 + g %% 17 + g %% 5 + 0.0375 * (g %% 4)
                        WHEN g %% 7 = 0 THEN 20.5 + 0.0375 * (g %% 4) END, 'USD'
            FROM generate_series(1, 200) g""",
            {"end": FROZEN},
        )
        # A model with no price: its attempts' cost is unknown (no currency either).
        conn.execute(
            """
            INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, finished_at,
                                         input_tokens, output_tokens, unpriced_attempts)
            VALUES ('implement_idea', 'gpt-9-preview', 'succeeded', 3, %(end)s - interval '3 hours',
                    %(end)s - interval '2 hours', %(end)s - interval '1 hour', 1000, 200, 3)""",
            {"end": FROZEN},
        )
        conn.execute(
            """
            INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id,
                                        customer_id, metadata)
            SELECT 'test', 'ch' || g, 'revenue', 1900 + 100 * (g %% 5), CASE WHEN g %% 10 = 0 THEN 'EUR' ELSE 'USD' END,
                   %(end)s - make_interval(hours => 5 * g), 'idea_' || (g %% 5), 'cus_' || (g %% 7),
                   jsonb_build_object('charge', 'ch_' || g, 'card_country', 'US', 'ip_country', 'US')
            FROM generate_series(1, 60) g""",
            {"end": FROZEN},
        )
        conn.execute(
            """
            INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id)
            VALUES ('test', 'r1', 'refund', -2000, 'USD', %(end)s - interval '3 hours', 'idea_1'),
                   ('test', 'd1', 'dispute', -2100, 'USD', %(end)s - interval '30 hours', 'idea_2'),
                   ('test', 'f1', 'dispute_fee', -1500, 'USD', %(end)s - interval '30 hours', 'idea_2')""",
            {"end": FROZEN},
        )
        # Card testing: one customer, eight charges within forty minutes.
        conn.execute(
            """
            INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id,
                                        customer_id, metadata)
            SELECT 'test', 'burst' || g, 'revenue', 900, 'USD', %(end)s - interval '2 days' + g * interval '5 minutes',
                   'idea_3', 'cus_burst', jsonb_build_object('charge', 'ch_burst' || g)
            FROM generate_series(1, 8) g""",
            {"end": FROZEN},
        )
        conn.execute(
            """
            INSERT INTO stripe_events (id, type, created, object_id, outcome, payload)
            SELECT 'evt_' || g, CASE WHEN g <= 10 THEN 'payment_intent.created' WHEN g <= 18
                                     THEN 'payment_intent.succeeded' ELSE 'payment_intent.payment_failed' END,
                   %(end)s - interval '1 hour', 'pi_' || g, 'applied',
                   jsonb_build_object('data', jsonb_build_object('object', jsonb_build_object(
                       'currency', 'usd', 'last_payment_error', jsonb_build_object('decline_code',
                           'insufficient_funds'))))
            FROM generate_series(1, 20) g""",
            {"end": FROZEN},
        )


@pytest.fixture
def roi_db(db_dsn, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    add_history(db_dsn)
    return db_dsn


def breakdown(app):
    return app.screen.query_one("#breakdown")


def panel(app, name) -> str:
    return app.screen.query_one(f"#{name}").content.plain


async def open_roi(pilot, app):
    assert await until(pilot, lambda: app.session.ready)
    await pilot.press("3")
    assert isinstance(app.screen, RoiScreen)
    assert await until(pilot, lambda: app.screen.data is not None and len(breakdown(app).keys) >= 3)


async def test_roi_screen_shows_the_report_numbers_breakdowns_funnel_and_flags(roi_db):
    with connect(roi_db) as conn:
        expected = records(roi_queries.roi_data_sync(conn, *roi_queries.window_days(30, FROZEN.date())), "idea")
    usd = next(s for s in expected["summary"] if s["currency"] == "USD")
    app = make_app(roi_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_roi(pilot, app)
        summary = panel(app, "summary")
        shown_usd = shown_record(usd)  # rounded once, half-even; profit = net − AI cost as shown
        assert f"net {money(usd['net_revenue_minor'], 'USD')}" in summary
        assert f"profit {money(shown_usd.profit, 'USD')}" in summary
        assert f"waste {money(shown_usd.waste, 'USD')}" in summary and shown_usd.waste > 0
        # The model without a price: its attempts counted and named, not costed as 0.
        assert summary.startswith(
            "3 attempts without a price or rate (cost unknown, not counted): gpt-9-preview ×3; 1 task(s) with no "
            "currency, in no row"
        )
        assert "EUR " in summary  # a line per currency, never converted
        assert "last 30 UTC days 12-11..01-09" in panel(app, "roi-status")
        assert breakdown(app).column_names[1] == "type"
        assert ("self_improvement", "USD") in breakdown(app).keys
        # Cycle to the idea breakdown: the same rows as the report's.
        await pilot.press("b", "b", "b")
        assert await until(pilot, lambda: breakdown(app).column_names[1] == "idea")
        rows = expected["breakdown"]
        want = {(r["idea"], r["currency"]): v.profit for r, v in zip(rows, shown_records(rows), strict=True)}
        shown = {
            key: breakdown(app).get_row(key)[breakdown(app).column_names.index("profit")].plain
            for key in breakdown(app).keys
        }
        assert shown == {key: money(v, key[1]) for key, v in want.items()}
        # As displayed, the rows add up to the summary (largest remainder where rounding would not).
        assert money(sum(v for (_, c), v in want.items() if c == "USD"), "USD") == money(shown_usd.profit, "USD")
        await pilot.press("b", "b")
        assert await until(pilot, lambda: breakdown(app).column_names[1] == "week")
        # Funnel: 10 created, 8 succeeded, 2 failed with the reason.
        funnel = panel(app, "funnel")
        assert "USD: 10 created → 8 succeeded (80%), 2 failed" in funnel and "insufficient_funds 2" in funnel
        # Fraud: the burst of eight charges is flagged, with the entries behind it.
        flags = app.screen.flags
        burst = [f for f in flags if f.rule == "velocity_customer"]
        assert burst and burst[0].count >= 5
        app.screen.query_one("#flags").move_cursor(row=[i for i, f in enumerate(flags) if f is burst[0]][0])
        assert await until(pilot, lambda: "entries; newest" in panel(app, "flag-entries"))
        assert "revenue 9.00 USD" in panel(app, "flag-entries")
        # Window: 30 → 90 → 1 day.
        await pilot.press("w", "w")
        assert await until(pilot, lambda: "today (UTC)" in panel(app, "roi-status"))


async def test_roi_window_from_the_command_line_and_live_finishes(roi_db):
    app = make_app(roi_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_roi(pilot, app)
        await pilot.press(":")
        await pilot.press(*"roi 7d", "enter")
        assert await until(pilot, lambda: "last 7 UTC days" in panel(app, "roi-status"))
        before = app.screen.data.costs
        with psycopg.connect(roi_db, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, "
                "finished_at, cost_minor, compute_cost_minor, currency) VALUES ('brand_new', 'gpt-4o', "
                "'succeeded', 1, %(t)s, %(t)s, %(t)s, 1, 1, 'USD')",
                {"t": FROZEN - timedelta(minutes=1)},
            )
        assert await until(
            pilot, lambda: app.screen.data.costs != before and ("brand_new", "USD") in breakdown(app).keys
        )


async def test_breakdown_keeps_what_a_row_earns_costs_wastes_and_makes_at_80_columns(roi_db):
    app = make_app(roi_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_roi(pilot, app)
        table = breakdown(app)
        # Before this change the 80-column table scrolled sideways and hid profit and ROI.
        assert table.column_names[1:] == ["type", "net revenue", "AI cost", "waste", "profit", "ROI"]
        assert table.virtual_size.width <= table.size.width  # nothing to scroll to
        # Wider, the rest follow in priority order.
        await pilot.resize_terminal(120, 36)
        assert await until(pilot, lambda: "cost/ok" in breakdown(app).column_names)
        assert breakdown(app).column_names.index("profit") < breakdown(app).column_names.index("cost/ok")
        # The key is cut from the middle before a core column goes.
        await pilot.resize_terminal(76, 24)
        assert await until(pilot, lambda: breakdown(app).column_names[-1] == "ROI")
        keys = [breakdown(app).get_row(k)[1].plain for k in breakdown(app).keys]
        assert "idea_i…ation" in keys and "implement_idea" not in keys, keys


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
async def test_roi_screen_snapshot(roi_db, size):
    app = make_app(roi_db)
    async with app.run_test(size=size) as pilot:
        await open_roi(pilot, app)
        assert await until(pilot, lambda: app.screen.flags)
        app.dsn_label = "postgresql://fsar:****@db.example:5432/prod"
        app.server_version = "16.4"
        app.update_headers()
        svg = await settled_svg(app, pilot)
    check_snapshot(svg, f"roi_{size[0]}x{size[1]}.svg")
