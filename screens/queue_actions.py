"""The queue screen's actions (r retry, c cancel, e requeue): what they apply to, the
confirmation, the write and what the operator is told.

Scope: the whole filter when armed (`a`) — refused, never cut, above BULK_CAP tasks —
else the marked rows, else the current row; only tasks in a state the action applies
to. Confirmation is y/n-sized for one task and "type the count" for several, always
with a reason (`ActionDialog`). The write runs in one transaction through the database
function that checks each task is still in the state seen (`db.actions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsar_tui.db import actions as task_actions
from fsar_tui.db import tasks as task_queries
from fsar_tui.widgets.action_dialog import ActionDialog
from fsar_tui.widgets.keyed_table import KeyedTable

if TYPE_CHECKING:
    from fsar_tui.screens.queue import QueueScreen

BULK_CAP = 10_000


async def act(screen: QueueScreen, action: str) -> None:
    """Run `action` (a key of db.actions.ACTIONS) on the screen's scope; from a worker."""
    table = screen.query_one(KeyedTable)
    allowed = task_actions.ACTIONS[action][0]
    if screen.armed_filter:
        # From the primary: a lagging replica would leave out the newest matching tasks silently.
        seen = await screen.session.read_for_write(task_queries.matching_ids, screen.filter, allowed, BULK_CAP + 1)
        if len(seen) > BULK_CAP:
            # Never the first 10,000 of more, silently: refuse as `tasks … --filter` does.
            screen.notify(
                f"the filter matches more than {BULK_CAP:,} tasks a {action} applies to: narrow it "
                "(nothing was changed)",
                title=f"{action} refused",
                severity="error",
                timeout=10,
            )
            return
        scope = f"filter: {screen.filter_text or '(all tasks)'}"
    else:
        by_id = {r.id: r.status for r in screen.rows}
        marked = table.marked or ({table.current_key} if table.current_key is not None else set())
        ids = sorted(int(str(k)) for k in marked)
        seen = [(i, by_id[i]) for i in ids if i in by_id]
        scope = "marked tasks" if table.marked else "task"
    applicable = [(i, s) for i, s in seen if s in allowed]
    if not applicable:
        screen.notify(f"nothing to {action}: it applies to {', '.join(allowed)} tasks", severity="warning")
        return
    what = f"task {applicable[0][0]}" if len(applicable) == 1 else f"{len(applicable)} tasks"
    reason = await screen.app.push_screen_wait(
        ActionDialog(f"{action.capitalize()} {what} ({scope})?", len(applicable))
    )
    if reason is None:
        return
    try:
        result = await screen.awrite(
            task_actions.apply_action,
            action,
            applicable,
            reason,
            scope=f"{scope}: {','.join(str(i) for i, _ in applicable[:50])}",
        )
    except task_actions.ActionRefused as exc:
        screen.notify(str(exc), title=f"{action} refused", severity="error", timeout=10)
        return
    except Exception as exc:
        screen.report_action_failure(action, exc)
        return
    message = f"{action}: {len(result.done)} done"
    if result.changed:
        message += f"; {len(result.changed)} changed meanwhile and were left alone: " + ", ".join(
            str(i) for i in result.changed[:10]
        )
    screen.notify(message, severity="warning" if result.changed else "information", timeout=8)
    table.clear_marks()
    screen.armed_filter = False
    screen.schedule.mark()
    screen.render_filter_status()
