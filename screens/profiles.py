"""Screen 2, duration profiles: where the time goes, per task type × ai_model.

Composes: a status line (window, sort, compare state, the UTC days of the money, data
age), the profile table (n, mean, p50, p90, p99, max, failure rate, queue-wait p90, cost
per successful task with waste included, waste), and for the selected row its money
(cost/ok, waste, attempts without a price — shown at any width), its run-time histogram
on a log axis and p90 per day. All numbers come from the rollups (db.profiles →
domain.profiles, the same code as `fsar-tui profile`): percentiles within 0.8 %, whatever
the table size. Money is the ROI screen's (domain/profile_money): exact sums over the
whole UTC days that stand for the window (`1h` → today), rounded once at display.

Keys: `w` cycles the window (1h, 24h, 7d, 30d; `:profiles 12h` sets any), `s` / `S`
sort column / direction, `c` cycles compare mode: the preceding window of the same
length, then the two newest rollout revisions seen in the window for each row, then
off (p90 of the other side, change in %, regressions of more than 10 % in red — only
when both sides have at least MIN_SAMPLES runs, and the sample sizes are shown so
nobody trusts a p99 of 12 tasks), `enter` drills down to the row's tasks in the queue.

Live: batches mark the screen dirty; a 1 s timer re-queries when dirty (or every 10 s),
so the screen follows events and queries at most once a second.
Not built yet (said here, not hidden): custom from–to ranges (any length back from
now works: `:profiles 36h`); revisions are shown by their id.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.worker import Worker

from fsar_tui import clock
from fsar_tui.db import profiles as profile_queries
from fsar_tui.domain import histogram, profile_money, profiles
from fsar_tui.domain.durations import DurationError, format_duration, parse_window
from fsar_tui.domain.formatting import abbreviate, duration, fine_money, money
from fsar_tui.domain.profiles import MIN_SAMPLES
from fsar_tui.domain.sanitize import safe_str
from fsar_tui.messages import ApplyFilter, LiveBatch
from fsar_tui.screens.base import FsarScreen
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel

WINDOWS = (3600, 86400, 7 * 86400, 30 * 86400)
COLUMNS = ("type", "model", "n", "mean", "p50", "p90", "p99", "max", "fail%", "wait p90", "cost/ok", "waste")
COMPARE_COLUMNS = {
    "window": ("p90 before", "Δp90", "runs now/before"),
    "rollout": ("revisions", "p90 older", "Δp90", "runs newer/older"),
}
COMPARES = (None, "window", "rollout")
# Narrower terminals keep the columns that say where the time and money go — type, model,
# n, p50, p90, fail%, cost/ok — and drop the rest, least telling last in (waste is also in
# the selected row's panel); in compare mode the comparison's columns come first after
# type, model and p90 (issue 16 point 6).
PRIORITY = ("type", "model", "n", "p50", "p90", "fail%", "cost/ok", "waste", "p99", "wait p90", "mean", "max")
COMPARE_PRIORITY = (
    "type", "model", "p90", "n", "p50", "fail%", "cost/ok", "waste", "p99", "wait p90", "mean", "max"
)  # fmt: skip
LAYOUTS = ((99, 7, 3), (119, 9, 6), (10**6, len(COLUMNS), len(COLUMNS)))  # (width up to, columns, in compare)
NARROW = 99  # up to this width, type and model are cut from the middle (16 and 14 wide)
SORTS = {
    "p90": lambda p: p.p(0.9) or 0,
    "p99": lambda p: p.p(0.99) or 0,
    "p50": lambda p: p.p(0.5) or 0,
    "mean": lambda p: p.mean_ms or 0,
    "n": lambda p: p.n,
    "fail%": lambda p: p.failure_rate or 0,
    "cost/ok": lambda p: 0,  # the group's money: ProfilesScreen.sort_key
    "waste": lambda p: 0,
    "type": lambda p: p.key,
}
REGRESSION = 0.10
HISTOGRAM_BANDS = 24


def columns_for(width: int, compare: str | None) -> tuple[str, ...]:
    """The profile table's columns at this terminal width, in COLUMNS order, then the
    compare mode's."""
    plain, compared = next((n, c) for limit, n, c in LAYOUTS if width <= limit)
    keep = set(COMPARE_PRIORITY[:compared] if compare else PRIORITY[:plain])
    return tuple(c for c in COLUMNS if c in keep) + COMPARE_COLUMNS.get(compare or "", ())


def seconds(ms: float | None) -> str:
    return "-" if ms is None else duration(ms / 1000)


