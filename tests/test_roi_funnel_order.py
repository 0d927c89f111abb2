"""The ROI funnel's rows come out in one order, run after run: stage, currency, count
(largest first), then reason — equal counts no longer come in the aggregate's order
(`roi --format json` differed between runs on the same data)."""

from __future__ import annotations

from datetime import date

import psycopg

from fsar_tui.db.roi import roi_data_sync
from support.sql import x

REASONS = ["processing_error", "do_not_honor", "insufficient_funds", "expired_card", "generic_decline", "card_declined"]


def test_equal_counts_are_ordered_by_reason(db_dsn):
    day = date(2026, 11, 1)
    # Spread over two days so the aggregate has to merge groups, inserted in no order.
    for reason in REASONS:
        for d in (day, date(2026, 11, 2)):
            x(
                db_dsn,
                "INSERT INTO payment_funnel_daily VALUES (%s, 'failed', 'usd', %s, 3)",
                (d, reason),
            )
    x(db_dsn, "INSERT INTO payment_funnel_daily VALUES (%s, 'failed', 'usd', 'zzz_most', 9)", (day,))
    with psycopg.connect(db_dsn) as conn:
        funnel = roi_data_sync(conn, day, date(2026, 11, 2)).funnel
    assert [tuple(r) for r in funnel] == [("failed", "usd", "zzz_most", 9)] + [
        ("failed", "usd", reason, 6) for reason in sorted(REASONS)
    ]
