"""Screen 5, Proposals: the FSAR reports the AI system writes about itself — triage,
decisions, and the blocks they put on execution.

Top: every proposal, most severe first, then newest (severity, status, BLOCKING /
lifted, task type, reported, linked tasks, id); `:proposals new` or
`:proposals self_improvement` filters by status or task type, `esc` clears.
Below, for the highlighted proposal: its headers, the body rendered as Markdown
(sanitised: control sequences removed, redacted by the policy; Rich markup is never
interpreted; bodies over 300 lines or 24 KiB are cut on screen — Textual lays out a
widget per Markdown block — and `fsar-tui proposals show ID` prints all), risks and
mitigations as a checklist (`space` ticks the highlighted item), and the tasks that name
the proposal (`enter` opens one). An implemented proposal's body is headed by "Evidence:
before/after" — did it pay: its task type's failure rate, p90 run time, cost per success
and ROI in the 7 days before and after, with intervals and a verdict
(domain/before_after.py; read again at most every EVIDENCE_REFRESH_S).
Actions, each asking a reason, one transaction with an optimistic state check and an
operator_actions row (db/proposals.py): `a` accept, `x` reject, `i` implemented, `L` lift
the execution block. A blocking proposal stops its task type (execution_blocks) and
shows in every screen's header until lifted, rejected or implemented. A role without
the operator's grants (or --read-only) sees no action keys.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static
from textual.worker import Worker

from fsar_tui import clock
from fsar_tui.db import before_after, proposals
from fsar_tui.db.actions import os_user
from fsar_tui.domain.before_after import Evidence
from fsar_tui.domain.before_after_text import lines as evidence_lines
from fsar_tui.domain.formatting import abbreviate
from fsar_tui.domain.sanitize import safe_str
from fsar_tui.errors import FsarError
from fsar_tui.messages import ApplyFilter, HeaderStale
from fsar_tui.screens.base import FsarScreen
from fsar_tui.widgets.action_dialog import ActionDialog
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel

COLUMNS = ("sev", "status", "block", "type", "reported (UTC)", "tasks", "id")
# Narrower terminals put the id first, cut from the middle (ids differ at either end:
# "fsar_c0a…5f9b2b4a"), and drop the report time before the rest (issue 16 point 6).
LAYOUTS = (
    (99, ("id", "sev", "status", "block", "type", "tasks"), 17),
    (139, ("id", "sev", "status", "block", "type", "reported (UTC)", "tasks"), 18),
    (10**6, COLUMNS, 0),  # the whole id, last
)
CHECK_COLUMNS = ("", "list", "item")
TASK_COLUMNS = ("task", "type", "model", "status", "created (UTC)")
STATUSES = ("new", "accepted", "rejected", "implemented")
BODY_SHOWN = 64 * 1024  # redacted as a whole before the cut below
MARKDOWN_LINES = 300  # what the Markdown widget renders in well under a second here
MARKDOWN_CHARS = 24 * 1024
REFRESH_S = 5
EVIDENCE_REFRESH_S = 60  # several rollup reads: not at every refresh
VERDICT_STYLES = {"helped": "bold green", "hurt": "bold red", "mixed": "bold yellow"}
ACTIONS = ("accept", "reject", "implemented", "lift", "tick")


def columns_for(width: int) -> tuple[tuple[str, ...], int]:
    """The proposal list's columns at this terminal width, and how wide an id may be
    (0: whole)."""
    return next((columns, id_width) for limit, columns, id_width in LAYOUTS if width <= limit)


def utc(at: datetime) -> datetime:
    """Columns say UTC: whatever the session's time zone, show UTC."""
    return at.astimezone(UTC)


def severity_cell(severity: int) -> Text:
    return Text(str(severity), style="bold red" if severity >= 8 else ("yellow" if severity >= 5 else ""))


def block_cell(row: proposals.ProposalRow) -> Text:
    if row.blocking:
        return Text("BLOCKING", style="bold red")
    if row.block_execution:
        return Text("lifted" if row.block_lifted_at else "ended", style="dim")
    return Text("-", style="dim")


