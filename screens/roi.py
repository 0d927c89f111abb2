"""Screen 3, ROI: what the AI work earns against what it costs, per currency, to the cent.

Composes: a status line (window in whole UTC days, breakdown, attribution method, data
age); attempts without a price, when there are any (their model cost is unknown, not 0:
how many, which models); a summary per currency — net revenue (revenue, refunds,
disputes, fees), AI cost, waste (the cost of attempts that did not produce their task's
success), profit, ROI %, cost per successful task (waste included), model and compute
cost, cost of failed tasks, revenue that could not be attributed — with daily profit as
a sparkline; the breakdown table (by task type, model, rollout revision, idea, day or
week); the payment funnel (payment intents created → succeeded, failure reasons); fraud
flags with their reasons, and the ledger entries behind the highlighted flag.

Money is rounded once, at display, half-even; the breakdown's rows add up to the summary
as shown (domain/roi_display: largest remainder where rounding each row would not). The
breakdown shows the columns that fit the width, measured on its content, in priority
order: the key, net revenue, AI cost, waste, profit, ROI first (domain/column_fit).

Numbers come from db/roi.py + domain/roi.py — the same code as `fsar-tui roi` and
`fsar-tui report` — reading the cost and ledger rollups, so a 30-day window over 10 M
tasks costs milliseconds. Money is never converted: one line per currency.

Keys: `w` cycles the window (1, 7, 30, 90 days; `:roi 14d` sets any), `b` cycles the
breakdown, `a` cycles the attribution method (completing task, equal split,
cost-proportional; screens/roi_attribution.py: the status names it, and a notice replaces
a ROI column that cannot rank), `i` shows per-idea figures by type / model / rollout,
`tab` moves between the breakdown and the fraud flags.
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
from fsar_tui.domain.attribution import DEFAULT as DEFAULT_METHOD
from fsar_tui.domain.attribution import RANKED_DIMENSIONS, Flat, next_method
from fsar_tui.domain.column_fit import fit_columns
from fsar_tui.domain.durations import DurationError, parse_window
from fsar_tui.domain.formatting import abbreviate, fine_money, money
from fsar_tui.domain.roi_display import shown, shown_rows
from fsar_tui.domain.sanitize import safe_str
from fsar_tui.messages import ApplyFilter, LiveBatch
from fsar_tui.screens import roi_attribution
from fsar_tui.screens.base import FsarScreen
from fsar_tui.screens.reload_schedule import ReloadSchedule
from fsar_tui.services.attribution_report import flat_rows, method_attribution
from fsar_tui.services.roi_report import breakdown_rows
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.keyed_table import MAX_COLUMN_WIDTH, KeyedTable
from fsar_tui.widgets.safe_text import safe_line
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel

WINDOW_DAYS = (1, 7, 30, 90)
BREAKDOWNS = ("type", "model", "rollout", "idea", "day", "week")
COLUMNS = ("ok", "fail/canc", "net revenue", "AI cost", "waste", "profit", "ROI", "cost/ok", "model cost", "compute")
# What a narrow terminal keeps first: what the row earns, costs, wastes and makes.
PRIORITY = ("net revenue", "AI cost", "waste", "profit", "ROI", "cost/ok", "ok", "fail/canc", "model cost", "compute")
CORE = 5  # net revenue … ROI: the key is cut from the middle before one of these is dropped
PERIOD_COLUMNS = ("net revenue", "AI cost", "profit")
SCROLLBAR = 2  # the breakdown's vertical scrollbar, when it has more rows than lines
FLAG_COLUMNS = ("sev", "rule", "subject", "reason")
SPARK = "▁▂▃▄▅▆▇█"
FLAGS_EVERY_S = 30
FLAG_ENTRIES = 24  # the newest entries behind a flag read for its panel
TERMINAL = ("succeeded", "failed", "cancelled")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}%"


def sparkline(values: list[roi.Money]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo or 1
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) * (len(SPARK) - 1) / span))] for v in values)


def unpriced_text(costs: list[roi.CostRow]) -> Text | None:
    """'n attempts without a price …' — any currency or none — or None when there are none."""
    by_model = roi.unpriced_by_model(costs)
    if not by_model:
        return None
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{sum(by_model.values()):,} attempts without a price or rate", style="bold yellow")
    text.append(" (cost unknown, not counted): ")
    text.append_text(safe_line(", ".join(f"{m} ×{n:,}" for m, n in list(by_model.items())[:4])))
    no_currency = roi.tasks_without_currency(costs)
    if no_currency:  # their first attempt had no price: no currency, so in no row
        text.append(f"; {no_currency:,} task(s) with no currency, in no row")
    return text


def summary_text(data: roi_queries.RoiData, method: str = DEFAULT_METHOD) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    unpriced = unpriced_text(data.costs)
    if unpriced is not None:
        text.append_text(unpriced)
        text.append("\n")
    figures = roi.summary(data.costs, data.ledger)
    if not figures:
        text.append("no revenue and no task cost in the window", style="dim")
        return text
    attribution = method_attribution(data, method)
    periods = roi.by_period(data.day_costs, data.day_ledger, weekly=False)
    for currency, f in figures.items():
        c = currency
        v = shown(f)  # as the breakdown's rows add up to
        profit_style = "bold red" if v.profit < 0 else "bold green"
        text.append(f"{c} ", style="bold")
        text.append(f"net {money(v.net_revenue, c)}", style="bold")
        text.append(
            f" = revenue {money(f.revenue, c)}  refunds {money(f.refunds, c)}  disputes "
            f"{money(f.disputes + f.dispute_won, c)}  fees {money(f.payment_fees + f.dispute_fees, c)}\n"
        )
        text.append(f"    AI cost {money(v.ai_cost, c)}  ")
        text.append(f"waste {money(v.waste, c)}", style="yellow" if v.waste else "")
        text.append("  ")
        text.append(f"profit {money(v.profit, c)}", style=profit_style)
        text.append(f"  ROI {pct(f.roi_pct)}\n")
        tail = f"    cost/ok {fine_money(f.cost_per_success, c)}"
        unattributed = attribution.unattributed.get(c)
        if unattributed:
            tail += f"  unattributed {money(unattributed, c)}"
        daily = [p.profit for p in periods if p.currency == c]
        tail += (
            f"  model {money(v.model_cost, c)}  compute {money(v.compute_cost, c)}  "
            f"failed tasks {money(v.failed_cost, c)} ({f.failed + f.cancelled:,})  profit/day {sparkline(daily[-30:])}"
        )
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
            text.append_text(safe_line(reason))
            text.append(f" {n:,}\n")
    return text


class RoiScreen(FsarScreen):
    REFRESH_S = 15

    DEFAULT_CSS = """
    RoiScreen #roi-status { height: 1; padding: 0 1; background: $panel; }
    RoiScreen #summary { height: auto; max-height: 9; padding: 0 1; }
    RoiScreen #roi-notice { height: auto; max-height: 2; padding: 0 1; display: none; }
    RoiScreen #breakdown { height: auto; min-height: 4; max-height: 30%; }
    RoiScreen #bottom { height: 1fr; min-height: 8; border-top: solid $panel; }
    RoiScreen #funnel { width: 1fr; padding: 0 1; }
    RoiScreen #flags { width: 2fr; }
    RoiScreen #flag-entries { width: 2fr; padding: 0 1; }
    """
    BINDINGS = [
        Binding("w", "cycle_window", "Window", id="roi.window"),
        Binding("b", "cycle_breakdown", "Breakdown", id="roi.breakdown"),
        Binding("a", "cycle_attribution", "Attribution", id="roi.attribution"),
        Binding("i", "toggle_per_idea", "Per idea", id="roi.per_idea"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.days = 30
        self.by = "type"
        self.method = DEFAULT_METHOD  # how revenue is attributed (a)
        self.per_idea = False  # the breakdown shows per-idea figures (i)
        self.data: roi_queries.RoiData | None = None
        self.flags: list = []
        self.flags_schedule = ReloadSchedule(every=FLAGS_EVERY_S)
        self.refreshed_at: datetime | None = None
        self.flags_at: datetime | None = None
        self.key_width = MAX_COLUMN_WIDTH  # the breakdown's key column (breakdown_columns)

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield TextPanel(Text("ROI: loading…"), id="roi-status")
        yield TextPanel(Text(""), id="summary")
        yield TextPanel(Text(""), id="roi-notice")
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
        summary = summary_text(self.data, self.method)
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
        parts = [window, f"by {self.by} (b)", roi_attribution.status_part(self.method, self.per_idea, self.by), checked]
        self.query_one("#roi-status", TextPanel).show(Text(" · ".join(parts) + age))

    def render_breakdown(self) -> None:
        if self.data is None:
            return
        table = self.query_one("#breakdown", KeyedTable)
        if self.per_idea and self.by in RANKED_DIMENSIONS:
            self.show_notice({})
            table.set_columns((self.by, *roi_attribution.PER_IDEA_COLUMNS))
            table.replace_rows(roi_attribution.per_idea_rows(self.data, self.by))
            return
        periodic = self.by in ("day", "week")
        found = breakdown_rows(self.data, self.by, self.method)
        flats = self.show_notice(flat_rows(found, self.by))
        cells: list[dict[str, Text]] = []
        for (key, row), v in zip(found, shown_rows([row for _, row in found]), strict=True):
            c = row.currency
            cell = {
                self.by: safe_line(key),
                "net revenue": Text(money(v.net_revenue, c)),
                "AI cost": Text(money(v.ai_cost, c)),
                "profit": Text(money(v.profit, c), style="red" if v.profit < 0 else ""),
            }
            if isinstance(row, roi.Figures):
                cell.update(
                    {
                        "ok": Text(f"{row.succeeded:,}"),
                        "fail/canc": Text(f"{row.failed + row.cancelled:,}"),
                        "waste": Text(money(v.waste, c), style="yellow" if v.waste else ""),
                        "ROI": roi_attribution.roi_cell(flats, key, row, Text(pct(row.roi_pct))),
                        "cost/ok": Text(fine_money(row.cost_per_success, c)),
                        "model cost": Text(money(v.model_cost, c)),
                        "compute": Text(money(v.compute_cost, c)),
                    }
                )
            cells.append(cell)
        columns = self.breakdown_columns(cells, PERIOD_COLUMNS if periodic else COLUMNS)
        key_width = self.key_width
        rows: list[tuple[Hashable, list[Text]]] = []
        for (key, row), cell in zip(found, cells, strict=True):
            label = cell[self.by]
            if label.cell_len > key_width:  # cut from the middle: names differ at either end
                label = Text(abbreviate(label.plain, key_width), style=label.style)
            rows.append(((key, row.currency), [label, *(cell[name] for name in columns[1:])]))
        table.set_columns(columns)
        table.replace_rows(rows)

    def show_notice(self, flats: dict[str, Flat]) -> dict[str, Flat]:
        """The notice instead of a ROI column that cannot rank (`flats`: where it cannot)."""
        notice = self.query_one("#roi-notice", TextPanel)
        text = roi_attribution.notice_text(flats, self.by, self.method)
        notice.display = text is not None
        notice.show(text or Text(""))
        return flats

    def breakdown_columns(self, cells: list[dict[str, Text]], names: tuple[str, ...]) -> tuple[str, ...]:
        """The columns that fit the screen's width, by PRIORITY, in `names` order (the key
        first); sets `key_width`, how wide the key may be."""
        widths = {self.by: len(self.by)} | {name: len(name) for name in names}
        for cell in cells:
            for name, text in cell.items():
                widths[name] = max(widths.get(name, 0), min(text.cell_len, MAX_COLUMN_WIDTH))
        priority = (self.by, *(name for name in PRIORITY if name in names))
        fitted, self.key_width = fit_columns(widths, priority, self.size.width - SCROLLBAR, core=CORE)
        return (self.by, *(name for name in names if name in fitted))

    def on_resize(self) -> None:
        if self.data is not None:
            self.render_breakdown()

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
                        safe_line(flag.subject),
                        safe_line(flag.reason),
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
        head = [safe_line(flag.reason), Text(f"{flag.count:,} entries; newest:", style="dim")]
        rows = []
        for e in entries:
            row = Text(f"#{e.id} {e.occurred_at:%m-%d %H:%M} {safe_str(e.kind)} {money(e.amount_minor, e.currency)} ")
            rows.append(row.append_text(safe_line(e.customer_id or "")))
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

    def action_cycle_attribution(self) -> None:
        self.method = next_method(self.method)
        self.render_all()

    def action_toggle_per_idea(self) -> None:
        self.per_idea = not self.per_idea
        if self.per_idea and self.by not in RANKED_DIMENSIONS:
            self.notify("per-idea figures are by type, model or rollout (b)", title="per idea")
        if self.data is not None:
            self.render_breakdown()
            self.render_status()

    def action_cycle_breakdown(self) -> None:
        self.by = BREAKDOWNS[(BREAKDOWNS.index(self.by) + 1) % len(BREAKDOWNS)]
        if self.data is not None:
            self.render_breakdown()
            self.render_status()
