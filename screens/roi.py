"""Screen 3, ROI: what the AI work earns against what it costs, per currency, to the cent.

Composes: a status line (window in whole UTC days, breakdown, attribution method, data
age); a summary per currency — revenue, refunds, disputes, fees, net revenue, model and
compute cost, profit, ROI %, cost per successful task, cost of failed tasks, revenue
that could not be attributed — with daily profit as a sparkline; the breakdown table
(by task type, model, rollout revision, idea, day or week); the payment funnel (payment
intents created → succeeded, failure reasons); fraud flags with their reasons, and the
ledger entries behind the highlighted flag.

Numbers come from db/roi.py + domain/roi.py — the same code as `fsar-tui roi` and
`fsar-tui report` — reading the cost and ledger rollups, so a 30-day window over 10 M
tasks costs milliseconds. Money is never converted: one line per currency.

Keys: `w` cycles the window (1, 7, 30, 90 days; `:roi 14d` sets any), `b` cycles the
breakdown, `tab` moves between the breakdown and the fraud flags.
Live: task finishes mark the screen dirty (re-read at most once a second); ledger and
Stripe changes, which arrive without task events, are picked up every 15 s. The fraud
checks read raw ledger entries (velocity needs every charge's time), so they run in their
own worker every 30 s and when the window changes, never holding up the figures.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.worker import Worker

from fsar_tui import clock
from fsar_tui.db import fraud as fraud_queries
from fsar_tui.db import roi as roi_queries
from fsar_tui.domain import roi
from fsar_tui.domain.durations import DurationError, parse_window
from fsar_tui.domain.formatting import money
from fsar_tui.domain.sanitize import safe_str
from fsar_tui.messages import ApplyFilter, LiveBatch
from fsar_tui.screens.base import FsarScreen
from fsar_tui.screens.reload_schedule import ReloadSchedule
from fsar_tui.services.roi_report import breakdown_rows
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel

WINDOW_DAYS = (1, 7, 30, 90)
BREAKDOWNS = ("type", "model", "rollout", "idea", "day", "week")
COLUMNS = ("ok", "failed", "net revenue", "model cost", "compute", "profit", "ROI", "cost/ok")
PERIOD_COLUMNS = ("net revenue", "AI cost", "profit", "")
FLAG_COLUMNS = ("sev", "rule", "subject", "reason")
SPARK = "▁▂▃▄▅▆▇█"
FLAGS_EVERY_S = 30
FLAG_ENTRIES = 24  # the newest entries behind a flag read for its panel
TERMINAL = ("succeeded", "failed", "cancelled")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}%"


def sparkline(values: list[int]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo or 1
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) * (len(SPARK) - 1) / span))] for v in values)


def summary_text(data: roi_queries.RoiData) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    figures = roi.summary(data.costs, data.ledger)
    if not figures:
        text.append("no revenue and no task cost in the window", style="dim")
        return text
    attribution = roi.attribute(data.costs, data.ledger)
    periods = roi.by_period(data.day_costs, data.day_ledger, weekly=False)
    for currency, f in figures.items():
        c = currency
        profit_style = "bold red" if f.profit < 0 else "bold green"
        text.append(f"{c} ", style="bold")
        text.append(
            f"revenue {money(f.revenue, c)}  refunds {money(f.refunds, c)}  disputes "
            f"{money(f.disputes + f.dispute_won, c)}  fees {money(f.payment_fees + f.dispute_fees, c)}  "
        )
        text.append(f"net {money(f.net_revenue, c)}\n", style="bold")
        text.append(f"    model {money(f.model_cost, c)}  compute {money(f.compute_cost, c)}  ")
        text.append(f"profit {money(f.profit, c)}", style=profit_style)
        text.append(
            f"  ROI {pct(f.roi_pct)}  cost/ok {money(f.cost_per_success, c)}  "
            f"failed tasks {money(f.failed_cost, c)} ({f.failed + f.cancelled:,})\n"
        )
        unattributed = attribution.unattributed.get(c)
        daily = [p.profit for p in periods if p.currency == c]
        tail = f"    profit per day {sparkline(daily[-30:])}"
        if unattributed:
            tail += f"  unattributed {money(unattributed, c)}"
        text.append(tail + "\n", style="dim")
    return text


def funnel_text(funnel: list[tuple]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("payment funnel\n", style="bold")
    if not funnel:
        text.append("no payment intents in the window\n(ingest Stripe events: fsar-tui ingest-stripe)", style="dim")
        return text
    by_currency: dict[str, dict] = {}
    for stage, currency, reason, n in funnel:
        entry = by_currency.setdefault(currency, {"created": 0, "succeeded": 0, "failed": 0, "reasons": []})
        entry[stage] += n
        if stage == "failed":
            entry["reasons"].append((reason, n))
    for currency, e in sorted(by_currency.items()):
        rate = f" ({100 * e['succeeded'] / e['created']:.0f}%)" if e["created"] else ""
        text.append(
            f"{currency}: {e['created']:,} created → {e['succeeded']:,} succeeded{rate}, {e['failed']:,} failed\n"
        )
        for reason, n in e["reasons"][:4]:
            text.append("   ")
            text.append_text(safe_text(reason))
            text.append(f" {n:,}\n")
    return text


class RoiScreen(FsarScreen):
    REFRESH_S = 15

    DEFAULT_CSS = """
    RoiScreen #roi-status { height: 1; padding: 0 1; background: $panel; }
    RoiScreen #summary { height: auto; max-height: 9; padding: 0 1; }
    RoiScreen #breakdown { height: auto; min-height: 4; max-height: 30%; }
    RoiScreen #bottom { height: 1fr; min-height: 8; border-top: solid $panel; }
    RoiScreen #funnel { width: 1fr; padding: 0 1; }
    RoiScreen #flags { width: 2fr; }
    RoiScreen #flag-entries { width: 2fr; padding: 0 1; }
    """
    BINDINGS = [
        Binding("w", "cycle_window", "Window", id="roi.window"),
        Binding("b", "cycle_breakdown", "Breakdown", id="roi.breakdown"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.days = 30
        self.by = "type"
        self.data: roi_queries.RoiData | None = None
        self.flags: list = []
        self.flags_schedule = ReloadSchedule(every=FLAGS_EVERY_S)
        self.refreshed_at: datetime | None = None
        self.flags_at: datetime | None = None

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield TextPanel(Text("ROI: loading…"), id="roi-status")
        yield TextPanel(Text(""), id="summary")
        yield KeyedTable(("type", *COLUMNS), id="breakdown")
        with Horizontal(id="bottom"):
            yield TextPanel(Text(""), id="funnel")
            yield KeyedTable(FLAG_COLUMNS, id="flags")
            yield TextPanel(Text(""), id="flag-entries")
        yield KeyBar()

    # -- data -------------------------------------------------------------------------

    def tick(self) -> None:
        super().tick()
        self.flags_schedule.tick(self.session.ready, self.reload_flags)

    def on_live_batch(self, message: LiveBatch) -> None:
        if message.batch.resync or any(
            t.to_status in TERMINAL or t.from_status in TERMINAL for t in message.batch.tasks
        ):
            self.schedule.mark()

    def on_apply_filter(self, message: ApplyFilter) -> None:
        """`:roi 14d` — the command line's argument is the window (whole days) here."""
        try:
            seconds = parse_window(message.text)
        except DurationError as exc:
            self.notify(str(exc), title="window not changed", severity="error")
            return
        self.days = max(1, -(-seconds // 86400))
        if seconds % 86400:
            # ROI is kept per UTC day: say the rounding instead of silently showing "today".
            self.notify(
                f"ROI windows are whole UTC days: {message.text.strip()} is shown as {self.days} day(s)"
                + (" (today)" if self.days == 1 else ""),
                title="window rounded",
                severity="warning",
            )
        self.new_window()

    def new_window(self) -> None:
        self.flags_schedule.mark()
        self.reload_now()

    def reload(self) -> Worker[None]:
        return self.read_figures()

    @work(exclusive=True, group="roi-refresh", exit_on_error=False)
    async def read_figures(self) -> None:
        first, last = roi_queries.window_days(self.days, clock.now().date())
        self.deliver(self.show_figures, await self.read(roi_queries.roi_data, first, last))

    def show_figures(self, data: roi_queries.RoiData) -> None:
        self.loaded("roi-refresh")
        self.refreshed_at = clock.now()
        self.data = data
        self.render_all()

    @work(exclusive=True, group="roi-flags", exit_on_error=False)
    async def reload_flags(self) -> None:
        first, last = roi_queries.window_days(self.days, clock.now().date())
        try:
            flags = await self.read(fraud_queries.fraud_flags, *roi_queries.day_bounds(first, last))
        except BaseException:
            self.flags_schedule.failed()
            raise
        self.deliver(self.show_flags, flags)

    def show_flags(self, flags: list) -> None:
        self.clear_problem("roi-flags")
        self.flags_schedule.done()
        self.flags_at = clock.now()
        self.flags = flags
        self.render_flags()
        self.render_status()

    # -- rendering ----------------------------------------------------------------------

    def render_all(self) -> None:
        if self.data is None:
            return
        summary = summary_text(self.data)
        # Three lines per currency; the panel is as tall as its lines, at most 9 (CSS), and
        # a cut says how many lines are not shown.
        lines = summary.split("\n", allow_blank=True)
        self.query_one("#summary", TextPanel).show_rows([], [line for line in lines if line.plain], what="lines")
        self.render_breakdown()
        self.query_one("#funnel", TextPanel).show(funnel_text(self.data.funnel))
        self.render_status()

    def render_status(self) -> None:
        age = "" if self.refreshed_at is None else f" · as of {self.refreshed_at:%H:%M:%S}"
        window = "today (UTC)" if self.days == 1 else f"last {self.days} UTC days"
        if self.data is not None:
            window += f" {self.data.first:%m-%d}..{self.data.last:%m-%d}"
        checked = (
            "fraud checks: running…"
            if self.flags_at is None
            else f"{len(self.flags)} fraud flag(s) at {self.flags_at:%H:%M:%S}"
        )
        parts = [window, f"by {self.by} (b)", "attribution: cost-proportional", checked]
        self.query_one("#roi-status", TextPanel).show(Text(" · ".join(parts) + age))

    def render_breakdown(self) -> None:
        if self.data is None:
            return
        table = self.query_one("#breakdown", KeyedTable)
        rows: list[tuple[Hashable, list[Text]]] = []
        periodic = self.by in ("day", "week")
        for key, row in breakdown_rows(self.data, self.by):
            c = row.currency
            label = safe_text(key)
            if isinstance(row, roi.DayRow):
                cells = [
                    label,
                    Text(money(row.net_revenue, c)),
                    Text(money(row.ai_cost, c)),
                    Text(money(row.profit, c), style="red" if row.profit < 0 else ""),
                    Text(""),
                ]
            else:
                cells = [
                    label,
                    Text(f"{row.succeeded:,}"),
                    Text(f"{row.failed + row.cancelled:,}"),
                    Text(money(row.net_revenue, c)),
                    Text(money(row.model_cost, c)),
                    Text(money(row.compute_cost, c)),
                    Text(money(row.profit, c), style="red" if row.profit < 0 else ""),
                    Text(pct(row.roi_pct)),
                    Text(money(row.cost_per_success, c)),
                ]
            rows.append(((key, c), cells))
        table.set_columns((self.by, *(PERIOD_COLUMNS if periodic else COLUMNS)))
        table.replace_rows(rows)

    def render_flags(self) -> None:
        table = self.query_one("#flags", KeyedTable)
        rows: list[tuple[Hashable, list[Text]]] = []
        for i, flag in enumerate(self.flags):
            style = "bold red" if flag.severity >= 3 else "yellow" if flag.severity == 2 else ""
            rows.append(
                (
                    i,
                    [
                        Text(str(flag.severity), style=style),
                        Text(flag.rule),
                        safe_text(flag.subject),
                        safe_text(flag.reason),
                    ],
                )
            )
        if not rows:
            rows = [("none", [Text("-"), Text("no fraud flags in the window", style="dim"), Text(""), Text("")])]
        table.replace_rows(rows)
        self.show_flag_entries()

    def show_flag_entries(self) -> None:
        key = self.query_one("#flags", KeyedTable).current_key
        if not isinstance(key, int) or key >= len(self.flags):
            self.query_one("#flag-entries", TextPanel).show(Text("entries behind a flag show here", style="dim"))
            return
        self.read_flag_entries(self.flags[key])

    @work(exclusive=True, group="roi-flag-entries", exit_on_error=False)
    async def read_flag_entries(self, flag: Any) -> None:
        entries = await self.read(fraud_queries.flag_entries, list(flag.entry_ids[:FLAG_ENTRIES]))
        self.deliver(self.render_flag_entries, (flag, entries))

    def render_flag_entries(self, data: tuple[Any, list[fraud_queries.FlagEntry]]) -> None:
        self.clear_problem("roi-flag-entries")
        flag, entries = data
        head = [safe_text(flag.reason), Text(f"{flag.count:,} entries; newest:", style="dim")]
        rows = []
        for e in entries:
            row = Text(f"#{e.id} {e.occurred_at:%m-%d %H:%M} {safe_str(e.kind)} {money(e.amount_minor, e.currency)} ")
            rows.append(row.append_text(safe_text(e.customer_id or "")))
        # As many as the panel's height holds; the last line says how many more the flag has.
        self.query_one("#flag-entries", TextPanel).show_rows(head, rows, total=flag.count, what="entries")

    # -- actions ------------------------------------------------------------------------

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        if event.table.id == "flags":
            self.show_flag_entries()

    def action_cycle_window(self) -> None:
        later = [d for d in WINDOW_DAYS if d > self.days]
        self.days = later[0] if later else WINDOW_DAYS[0]
        self.new_window()

    def action_cycle_breakdown(self) -> None:
        self.by = BREAKDOWNS[(BREAKDOWNS.index(self.by) + 1) % len(BREAKDOWNS)]
        if self.data is not None:
            self.render_breakdown()
            self.render_status()
