"""What screen 4 (Audit & Rollback) draws in its four tables, as Rich Text (no widgets, no
database): which columns a terminal width gets, and the cells of a rollout target, a gate,
a drift alert and a logged action. Untrusted text goes through `safe_str` / `safe_text`
(inert, redacted) before anything is cut.

Narrow terminals (under 120 columns) keep what a decision needs and put it on screen:
a target's name (cut from the middle under 100), active and rollback revisions and readiness; a
gate's verdict, name, value and samples before its condition; the log without the
database role (issue 16 point 6). `share_heights` gives the four stacked tables the
screen's height by what they hold; `more_below` says how many rows a table's height hides.
`retention_line`: the scheduled pass's retention, one line (services/audit_pass.py step 3).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from fsar_tui import clock
from fsar_tui.db import drift, gates, operator_log, rollouts
from fsar_tui.domain.formatting import abbreviate
from fsar_tui.domain.gates import scope_label
from fsar_tui.domain.sanitize import one_line, safe_str
from fsar_tui.services.audit_pass import BUSY, ELSEWHERE, FAILED, OFF, RAN, READ_ONLY, RetentionStatus
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.safe_text import safe_text

TARGET_COLUMNS = ("target", "kind", "type", "active", "rollback to", "readiness")
GATE_COLUMNS = ("verdict", "gate", "condition", "scope", "value", "n", "at (UTC)")
ALERT_COLUMNS = ("id", "state", "indicator", "scope", "baseline", "now", "since (UTC)")
LOG_COLUMNS = ("seq", "at (UTC)", "actor", "role", "action", "target", "reason")
NARROW = 119  # up to this width the narrow columns, from 120 every column
CUT = 99  # up to this width, target names are cut from the middle
NARROW_COLUMNS = {
    "targets": ("target", "active", "rollback to", "readiness"),
    "gates": ("verdict", "gate", "value", "n", "condition"),
    "alerts": ALERT_COLUMNS,
    "log": ("seq", "at (UTC)", "actor", "action", "target", "reason"),
}
WIDE_COLUMNS = {"targets": TARGET_COLUMNS, "gates": GATE_COLUMNS, "alerts": ALERT_COLUMNS, "log": LOG_COLUMNS}
TARGET_WIDTH = 24  # a target's name at narrow widths, cut from the middle
FLOORS = (2, 2, 2, 3)  # lines each table keeps (a header and a row; the log three)
CAPS = (0.4, 0.4, 0.25)  # the share of the height targets, gates and alerts take first


def columns_for(table: str, width: int) -> tuple[str, ...]:
    return (NARROW_COLUMNS if width <= NARROW else WIDE_COLUMNS)[table]


def share_heights(available: int, wants: Sequence[int], floors: Sequence[int], caps: Sequence[float]) -> list[int]:
    """Heights of stacked tables in priority order, the last taking what is left over.

    Each gets its floor; then, in order, what it wants up to its cap (a share of
    `available`: one long table does not push the others to their floors); the last keeps
    what it wants of the rest; what is still left goes, in order, to those that want more,
    and whatever remains to the last. So rows are cut only when the height is short."""
    heights = list(floors)
    left = available - sum(floors)
    for i, cap in enumerate(caps):
        extra = max(0, min(left, min(wants[i], int(available * cap)) - heights[i]))
        heights[i] += extra
        left -= extra
    kept = max(0, min(left, wants[-1] - heights[-1]))
    left -= kept
    for i in range(len(caps)):
        extra = max(0, min(left, wants[i] - heights[i]))
        heights[i] += extra
        left -= extra
    heights[-1] += kept + max(0, left)
    return heights


def wanted_lines(table: KeyedTable) -> int:
    """Lines that show every row: the header, the rows, a horizontal scrollbar if wider."""
    wider = table.virtual_size.width > table.size.width
    return 1 + table.row_count + (table.styles.scrollbar_size_horizontal if wider else 0)


def more_below(table: KeyedTable) -> str:
    """ ", n more below (j/k)" when the table's height hides n of its rows ("" when all
    show or it is not laid out yet)."""
    if not table.size.height:
        return ""
    hidden = table.row_count - max(0, table.scrollable_content_region.height - 1)
    return f", {hidden} more below (tab, j/k)" if hidden > 0 else ""


def _num(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _cut(value: object, width: int, narrow: bool) -> Text:
    shown = safe_str(value)
    return Text(abbreviate(shown, width) if narrow else shown)


def readiness(target, check) -> Text:
    """The readiness cell: from the latest scheduled pass (or not verified yet)."""
    if target.rollback_to is None and target.problem == "no earlier revision":
        return Text("nothing to roll back to", style="dim")
    if check is None or target.target not in check.problems:
        return Text("not verified yet", style="yellow")
    problem = check.problems[target.target]
    if problem is not None:
        return Text(f"NOT READY: {problem}", style="bold red")
    minutes = int((clock.now() - check.at).total_seconds() // 60)
    how = "verified" if check.rehearsed else "hash checked (read-only: not rehearsed)"
    return Text(f"ready · {how} {minutes} min ago", style="green")


def verdict_cell(verdict, hard, blocking, override) -> Text:
    if verdict is None:
        return Text("never run", style="dim")
    if blocking:
        return Text("FAIL · BLOCKING", style="bold red")
    if verdict == "fail":
        return Text(
            "fail · overridden" if override else ("FAIL" if hard else "fail (soft)"),
            style="yellow" if override or not hard else "bold red",
        )
    return Text(verdict, style={"pass": "green", "inconclusive": "dim", "error": "magenta"}.get(verdict, ""))


def target_cells(t: rollouts.Target, check, columns: tuple[str, ...], narrow: bool) -> list[Text]:
    cell = {
        "target": _cut(t.target, TARGET_WIDTH, narrow),
        "kind": Text(t.kind),
        "type": safe_text(t.task_type or "*"),
        "active": Text(str(t.active)),
        "rollback to": Text("-" if t.rollback_to is None else str(t.rollback_to)),
        "readiness": readiness(t, check),
    }
    return [cell[name] for name in columns]


def gate_cells(g: gates.GateStatus, columns: tuple[str, ...]) -> list[Text]:
    cell = {
        "verdict": verdict_cell(g.verdict, g.hard, g.blocking, g.override),
        # Whole: gate names share their start ("builtin:") and differ in the middle.
        "gate": safe_text(("" if g.hard else "~") + g.name + ("" if g.enabled else " (off)")),
        "condition": Text(f"{g.metric} {g.comparator} {g.threshold:g}{' ×base' if g.baseline_window_s else ''}"),
        "scope": safe_text(scope_label(g.scope)),
        "value": Text(_num(g.value)),
        "n": Text("-" if g.sample_size is None else str(g.sample_size)),
        "at (UTC)": Text("-" if g.at is None else f"{g.at:%m-%d %H:%M}"),
    }
    return [cell[name] for name in columns]


def alert_cells(a: drift.OpenAlert, columns: tuple[str, ...]) -> list[Text]:
    is_firing = a.state == "firing"
    cell = {
        "id": Text(str(a.id)),
        "state": Text(a.state.upper() if is_firing else a.state, style="bold red" if is_firing else "yellow"),
        # The indicator is text an operator role (or an agent) may write: inert, like the scope.
        "indicator": safe_text(a.indicator),
        "scope": safe_text(scope_label(a.scope)),
        "baseline": Text(_num(a.baseline)),
        "now": Text(_num(a.current)),
        "since (UTC)": Text(f"{a.opened_at:%m-%d %H:%M}"),
    }
    return [cell[name] for name in columns]


def log_cells(r: operator_log.LoggedAction, columns: tuple[str, ...]) -> list[Text]:
    cell = {
        "seq": Text(str(r.seq)),
        "at (UTC)": Text(f"{r.at:%m-%d %H:%M:%S}"),
        "actor": safe_text(r.actor),
        "role": safe_text(r.db_role),
        "action": safe_text(r.action),
        "target": safe_text(r.target),
        "reason": safe_text(r.reason or ""),
    }
    return [cell[name] for name in columns]


def retention_line(status: RetentionStatus | None, *, configured: bool, read_only: bool) -> Text:
    """One line: "retention · last run 07:41 · next ≤ 08:41 · dropped 3 partition(s), …",
    or why it could not run, or that it is off. The schedule and times come first: the line is cut
    at the right. `status` None: no pass yet (the settings say whether one will run)."""
    line = Text("retention · ", no_wrap=True, overflow="ellipsis")
    state = status.state if status is not None else (OFF if not configured else READ_ONLY if read_only else None)
    at = f"{status.at:%H:%M}" if status is not None and status.at else "?"
    after = f" · next ≤ {status.next_at:%H:%M}" if status is not None and status.next_at else ""
    # Error text may quote the database or a path: inert, redacted, on one line.
    said = "" if status is None else one_line(safe_str(status.problem or status.did or ""))
    if state is None:
        line.append("waiting for the first check…", style="dim")
    elif state == OFF:
        line.append("off ([retention] not set in config.toml)", style="dim")
    elif state == READ_ONLY:
        line.append("not applied here (a read-only panel never runs it)", style="dim")
    elif state == RAN:
        line.append(f"last run {at}{after} · ")
        line.append(said, style="green" if said.startswith("dropped") else "")
    elif state == ELSEWHERE:
        line.append(f"ran elsewhere (last drop {at}){after} · {said}")
    elif state == BUSY:
        line.append(f"another run in progress elsewhere at {at}: retrying at the next check", style="yellow")
    elif state == FAILED:
        line.append(f"could not run at {at}{after} · ", style="bold red")
        line.append(said, style="bold red")
    return line