def histogram_lines(run: dict[int, int], width: int = 40, rows: int = 12) -> Text:
    """The run-time histogram on a log axis: buckets merged into `rows` bands of equal
    log width between the smallest and largest bucket, one bar per band."""
    filled = sorted(i for i, n in run.items() if n > 0)
    text = Text(no_wrap=True, overflow="ellipsis")
    if not filled:
        text.append("no runs in the window", style="dim")
        return text
    lo, hi = filled[0], filled[-1]
    step = max(1, -(-(hi - lo + 1) // rows))
    bands = []
    for start in range(lo, hi + 1, step):
        count = sum(run.get(i, 0) for i in range(start, start + step))
        bands.append((histogram.bucket_upper(start - 1), histogram.bucket_upper(start + step - 1), count))
    top = max(c for _, _, c in bands) or 1
    for low, high, count in bands:
        bar = "█" * max(1 if count else 0, round(width * count / top))
        text.append(f"{seconds(low):>7}–{seconds(high):<7} ")
        text.append(bar, style="bold")
        text.append(f" {count:,}\n")
    return text


def newest_two_revisions(by_revision: list[profiles.Profile]) -> dict[tuple, tuple[profiles.Profile, profiles.Profile]]:
    """(type, model) → (newest, previous) revision profiles, for groups seen under two or
    more rollout revisions (revision 0 = tasks stamped with none)."""
    grouped: dict[tuple, list[profiles.Profile]] = {}
    for p in by_revision:
        grouped.setdefault(p.key[:2], []).append(p)
    pairs = {}
    for key, group in grouped.items():
        ran = sorted((p for p in group if p.samples), key=lambda p: int(p.key[2]))
        if len(ran) >= 2:
            pairs[key] = (ran[-1], ran[-2])
    return pairs


class ProfilesScreen(FsarScreen):
    REFRESH_S = 10

    DEFAULT_CSS = """
    ProfilesScreen #profile-status { height: 1; padding: 0 1; background: $panel; }
    ProfilesScreen #profiles { height: auto; min-height: 3; max-height: 50%; }
    ProfilesScreen #detail { height: 1fr; min-height: 8; }
    ProfilesScreen #detail > TextPanel { width: 1fr; height: 100%; padding: 0 1; border-top: solid $panel; }
    """
    BINDINGS = [
        Binding("w", "cycle_window", "Window", id="profiles.window"),
        Binding("s", "cycle_sort", "Sort", id="profiles.sort"),
        Binding("S", "flip_sort", "Reverse", id="profiles.reverse", show=False),
        Binding("c", "toggle_compare", "Compare", id="profiles.compare"),
        Binding("enter", "drill_down", "Tasks", id="profiles.drill"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.window_s = 7 * 86400
        self.sort = "p90"
        self.descending = True
        self.compare: str | None = None
        self.pairs: dict[tuple, tuple[profiles.Profile, profiles.Profile]] = {}  # rollout mode: (newer, older)
        self.profiles: list[profiles.Profile] = []
        self.before: dict[tuple, profiles.Profile] = {}
        self.daily_p90: list[tuple[str, float | None]] = []
        self.refreshed_at: datetime | None = None
        self.money: dict[tuple, profile_money.GroupMoney] = {}
        self.money_days: tuple | None = None  # (first, last) UTC day of the money

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield TextPanel(Text("profiles: loading…"), id="profile-status")
        yield KeyedTable(COLUMNS, id="profiles")
        with Horizontal(id="detail"):
            yield TextPanel(Text(""), id="histogram")
            yield TextPanel(Text(""), id="trend")
        yield KeyBar()

    # -- data -------------------------------------------------------------------------

    def on_live_batch(self, message: LiveBatch) -> None:
        # Only finishes move a profile; other transitions leave it as it is.
        if message.batch.resync or any(
            t.to_status in ("succeeded", "failed", "cancelled") or t.from_status in ("succeeded", "failed", "cancelled")
            for t in message.batch.tasks
        ):
            self.schedule.mark()

    def on_apply_filter(self, message: ApplyFilter) -> None:
        """`:profiles 24h` — the command line's argument is the window here."""
        try:
            self.window_s = parse_window(message.text)
        except DurationError as exc:
            self.notify(str(exc), title="window not changed", severity="error")
            return
        self.reload_now()

    def reload(self) -> Worker[None]:
        return self.read_profiles()

    @work(exclusive=True, group="profiles-refresh", exit_on_error=False)
    async def read_profiles(self) -> None:
        now = clock.now()
        window = timedelta(seconds=self.window_s)
        found = await self.read(profile_queries.profile_window, now - window, now, now, self.compare)
        self.deliver(self.show_profiles, (now, found))

    def show_profiles(self, data: tuple[datetime, profile_queries.ProfileWindow]) -> None:
        self.loaded("profiles-refresh")
        self.refreshed_at, found = data
        self.profiles = found.found
        self.before = {p.key: p for p in found.before}
        self.pairs = newest_two_revisions(profiles.build(found.by_revision))
        self.money = profile_money.by_key(found.money, ("type", "model"))
        self.money_days = found.money_days
        self.render_table()
        self.render_detail()
        self.call_after_refresh(self.render_histogram)  # the table's height is laid out by then

    # -- rendering ----------------------------------------------------------------------

    def render_table(self) -> None:
        table = self.query_one(KeyedTable)
        ordered = sorted(self.profiles, key=self.sort_key, reverse=self.descending)
        rows = []
        columns = columns_for(self.size.width, self.compare)
        narrow = self.size.width <= NARROW
        for p in ordered:
            group = self.money.get(p.key, profile_money.GroupMoney())
            cost, waste = group.cost_per_success, group.waste
            few = p.samples < MIN_SAMPLES
            task_type, model = safe_str(p.key[0]), safe_str(p.key[1] or "-")
            cell = {
                # Made inert and redacted whole, then cut from the middle at narrow widths.
                "type": Text(abbreviate(task_type, 16) if narrow else task_type),
                "model": Text(abbreviate(model, 14) if narrow else model),
                "n": Text(f"{p.n:,}"),
                "mean": Text(seconds(p.mean_ms)),
                "p50": Text(seconds(p.p(0.5))),
                "p90": Text(seconds(p.p(0.9))),
                "p99": Text(seconds(p.p(0.99)), style="dim" if few else ""),
                "max": Text(seconds(p.max_ms)),
                "fail%": Text("-" if p.failure_rate is None else f"{100 * p.failure_rate:.1f}"),
                "wait p90": Text(seconds(p.wait_p90_ms)),
                "cost/ok": Text(fine_money(*cost) if cost else "-"),
                "waste": Text(money(*waste) if waste else "-", style="yellow" if waste and waste[0] else ""),
            }
            cells = [cell[c] for c in columns if c in cell]
            if self.compare == "window":
                cells += self.compare_cells(p, self.before.get(p.key))
            elif self.compare == "rollout":
                pair = self.pairs.get(p.key)
                if pair is None:
                    cells += [Text("one revision", style="dim"), Text("-"), Text("-"), Text("-")]
                else:
                    newer, older = pair
                    cells += [Text(f"{newer.key[2]} vs {older.key[2]}"), *self.compare_cells(newer, older)]
            rows.append((p.key, cells))
        table.set_columns(columns)
        table.replace_rows(rows)
        self.render_status()

    def sort_key(self, p: profiles.Profile) -> Any:
        if self.sort in ("cost/ok", "waste"):
            group = self.money.get(p.key, profile_money.GroupMoney())
            value = group.cost_per_success if self.sort == "cost/ok" else group.waste
            return value[0] if value else 0
        return SORTS[self.sort](p)

    def on_resize(self) -> None:
        if tuple(self.query_one(KeyedTable).column_names[1:]) != columns_for(self.size.width, self.compare):
            self.render_table()
        self.call_after_refresh(self.render_histogram)  # its bands follow its height

    @staticmethod
    def compare_cells(p: profiles.Profile, old: profiles.Profile | None) -> list[Text]:
        then = old.p(0.9) if old else None
        now = p.p(0.9)
        sizes = Text(f"{p.samples:,}/{old.samples if old else 0:,}")
        if old is None or then is None or now is None:
            return [Text("-"), Text("-"), sizes]
        change = (now - then) / then if then else 0.0
        trusted = p.samples >= MIN_SAMPLES and old.samples >= MIN_SAMPLES
        style = ("bold red" if change > REGRESSION else "green" if change < -REGRESSION else "") if trusted else "dim"
        return [Text(seconds(then)), Text(f"{100 * change:+.1f} %" + ("" if trusted else " (few)"), style=style), sizes]

    def render_status(self) -> None:
        age = "" if self.refreshed_at is None else f" · as of {self.refreshed_at:%H:%M:%S}"
        parts = [
            f"window {format_duration(self.window_s)}",
            f"{len(self.profiles)} type × model groups",
            f"sort {self.sort} {'desc' if self.descending else 'asc'}",
            {"window": "compare: previous window", "rollout": "compare: newest two revisions"}.get(
                self.compare or "", "compare off (c)"
            ),
            f"percentiles within {100 * histogram.ALPHA:.1f} %",
            f"money {self.money_label()}{age}",
        ]
        self.query_one("#profile-status", TextPanel).show(Text(" · ".join(parts)))

    def money_label(self) -> str:
        """The UTC days the money columns cover (the ROI screen's window of as many days)."""
        if self.money_days is None:
            return "…"
        first, last = self.money_days
        return "today (UTC)" if first == last else f"UTC days {first:%m-%d}..{last:%m-%d}"

    def money_line(self, key: tuple) -> Text:
        """The selected group's money, at any width: attempts without a price, waste, cost/ok."""
        group = self.money.get(key, profile_money.GroupMoney())
        cost, waste = group.cost_per_success, group.waste
        line = Text(no_wrap=True, overflow="ellipsis")
        if group.unpriced:
            line.append(f"{group.unpriced:,} attempts without a price · ", style="bold yellow")
        line.append(f"waste {money(*waste) if waste else '-'}", style="yellow" if waste and waste[0] else "")
        line.append(f" · cost/ok {fine_money(*cost) if cost else '-'} (waste included)")
        line.append(f" · {self.money_label()}\n", style="dim")
        return line

    def selected(self) -> profiles.Profile | None:
        key = self.query_one(KeyedTable).current_key
        return next((p for p in self.profiles if p.key == key), None)

    def render_detail(self) -> None:
        p = self.render_histogram()
        if p is None:
            self.query_one("#trend", TextPanel).show(Text(""))
        else:
            self.show_trend(p.key)

    def render_histogram(self) -> profiles.Profile | None:
        p = self.selected()
        hist = self.query_one("#histogram", TextPanel)
        if p is None:
            hist.show(Text("no finished tasks in the window", style="dim"))
            return None
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append_text(self.money_line(p.key))
        head.append(
            f"run time, {safe_text(' × '.join(str(k) for k in p.key)).plain} ({p.samples:,} runs, log axis)\n",
            style="bold",
        )
        # As many bands as the panel's height holds (HISTOGRAM_BANDS at most).
        bands = max(4, min(HISTOGRAM_BANDS, hist.size.height - 2))
        head.append_text(histogram_lines(p.run, width=max(10, hist.content_region.width - 28), rows=bands))
        hist.show(head)
        return p

    @work(exclusive=True, group="profiles-trend", exit_on_error=False)
    async def show_trend(self, key: tuple) -> None:
        """p90 per day (per hour for windows up to two days) of the selected group."""
        now = clock.now()
        hourly = self.window_s <= 2 * 86400
        start = now - timedelta(seconds=self.window_s)
        rows = await self.read(profile_queries.group_series, start, now, now, key, hourly)
        self.deliver(self.render_trend, (hourly, rows))

    def render_trend(self, data: tuple[bool, list[tuple]]) -> None:
        self.clear_problem("profiles-trend")
        hourly, rows = data
        series: dict = {}
        for slot, bucket, n in rows:
            series.setdefault(slot, {})[bucket] = n
        unit = "hour" if hourly else "day"
        values = [(slot, histogram.quantile(h, 0.9)) for slot, h in sorted(series.items())]
        top = max((v for _, v in values if v), default=1)
        lines = [] if series else [Text("no runs", style="dim")]
        for slot, value in values:
            line = Text(f"{slot:%m-%d %H:%M} " if hourly else f"{slot:%m-%d} ")
            line.append(f"{seconds(value):>7} ")
            lines.append(line.append("▇" * max(1, round(24 * (value or 0) / top))))
        # The newest as many as the panel's height holds; the line under the heading says
        # how many earlier ones are not shown.
        head = Text(f"p90 per {unit}", style="bold")
        self.query_one("#trend", TextPanel).show_rows(head, lines, what=f"{unit}s", keep="last")

    # -- actions ------------------------------------------------------------------------

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        self.render_detail()

    def on_keyed_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.action_drill_down()  # the table takes `enter` itself when it has focus

    def action_cycle_window(self) -> None:
        later = [w for w in WINDOWS if w > self.window_s]
        self.window_s = later[0] if later else WINDOWS[0]
        self.reload_now()

    def action_cycle_sort(self) -> None:
        names = list(SORTS)
        self.sort = names[(names.index(self.sort) + 1) % len(names)]
        self.render_table()

    def action_flip_sort(self) -> None:
        self.descending = not self.descending
        self.render_table()

    def action_toggle_compare(self) -> None:
        self.compare = COMPARES[(COMPARES.index(self.compare) + 1) % len(COMPARES)]
        self.reload_now()

    def action_drill_down(self) -> None:
        p = self.selected()
        if p is None:
            return
        terms = [f"type:{p.key[0]}", f"since:{format_duration(self.window_s)}"]
        if p.key[1]:
            terms.insert(1, f"model:{p.key[1]}")
        self.app.switch_mode("queue")
        text = " ".join(terms)
        self.app.call_after_refresh(lambda: self.app.screen.post_message(ApplyFilter(text)))