def body_markdown(body: str) -> str:
    """The body as the screen shows it: inert, redacted (the first BODY_SHOWN, whole, so
    no secret is cut in two), then cut to what the Markdown widget lays out quickly.

    Textual builds a widget per Markdown block: 16,000 one-word list items (64 KiB, an
    accepted report) took minutes and 2 GB, with no key handled meanwhile. So at most
    MARKDOWN_LINES lines and MARKDOWN_CHARS characters are rendered, and the cut says so."""
    shown = safe_str(body[:BODY_SHOWN])
    lines = shown.splitlines()
    if len(body) > BODY_SHOWN or len(lines) > MARKDOWN_LINES or len(shown) > MARKDOWN_CHARS:
        kept = "\n".join(lines[:MARKDOWN_LINES])[:MARKDOWN_CHARS]
        shown = kept + (
            f"\n\n*(body is {len(body.encode()):,} bytes in {body.count(chr(10)) + 1:,} lines; the first "
            f"{kept.count(chr(10)) + 1:,} lines are shown — `fsar-tui proposals show ID` prints all)*"
        )
    return shown


class ProposalsScreen(FsarScreen):
    REFRESH_S = REFRESH_S

    DEFAULT_CSS = """
    ProposalsScreen .title { height: 1; padding: 0 1; background: $panel; }
    ProposalsScreen #proposals { height: auto; min-height: 2; max-height: 30%; }
    ProposalsScreen #body-scroll { height: 1fr; min-height: 3; }
    ProposalsScreen #body { margin: 0 1; }
    ProposalsScreen #evidence { display: none; height: auto; margin: 0 1 1 1; }
    ProposalsScreen #checklist { height: auto; min-height: 2; max-height: 30%; }
    ProposalsScreen #tasks { height: auto; min-height: 2; max-height: 25%; }
    ProposalsScreen KeyedTable:focus { background-tint: $foreground 5%; }
    """
    BINDINGS = [
        Binding("a", "decide('accept')", "Accept", id="proposals.accept"),
        Binding("x", "decide('reject')", "Reject", id="proposals.reject"),
        Binding("i", "decide('implemented')", "Implemented", id="proposals.implemented"),
        Binding("L", "lift", "Lift block", id="proposals.lift"),
        Binding("space", "tick", "Tick", id="proposals.tick"),
        Binding("escape", "clear_filter", "Clear filter", id="proposals.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[proposals.ProposalRow] = []
        self.filter_text = ""
        self.current: proposals.Proposal | None = None
        self.evidence_read: tuple[str, float] | None = None  # (proposal id, monotonic time)

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield TextPanel(Text("proposals: loading…"), id="list-status", classes="title")
        yield KeyedTable(COLUMNS, id="proposals")
        yield TextPanel(Text("no proposal selected"), id="detail-status", classes="title")
        with VerticalScroll(id="body-scroll"):
            yield Static("", id="evidence")
            yield Markdown("", id="body", open_links=False)  # a report's link text may hide where it goes
        yield TextPanel(Text("risks and mitigations"), id="checklist-status", classes="title")
        yield KeyedTable(CHECK_COLUMNS, id="checklist")
        yield TextPanel(Text("linked tasks"), id="tasks-status", classes="title")
        yield KeyedTable(TASK_COLUMNS, id="tasks")
        yield KeyBar()

    def on_apply_filter(self, message: ApplyFilter) -> None:
        self.filter_text = message.text.strip()
        self.render_list()

    def on_resize(self) -> None:
        if tuple(self.query_one("#proposals", KeyedTable).column_names[1:]) != columns_for(self.size.width)[0]:
            self.render_list()

    # -- reads ------------------------------------------------------------------------------

    def reload(self) -> Worker[None]:
        return self.read_list()

    @work(exclusive=True, group="proposals-list", exit_on_error=False)
    async def read_list(self) -> None:
        self.deliver(self.show_list, await self.read(proposals.list_proposals))

    def show_list(self, rows: list[proposals.ProposalRow]) -> None:
        self.loaded("proposals-list")
        self.rows = rows
        self.render_list()
        key = self.query_one("#proposals", KeyedTable).current_key
        if key is not None:
            self.load_detail(str(key))

    @on(KeyedTable.RowHighlighted, "#proposals")
    def proposal_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        if self.current is None or self.current.row.id != event.key:
            self.load_detail(str(event.key))

    @work(exclusive=True, group="proposal-detail", exit_on_error=False)
    async def load_detail(self, proposal_id: str) -> None:
        found = await self.read(proposals.get_proposal, proposal_id)
        if found is not None:  # None: gone meanwhile
            self.deliver(self.show_detail, found)

    async def show_detail(self, found: proposals.Proposal) -> None:
        self.clear_problem("proposal-detail")
        changed = self.current is None or self.current.row.id != found.row.id or self.current.body != found.body
        self.current = found
        self.render_detail()
        self.request_evidence(found)
        if changed:
            await self.query_one("#body", Markdown).update(body_markdown(found.body))

    def request_evidence(self, found: proposals.Proposal) -> None:
        """Read an implemented proposal's before/after evidence when it is new to the panel or
        EVIDENCE_REFRESH_S old; hide the section for any other proposal."""
        if found.row.status != "implemented":
            self.evidence_read = None
            self.query_one("#evidence", Static).display = False
            return
        last = self.evidence_read
        if last is None or last[0] != found.row.id:
            self.query_one("#evidence", Static).display = False  # not another proposal's meanwhile
        if last is None or last[0] != found.row.id or time.monotonic() - last[1] > EVIDENCE_REFRESH_S:
            self.evidence_read = (found.row.id, time.monotonic())
            self.load_evidence(found.row.id)

    @work(exclusive=True, group="proposal-evidence", exit_on_error=False)
    async def load_evidence(self, proposal_id: str) -> None:
        try:
            found = await self.read(before_after.proposal_evidence, proposal_id, clock.now())
        except Exception:
            self.evidence_read = None  # the failure shows in the header; try again next time
            raise
        self.deliver(self.show_evidence, (proposal_id, found))

    def show_evidence(self, data: tuple[str, Evidence | None]) -> None:
        proposal_id, found = data
        self.clear_problem("proposal-evidence")
        if self.current is None or self.current.row.id != proposal_id or found is None:
            return
        shown = Text()
        for i, line in enumerate(evidence_lines(found)):
            style = "bold" if i == 0 else VERDICT_STYLES.get(found.verdict, "") if line.startswith("  verdict:") else ""
            shown.append(("\n" if i else "") + line, style=style)  # Text(str): no markup is read
        panel = self.query_one("#evidence", Static)
        panel.update(shown)
        panel.display = True

    # -- rendering --------------------------------------------------------------------------

    def visible_rows(self) -> list[proposals.ProposalRow]:
        f = self.filter_text
        if not f:
            return self.rows
        if f in STATUSES:
            return [r for r in self.rows if r.status == f]
        if f == "blocking":
            return [r for r in self.rows if r.blocking]
        return [r for r in self.rows if r.task_type == f]

    def render_list(self) -> None:
        rows = self.visible_rows()
        columns, id_width = columns_for(self.size.width)
        narrow = self.size.width <= LAYOUTS[0][0]

        def cells(r: proposals.ProposalRow) -> list[Text]:
            # Made inert and redacted whole, then cut from the middle.
            shown_id, task_type = safe_str(r.id), safe_str(r.task_type or "-")
            cell = {
                "sev": severity_cell(r.severity),
                "status": Text(r.status, style="bold" if r.status == "new" else ""),
                "block": block_cell(r),
                "type": Text(abbreviate(task_type, 16) if narrow else task_type),
                "reported (UTC)": Text(f"{utc(r.reported_at):%Y-%m-%d %H:%M}"),
                "tasks": Text(f"{r.linked:,}"),
                "id": Text(abbreviate(shown_id, id_width) if id_width else shown_id),
            }
            return [cell[name] for name in columns]

        table = self.query_one("#proposals", KeyedTable)
        table.set_columns(columns)
        table.replace_rows([(r.id, cells(r)) for r in rows])
        blocking = sum(r.blocking for r in self.rows)
        new = sum(r.status == "new" for r in self.rows)
        status = Text(no_wrap=True, overflow="ellipsis")
        shown = f"{len(rows)}" + (f" of {len(self.rows)}" if rows != self.rows else "")
        if len(self.rows) == proposals.LIST_LIMIT:
            shown += f" (the {proposals.LIST_LIMIT} most severe)"
        status.append(f"FSAR proposals · {shown} · {new} new · ")
        status.append(
            f"{blocking} BLOCKING execution" if blocking else "none blocking", style="bold red" if blocking else "green"
        )
        status.append(f" · filter: {self.filter_text or 'none (:proposals new|blocking|TYPE)'}")
        self.query_one("#list-status", TextPanel).show(status)
        if not rows:
            self.current = None
            self.query_one("#detail-status", TextPanel).show(Text("no proposal selected"))

    def render_detail(self) -> None:
        p = self.current
        if p is None:
            return
        r = p.row
        status = Text(no_wrap=True, overflow="ellipsis")
        status.append(safe_str(r.id), style="bold")
        status.append(f" · severity {r.severity} · {r.status} · ")
        if r.blocking:
            status.append(f"BLOCKS {safe_str(r.task_type or 'all')}", style="bold red")
        else:
            status.append(
                "does not block"
                if not r.block_execution
                else f"block lifted {utc(r.block_lifted_at):%Y-%m-%d %H:%M}"
                if r.block_lifted_at
                else f"block ended ({r.status})"
            )
        status.append(f" · reported {utc(r.reported_at):%Y-%m-%d %H:%M} UTC · sha256 {p.sha256[:10]}…")
        for key, value in p.extra_headers.items():
            status.append(f" · {safe_str(key)}: {safe_str(value)}")
        self.query_one("#detail-status", TextPanel).show(status)
        # Numbered from 1 in row order, as `proposals show` prints them and `proposals
        # tick ID N` takes them.
        keyed = [
            (f"{kind}/{i}", item)
            for kind, values in (("risks", p.risks), ("mitigations", p.mitigations))
            for i, item in enumerate(values)
        ]
        items = [
            (
                key,
                [
                    Text(
                        f"{n}. " + ("[x]" if key in p.checklist else "[ ]"),
                        style="green" if key in p.checklist else "",
                    ),
                    Text("risk" if key.startswith("risks/") else "mitigation"),
                    safe_text(item),
                ],
            )
            for n, (key, item) in enumerate(keyed, start=1)
        ]
        self.query_one("#checklist", KeyedTable).replace_rows(items)
        done = len(p.checklist)
        self.query_one("#checklist-status", TextPanel).show(
            Text(
                f"risks {len(p.risks)} · mitigations {len(p.mitigations)} · {done} of {len(items)} ticked"
                + (" · space ticks" if self.can("act") else ""),
                no_wrap=True,
                overflow="ellipsis",
            )
        )
        self.query_one("#tasks", KeyedTable).replace_rows(
            [
                (
                    task_id,
                    [
                        Text(str(task_id)),
                        safe_text(task_type),
                        safe_text(model or "-"),
                        Text(status_),
                        Text(f"{utc(created):%m-%d %H:%M}"),
                    ],
                )
                for task_id, task_type, model, status_, created in p.tasks
            ]
        )
        shown = f"{len(p.tasks)} of {r.linked:,}" if r.linked > len(p.tasks) else f"{r.linked:,}"
        self.query_one("#tasks-status", TextPanel).show(
            Text(f"linked tasks · {shown} · enter opens one", no_wrap=True, overflow="ellipsis")
        )

    # -- actions ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("decide", "lift", "tick"):
            return self.write_allowed()  # removed for read-only sessions and viewers, off while unreachable
        return True

    def focused_table(self) -> KeyedTable:
        focused = self.focused
        return focused if isinstance(focused, KeyedTable) else self.query_one("#proposals", KeyedTable)

    def _selected(self) -> proposals.Proposal | None:
        key = self.query_one("#proposals", KeyedTable).current_key
        if key is None or self.current is None or self.current.row.id != key:
            self.notify("select a proposal first", severity="warning")
            return None
        return self.current

    def action_decide(self, action: str) -> None:
        p = self._selected()
        if p is None:
            return
        allowed, new = proposals.DECISIONS[action]
        if p.row.status not in allowed:
            self.notify(f"proposal is {p.row.status}: {action} applies to {' or '.join(allowed)}", severity="warning")
            return
        extra = " Its execution block ends too." if p.row.blocking and new in ("rejected", "implemented") else ""
        self.change(
            f"{action.capitalize()} proposal {safe_str(p.row.id)} (severity {p.row.severity})?{extra}",
            proposals.decide,
            p.row.id,
            action,
            expected_status=p.row.status,
            done=f"proposal {new}",
        )

    def action_lift(self) -> None:
        p = self._selected()
        if p is None:
            return
        if not p.row.blocking:
            self.notify("this proposal does not block execution", severity="warning")
            return
        self.change(
            f"Lift the block of {safe_str(p.row.id)}? {safe_str(p.row.task_type or 'every')} tasks run again.",
            proposals.lift_block,
            p.row.id,
            done="block lifted",
        )

    def action_tick(self) -> None:
        table = self.query_one("#checklist", KeyedTable)
        if self.focused is not table or table.current_key is None or self.current is None:
            self.notify("tab to the checklist and highlight an item", severity="warning")
            return
        shown = {item.key: item for item in self.current.items()}.get(str(table.current_key))
        if shown is not None:
            # The state wanted is the opposite of the one shown: if someone else changed the
            # item meanwhile, the database changes nothing and says so (no blind flip back).
            self.set_tick(self.current.row.id, shown.number, not shown.ticked)

    @work(exclusive=True, group="proposal-action", exit_on_error=False)
    async def set_tick(self, proposal_id: str, number: int, ticked: bool) -> None:
        try:
            changed = await self.write(proposals.tick, proposal_id, number, ticked=ticked, actor=os_user())
        except FsarError as exc:
            self.notify(exc.message, severity="error", timeout=10)
            return  # any other failure: the base's failure rule says "NOT applied" and why
        if not changed:
            state = "ticked" if ticked else "unticked"
            self.notify(f"item {number} was {state} meanwhile by someone else; nothing changed", severity="warning")
        self.load_detail(proposal_id)

    @work(exclusive=True, group="proposal-action", exit_on_error=False)
    async def change(self, question: str, fn: Any, *args: Any, done: str, **kwargs: Any) -> None:
        reason = await self.app.push_screen_wait(ActionDialog(question, 1))
        if reason is None:
            return
        try:
            # A refusal by the database (a read-only standby, a schema behind head, a missing
            # grant) propagates: the base's failure rule says "NOT applied" and why.
            await self.write(fn, *args, actor=os_user(), reason=reason, **kwargs)
        except FsarError as exc:  # ProposalChanged names who moved it on
            self.notify(exc.message, title="nothing changed", severity="error", timeout=15)
        else:
            self.notify(done, timeout=8)
        self.post_message(HeaderStale())  # the banner
        self.request()

    @on(KeyedTable.RowSelected, "#tasks")
    def open_task(self, event: KeyedTable.RowSelected) -> None:
        from fsar_tui.screens.task_detail import TaskDetailScreen

        self.app.push_screen(TaskDetailScreen(int(str(event.key))))

    def action_clear_filter(self) -> None:
        self.filter_text = ""
        self.render_list()
