"""What the queue screen draws from its rows, as Rich Text (no widgets, no database): the
task table's cells and which columns a width gets, and the running and workers panels' lines
— with stuck work (expired leases) and a silent fleet said first (the panels show what their
height holds and say how many more). Untrusted text goes through `safe_text` (inert,
redacted)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

from fsar_tui.db import tasks as task_queries
from fsar_tui.domain.formatting import abbreviate, between, duration, money
from fsar_tui.widgets.safe_text import safe_text

COLUMNS = ("id", "status", "pri", "type", "model", "att", "worker", "created", "run", "cost", "error")
# Narrower terminals keep what triage needs first — id, status, type, age, error — and
# drop the rest, so the error is on screen at 80 columns (issue 16: it was off-screen).
LAYOUTS = (
    (100, ("id", "status", "type", "age", "error")),
    (140, ("id", "status", "pri", "type", "model", "att", "age", "run", "cost", "error")),
    (10**6, COLUMNS),
)


def columns_for(width: int) -> tuple[str, ...]:
    return next(columns for limit, columns in LAYOUTS if width <= limit)


def task_cells(r: task_queries.TaskRow, columns: Sequence[str], now: datetime) -> list[Text]:
    run = between(r.started_at, r.finished_at or (now if r.status == "running" else None))
    cell = {
        "id": lambda: Text(str(r.id)),
        "status": lambda: Text(r.status),
        "pri": lambda: Text(str(r.priority)),  # higher runs first: a starving low priority shows here
        "type": lambda: safe_text(r.task_type),
        "model": lambda: safe_text(r.ai_model or "-"),
        "att": lambda: Text(str(r.attempt)),
        "worker": lambda: safe_text(r.worker_id or "-"),
        "created": lambda: Text(f"{r.created_at:%m-%d %H:%M:%S}"),
        "age": lambda: Text(duration(between(r.created_at, now))),
        "run": lambda: Text(duration(run)),
        "cost": lambda: Text(money(r.cost_minor, r.currency)),
        # Redact the whole text, then cut: cutting first could split a secret so
        # that its visible half no longer matches a detector.
        "error": lambda: Text(safe_text((r.error or "").replace("\n", " ")).plain[:80]),
    }
    return [cell[name]() for name in columns]


def running_rows(
    running: list[task_queries.RunningTask], fleet: task_queries.FleetHealth | None, now: datetime
) -> tuple[Text, list[Text]]:
    """The running panel's heading and one line per running task (the panel shows what its
    height holds and says how many more: `TextPanel.show_rows`)."""
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f"running ({fleet.running if fleet else len(running)})", style="bold")
    if fleet and fleet.lease_expired:
        # Stuck work first: a fleet that is down must not read as tasks "running" for an hour.
        head.append(f" · {fleet.lease_expired} LEASE EXPIRED — no worker alive?", style="bold red")
    rows = []
    for t in running:
        # elapsed, type, worker: the line is cut at the panel's edge, so the worker's
        # distinguishing suffix goes last where wide terminals show it whole.
        expired = t.lease_expires_at is not None and t.lease_expires_at < now
        row = safe_text(
            f"{'✗' if expired else ' '}{duration(between(t.started_at, now)):>6} {abbreviate(t.task_type, 9)} "
            f"{t.worker_id or '-'}"
        )
        if expired:
            row.stylize("red")
        rows.append(row)
    return head, rows


def workers_rows(
    workers: list[task_queries.WorkerSeen],
    presence: dict[str, str],
    fleet: task_queries.FleetHealth | None,
    now: datetime,
) -> tuple[Text, list[Text]]:
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f"workers ({len(workers)})", style="bold")
    last = fleet.last_report if fleet else None
    if not workers:  # say how long the fleet has been silent, not just "0"
        head.append(
            f" · last report {duration(between(last, now))} ago" if last else " · none ever reported",
            style="bold red",
        )
    rows = []
    for w in workers:
        # Presence comes from MQTT (per worker process); without a broker, the database says.
        state = presence.get(w.worker_id.rsplit("-", 1)[0]) or presence.get(w.worker_id)
        mark = {"online": "●", "offline": "○"}.get(state or "", "·")
        rows.append(safe_text(f"{mark}{w.running}▶ {abbreviate(w.worker_id, 14)}"))
    return head, rows
