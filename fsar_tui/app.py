"""The Textual App: screen registry, global bindings, header state, live events.

Screens are Textual modes (each keeps its own stack: `enter` on a task pushes the
detail screen inside the queue mode, `esc` pops it): 1 Queue, 2 Profiles, 3 ROI,
4 Audit & Rollback (rollouts and rollback, gates, drift alerts, the operator log),
5 Proposals (FSAR reports: triage, decisions, blocks). Global keys: 1–5, `:` command
mode, `?` help, ctrl+p palette, `q` quit; every binding has an id and `[keymap]` in
config.toml remaps it.

Privileges: at connect the app reads what its database role may do (db/governance.py):
a role without the operator's grants runs read-only (the header says READ-ONLY and the
role); gate overrides need fsar_admin; `--reveal` is allowed only to fsar_admin, is
logged before anything raw is shown, and the header then says RAW DATA REVEALED.
Every screen's header carries the banner of proposals and gates blocking execution and
of canaries aborted today (read with the alert counts every 15 s and after every
proposal action); a canary the audit pass's judge promoted or aborted is a toast.
`--ingest-live` also ingests FSAR reports published on fsar/v1/proposals
(live/proposal_feed.py).

The app owns the database pool (opened in a worker; psycopg_pool checks connections,
so after a database restart the next query gets a fresh one), the live service (its
batches are forwarded to the active screen as `LiveBatch`), and the header state:
connected / RECONNECTING with the age of the data shown, live source, alerts.

Garbage collection: once the first screen is up, everything alive (Textual, Rich,
psycopg, the widget tree, ~60,000 objects) is moved out of the collector's reach with
gc.freeze(). Under a busy fleet the screen churns through short-lived objects and
every full collection walked the whole heap; with the simulator at 1,000 events/s
(live bench) full collections were seen pausing the loop 50–160 ms, and A/B runs
with the freeze had lower key-press latency at p50 and at the tail.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Iterable, Sequence
from datetime import datetime

import psycopg
from psycopg_pool import PoolTimeout
from textual import work
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.filter import LineFilter
from textual.screen import Screen

from fsar_tui import clock
from fsar_tui.config import Settings
from fsar_tui.db.connect import open_pool
from fsar_tui.db.server import aserver_facts
from fsar_tui.domain.events import Presence
from fsar_tui.domain.redact import policy as current_policy
from fsar_tui.domain.sanitize import Reveal, install_reveal
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import FsarError
from fsar_tui.live.service import LiveService
from fsar_tui.messages import (
    AuditChecked,
    AuditCheckRequested,
    CommandEntered,
    DatabaseReady,
    HeaderStale,
    LiveBatch,
)
from fsar_tui.screens.audit import AuditScreen
from fsar_tui.screens.canary_panel import outcome_toasts
from fsar_tui.screens.command_line import CommandLine
from fsar_tui.screens.command_mode import SCREENS, CommandMode
from fsar_tui.screens.help import HelpScreen
from fsar_tui.screens.profiles import ProfilesScreen
from fsar_tui.screens.proposals import ProposalsScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.screens.roi import RoiScreen
from fsar_tui.services.audit_pass import (
    CHECK_EVERY_S,
    FIRST_CHECK_AFTER_S,
    PASS_SLACK_S,
    CheckResult,
    scheduled_check,
)
from fsar_tui.session import Session
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.terminal_filter import TerminalTextFilter


def theme_for(term: str | None, colorterm: str | None) -> str | None:
    """On a 16-colour terminal, use the ANSI theme (the terminal's own palette, which the
    operator already finds legible) instead of truecolor shades that collapse.
    Decided from TERM/COLORTERM, as the terminal declares itself."""
    if (colorterm or "").lower() in ("truecolor", "24bit"):
        return None
    term = (term or "").lower()
    if "256" in term or "direct" in term or "truecolor" in term:
        return None
    return (
        "ansi-dark"
        if term in ("xterm", "screen", "tmux", "linux", "vt100", "vt220", "ansi", "rxvt", "cygwin")
        else None
    )


_TERMINAL_FILTER = TerminalTextFilter()


class FsarApp(App):
    TITLE = "fsar-tui"
    PRIVILEGES_EVERY_S = 30.0  # how often the role's privileges are read again
    MODES = {
        "queue": QueueScreen,
        "profiles": ProfilesScreen,
        "roi": RoiScreen,
        "audit": AuditScreen,
        "proposals": ProposalsScreen,
    }
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("colon", "command_mode", "Command", id="command", show=False),
        *(
            Binding(key, f"switch_mode('{mode}')", title, id=f"screen.{mode}", show=False)
            for mode, (key, title) in SCREENS.items()
        ),
    ]

    def __init__(self, *, settings: Settings, dsn: str) -> None:
        super().__init__()
        self.settings = settings
        self.dsn = dsn
        self.dsn_label = mask_dsn(dsn)
        self.session = Session(dsn, settings)
        self.server_version = ""
        self.connect_problem: str | None = None  # why the first connection failed, while it does
        self.live_name = "-"
        self.alerts = (0, 0)  # open drift alerts: (firing, acked)
        self.blocks: tuple = ()  # proposals blocking execution: (id, task type, severity)
        self.gate_blocks: tuple = ()  # failing hard gates blocking execution: (gate, scope)
        self.canary_blocks: tuple = ()  # canaries aborted in the last 24 h, nothing deployed since: (target, why)
        self.stuck = 0  # running tasks whose lease expired (no live worker renewed it)
        self.revealed = False
        # This session's reveal switch, shared by every task the app starts (sanitize.py).
        self.reveal = install_reveal(Reveal())
        self.redaction = current_policy()  # handed to the audit pass's thread
        self.shown_reachable = False  # the session state the key bar was last drawn for
        self.audit_check: CheckResult | None = None
        # When the last scheduled pass failed and why (None after a pass that worked).
        self.audit_failure: tuple[datetime, str] | None = None
        self.presence: dict[str, str] = {}
        self.live: LiveService | None = None
        self.command_mode = CommandMode(self, self.MODES)  # `:` and ctrl+p (screens/command_mode.py)
        self.set_keymap(settings.keymap)

    def get_line_filters(self) -> Sequence[LineFilter]:
        # Every rendered line of every widget passes the terminal-text filter: nothing
        # agent-written reaches the terminal as a control or bidi character, whatever
        # the widget that drew it forgot (widgets/terminal_filter.py).
        return [*super().get_line_filters(), _TERMINAL_FILTER]

    # -- lifecycle --------------------------------------------------------------------

    def on_mount(self) -> None:
        # psycopg logs each failed reconnect and each query cancelled at exit; the header
        # already says the first, and a stray stderr line would tear the screen.
        for name in ("psycopg", "psycopg.pool"):
            logging.getLogger(name).addHandler(logging.NullHandler())
            logging.getLogger(name).propagate = False
        theme = None if self.is_headless else theme_for(os.environ.get("TERM"), os.environ.get("COLORTERM"))
        if theme:
            self.theme = theme
        self.switch_mode("queue")
        self.set_interval(1.0, self.update_headers)
        self.connect()
        self.call_after_refresh(self.freeze_startup_heap)

    @staticmethod
    def freeze_startup_heap() -> None:
        gc.collect()
        gc.freeze()

    @work(exclusive=True, group="db-connect", exit_on_error=False)
    async def connect(self) -> None:
        session = self.session
        while session.pool is None:
            pool = None
            try:
                pool = await open_pool(
                    self.dsn, statement_timeout_ms=self.settings.statement_timeout_ms, read_only=session.read_only
                )
                async with pool.connection() as conn:
                    self.server_version = (await aserver_facts(conn)).version.split(" ")[0]
                    await self.read_privileges(conn)
                # Screens start querying once the pool is there: by then what the role may
                # do is known, so no action key is offered and then withdrawn.
                session.pool = pool
                session.mark_reachable()
                self.connect_problem = None
                self.update_headers()
                screen = self.active_screen()
                if screen is not None:
                    screen.post_message(DatabaseReady())
                # The audit pass (rehearsals, gate evaluation, drift) waits until the first
                # screen has loaded: its queries are not what an operator opened the app for.
                self.set_timer(FIRST_CHECK_AFTER_S, self.run_audit_check)
                self.set_interval(CHECK_EVERY_S, self.run_audit_check)
                self.set_interval(15, self.poll_alert_counts)
                self.set_interval(self.PRIVILEGES_EVERY_S, self.recheck_privileges)
                self.read_alert_counts()
                if self.settings.ingest_live:
                    self.ingest_live()
            except (FsarError, psycopg.Error) as err:
                if session.pool is None and pool is not None:
                    await pool.close()  # opened, then the first queries failed: try afresh
                self.connect_problem = session.describe(err)
                session.state = f"unreachable: {self.connect_problem}"
                self.update_headers()
                await asyncio.sleep(2.0)
        self.start_live()

    async def read_privileges(self, conn: psycopg.AsyncConnection) -> None:
        """What the role may do decides what the screens offer; Postgres enforces it anyway."""
        from fsar_tui.db.actions import os_user
        from fsar_tui.db.governance import Privileges, RevealRefused, privileges, record_reveal

        session = self.session
        try:
            session.privileges = await privileges(conn)
        except psycopg.Error as exc:
            # A schema behind head (no roles yet): offer the actions and let Postgres decide.
            await conn.rollback()
            session.privileges = Privileges(conn.info.user, False, True, True, False, False)
            self.notify(
                f"could not read the role's privileges ({type(exc).__name__}); is the schema at head? "
                "(fsar-tui migrate)",
                severity="warning",
                timeout=15,
            )
        if not session.privileges.act and not session.read_only:
            session.read_only = True
            self.notify(f"role {session.privileges.role} may only read: actions are hidden", timeout=8)
        if self.settings.reveal and self.settings.read_only:
            self.notify(
                "--reveal refused: a reveal is logged, and --read-only writes nothing; showing redacted data",
                severity="error",
                timeout=15,
            )
        elif self.settings.reveal and not self.revealed:
            try:
                await record_reveal(
                    conn, actor=os_user(), target="app session", reason="fsar-tui --reveal (the app shows raw data)"
                )
            except RevealRefused as exc:
                self.notify(exc.message + "; showing redacted data", severity="error", timeout=15)
            except psycopg.Error as exc:  # whatever else: no log row, no reveal
                await conn.rollback()
                self.notify(
                    f"--reveal refused: the reveal could not be logged ({type(exc).__name__}); showing redacted data",
                    severity="error",
                    timeout=15,
                )
            else:
                self.revealed = True
                self.reveal.on = True
                session.wrote_elsewhere()  # the log row: read back from where it is (read_routing.py)
        screen = self.active_screen()
        if screen is not None:
            screen.refresh_bindings()

    @work(exclusive=True, group="privileges", exit_on_error=False)
    async def recheck_privileges(self) -> None:
        """A GRANT or REVOKE after start shows without a restart: the keys a role may use
        follow what it may do now (Postgres enforces it either way)."""
        from fsar_tui.db.governance import privileges

        session = self.session
        if not session.ready:
            return
        try:
            fresh = await session.read(privileges)
        except (FsarError, psycopg.Error):
            return  # the screens say what is wrong with the database; try again next round
        changed, note = session.adopt_privileges(fresh)
        if note:
            self.notify(note, timeout=8)
        if changed and (screen := self.active_screen()) is not None:
            screen.refresh_bindings()

    def can(self, power: str) -> bool:
        return self.session.can(power)

    @work(exclusive=True, group="ingest-live", exit_on_error=False)
    async def ingest_live(self) -> None:
        from fsar_tui.live.proposal_feed import follow_proposals

        if not self.settings.mqtt_url:
            self.notify("--ingest-live needs an MQTT broker (--mqtt-url)", severity="error", timeout=15)
            return
        if not self.can("act"):  # ingesting writes: not in --read-only, not for a viewer role
            self.notify(
                "--ingest-live is off: this session may not write (read-only or a viewer role)",
                severity="warning",
                timeout=15,
            )
            return

        def ingested(message: str, ok: bool) -> None:
            self.notify(message, title="FSAR report", severity="information" if ok else "error", timeout=10)
            if ok:
                self.session.wrote_elsewhere()  # the proposal: read back from where it is
                self.read_alert_counts()

        await follow_proposals(
            self.settings.mqtt_url, self.dsn, ingested, statement_timeout_ms=self.settings.statement_timeout_ms
        )

    @work(exclusive=True, group="live", exit_on_error=False)
    async def start_live(self) -> None:
        try:
            self.live = self.session.live_service()
            self.live_name = await self.live.start()
        except (FsarError, psycopg.Error, OSError) as exc:
            self.live_name = f"off ({self.session.describe(exc)[:60]}; refreshing every 5s)"
            return
        self.update_headers()
        async for batch in self.live.bus.subscribe():
            if batch.presence:
                self.note_presence(batch.presence)
            if batch.control:  # a verdict, a block, a rollout: the header's counts may have moved
                self.read_alert_counts()
            screen = self.active_screen()
            if screen is not None:
                screen.post_message(LiveBatch(batch))

    # -- audit: scheduled checks and the header's alert count ------------------------------

    @work(thread=True, exclusive=True, group="audit-check", exit_on_error=False)
    def run_audit_check(self) -> None:
        try:
            result = scheduled_check(
                self.dsn,
                read_only=self.session.read_only,
                policy=self.redaction,
                retention=self.settings.retention,  # config.toml [retention]: applied when due
                statement_timeout_ms=self.settings.statement_timeout_ms,
                min_interval_s=CHECK_EVERY_S - PASS_SLACK_S,  # once per interval, however many panels
                notify=self.settings.notify,  # config.toml [notify]: the pass notifies changes
            )
        except Exception as exc:  # a failing pass (or a bug in one check) must not end the console
            # …nor pass silently: screen 4 says the pass failed and that its readiness is stale.
            self.call_from_thread(self.audit_failed, self.session.describe(exc))
            return
        if result.canaries and self.settings.mqtt_url:  # the judge moved a canary: tell the workers
            from fsar_tui.services.canary_pass import announce_outcomes

            problems = announce_outcomes(self.settings.mqtt_url, result.canaries)
            result.canary_problem = "; ".join(problems) or None
        self.call_from_thread(self.audit_checked, result)

    def audit_failed(self, why: str) -> None:
        self.session.wrote_elsewhere()  # a failed pass may have written some of its checks
        self.audit_failure = (clock.now(), why)
        screen = self.active_screen()
        if screen is not None:
            screen.post_message(AuditChecked(None))

    def on_audit_check_requested(self, message: AuditCheckRequested) -> None:
        self.run_audit_check()

    def on_header_stale(self, message: HeaderStale) -> None:
        self.read_alert_counts()

    def on_command_entered(self, message: CommandEntered) -> None:
        self.command_mode.run(message.text)

    def audit_checked(self, result: CheckResult) -> None:
        # The pass wrote on connections of its own (verdicts, alerts): reads go to the
        # primary until the replica has them, so screen 4 and the banner show this pass.
        self.session.wrote_elsewhere()
        self.audit_check = result
        self.audit_failure = None
        for message, title, severity in outcome_toasts(result.canaries):  # the judge moved a canary
            self.notify(message, title=title, severity=severity, timeout=15)
        screen = self.active_screen()
        if screen is not None:
            screen.post_message(AuditChecked(result))
        self.read_alert_counts()

    def poll_alert_counts(self) -> None:
        """The 15 s timer. While the screen is idle (no key pressed for 30 s) the header's
        counts are read after each audit pass (every minute) and on control events only:
        an idle panel costs the database almost nothing (issue 18)."""
        schedule = getattr(self.active_screen(), "schedule", None)  # FsarScreens have one
        if schedule is None or not schedule.idle():
            self.read_alert_counts()

    @work(exclusive=True, group="alert-counts", exit_on_error=False)
    async def read_alert_counts(self) -> None:
        from fsar_tui.db.blocks import banner_blocks
        from fsar_tui.db.drift import alert_counts
        from fsar_tui.db.tasks import fleet_health

        if not self.session.ready:
            return
        try:
            alerts = await self.session.read(alert_counts)
            self.blocks, self.gate_blocks, self.canary_blocks = await self.session.read(banner_blocks)
            self.stuck = (await self.session.read(fleet_health)).lease_expired
        except (FsarError, psycopg.Error, PoolTimeout):
            return  # the screens say what fails; the header keeps the last counts
        self.alerts = (alerts[0], alerts[1])
        self.update_headers()

    async def on_unmount(self) -> None:
        if self.live is not None:
            await self.live.stop()
        await self.session.close()

    # -- header state ---------------------------------------------------------------------

    def note_presence(self, presence: list[Presence]) -> None:
        for p in presence:
            self.presence[p.worker_id] = p.state

    def sync_header(self, header: StatusHeader) -> None:
        header.database = self.dsn_label
        header.server = self.server_version
        header.state = self.session.state
        header.since = self.session.fresh_at
        header.reads, header.reads_stale = self.session.reads_shown()  # with a read replica (read_routing.py)
        source = self.live_name
        if self.live is not None and self.live.source is not None and self.live.source.state != "connected":
            source = f"{source} ({self.live.source.state})"
        header.live = source
        header.alerts = self.alerts
        header.read_only = self.session.read_only
        header.blocks = self.blocks
        header.gate_blocks = self.gate_blocks
        header.canary_blocks = self.canary_blocks
        header.stuck = self.stuck
        header.revealed = self.revealed
        privileges = self.session.privileges
        header.role = privileges.label if privileges else ""
        header.refresh()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity="information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        # Notifications quote the database and published reports (actors, report excerpts,
        # error text): never markup, whoever calls (Widget.notify passes markup=True on) —
        # `[/x]` would crash the toast and `[@click=…]` would be an action.
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def switch_mode(self, mode: str):
        # A mode's screen keeps its header from when it was last shown: bring it up to
        # date now (the banner, the alerts), not on the next 1 s tick.
        result = super().switch_mode(mode)
        self.call_after_refresh(self.update_headers)
        return result

    def active_screen(self) -> Screen | None:
        """The current screen, or None while the app is starting or shutting down."""
        try:
            return self.screen
        except ScreenStackError:
            return None

    def update_headers(self) -> None:
        screen = self.active_screen()
        if screen is not None:
            for header in screen.query(StatusHeader):
                self.sync_header(header)
            if self.session.reachable != self.shown_reachable:
                # Write keys show disabled while the database is not answering (and back).
                self.shown_reachable = self.session.reachable
                screen.refresh_bindings()

    # -- global actions ---------------------------------------------------------------------

    def action_help(self) -> None:
        title = getattr(self.screen, "HELP_TITLE", None) or SCREENS.get(self.current_mode, ("", "fsar-tui"))[1]
        self.push_screen(HelpScreen.of(self, title))

    def action_help_quit(self) -> None:
        # Textual's own says "Press [b]ctrl+q[/b]" — markup our toasts never interpret.
        self.notify("ctrl+c does not quit: press q (or ctrl+q)", title="quit?", timeout=5)

    def action_command_mode(self) -> None:
        self.push_screen(CommandLine(), self.command_mode.run)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from self.command_mode.palette(screen)
