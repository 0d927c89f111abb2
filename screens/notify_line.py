"""Screen 4's notifications line (issue 20 point 3): whether notifications reach anyone.

One line in the status area, under retention: "no failed delivery", or — in red — how
many deliveries' latest attempt failed and the newest of them in full (channel masked,
event, attempt, HTTP status or error, next retry or given up: domain/notify.
notify_failure.notify_failure_line), and what the last audit pass could not do (claim or deliver).
Without `[notify]` in config.toml and with no failed delivery recorded there is nothing
to say: the line is hidden, and screen 4 looks as it did before notifications. Deliveries happen in the audit
passes only, so the line is read when the screen opens and after each pass this app
sees (once a minute), never on the screen's 5 s refresh: an idle panel reads no more.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work

from fsar_tui.db import notifications
from fsar_tui.domain.notify_failure import notify_failure_line
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.text_panel import TextPanel


def notify_text(
    failures: list[notifications.FailedDelivery] | None, *, configured: bool, problem: str | None = None
) -> Text | None:
    """The line, from the failed deliveries read (None: they could not be read); None
    when there is nothing to say (not configured, nothing failed)."""
    if not configured and not failures:
        return None
    line = Text("notifications · ", no_wrap=True, overflow="ellipsis")
    if problem:
        line.append(f"last pass: {safe_text(problem).plain[:120]} · ", style="bold red")
    if failures is None:
        line.append("unknown (see the problem above)" if problem else "unknown", style="yellow")
    elif failures:
        pending = sum(1 for f in failures if f.status == "pending")
        line.append(f"{len(failures)} FAILED delivery(ies) ({pending} retried): ", style="bold red")
        line.append(safe_text(notify_failure_line(failures[0])).plain, style="red")
        line.append(" · fsar-tui alerts list")
    else:
        line.append("no failed delivery", style="green")
    return line


class NotifyLine(TextPanel):
    DEFAULT_CSS = "NotifyLine { height: 1; display: none; }"

    @work(exclusive=True, group="notify-line", exit_on_error=False)
    async def reload(self, session: Any, *, configured: bool, problem: str | None = None) -> None:
        """Read the failed deliveries through the session (db/notifications) and show them."""
        try:
            failures: list[notifications.FailedDelivery] | None = await session.read(notifications.failed_deliveries)
        except Exception as exc:  # a schema behind 0037, a lost connection: said, never fatal
            failures, problem = None, problem or f"could not read the deliveries: {session.describe(exc)}"
        text = notify_text(failures, configured=configured, problem=problem)
        if text is not None:
            self.show(text)
        if self.display != (text is not None):
            self.display = text is not None  # the tables below re-share the height (their resize)
