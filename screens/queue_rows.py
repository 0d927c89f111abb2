"""What the queue screen draws from its rows, as Rich Text (no widgets, no database): the
task table's cells and which columns a width gets, and the running and workers panels' lines
for the panel's width — with stuck work (expired leases) and a silent fleet said first (the
panels show what their height holds and say how many more), task ids whole, and worker names
cut to the part that tells them apart (`domain.labels`). Untrusted text goes through
`safe_text` (inert, redacted) before it is measured and cut."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

from fsar_tui.db import tasks as task_queries
from fsar_tui.domain.formatting import abbreviate, between, duration, money
from fsar_tui.domain.labels import distinct_labels, first_that_fits
from fsar_tui.widgets.safe_text import safe_text

COLUMNS = ("id", "status", "pri", "type", "model", "att", "worker", "created", "run", "cost", "error")
# Narrower terminals keep what triage needs first — id, status, priority, type, age, error —
# and drop the rest, so the error is on screen at 80 columns (issue 16: it was off-screen)
# and so is the priority (a starving low priority, and `priority:` filters, read at 80).
LAYOUTS = (
    (100, ("id", "status", "pri", "type", "age", "error")),
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
    running: list[task_queries.RunningTask], fleet: task_queries.FleetHealth | None, now: datetime, width: int
) -> tuple[list[Text], list[Text]]:
    """The running panel's heading and one line per running task, drawn for `width`
    columns: elapsed time, task id and worker always (the worker as the part of its name
    that tells it from the others shown: `domain.labels`), the type when room is left.
    The panel shows what its height holds and says how many more (`TextPanel.show_rows`)."""
    count = fleet.running if fleet else len(running)
    title = f"running ({count})"
    heads = [Text(title, style="bold", no_wrap=True, overflow="ellipsis")]
    if fleet and fleet.lease_expired:
        # Stuck work first: a fleet that is down must not read as tasks "running" for an
        # hour. On the title's line when it fits there whole, else on a line of its own.
        alarm = (f"{fleet.lease_expired} LEASE EXPIRED — no worker alive?", f"{fleet.lease_expired} LEASE EXPIRED")
        fits = [f" · {a}" for a in alarm if len(title) + 3 + len(a) <= width]
        if fits:
            heads[0].append(fits[0], style="bold red")
        else:
            heads.append(Text(first_that_fits(width, *alarm, f"{fleet.lease_expired} EXPIRED"), style="bold red"))
    id_width = max((len(str(t.id)) for t in running), default=1)
    fixed = 1 + 6 + 1 + id_width + 1  # mark, elapsed, id, and the spaces after them
    # Redacted and inert before they are measured and cut (a cut could split a secret).
    names = [safe_text(t.worker_id or "-").plain for t in running]
    labels = distinct_labels(names, max(width - fixed, 4))
    rows = []
    for t, name in zip(running, names, strict=True):
        expired = t.lease_expires_at is not None and t.lease_expires_at < now
        line = f"{'✗' if expired else ' '}{duration(between(t.started_at, now)):>6} {t.id:>{id_width}} {labels[name]}"
        room = width - len(line) - 1
        if room >= 10:  # a type cut shorter reads as nothing ("ide…on")
            line += " " + abbreviate(safe_text(t.task_type).plain, room)
        row = Text(line)
        if expired:
            row.stylize("red")
        rows.append(row)
    return heads, rows


def workers_rows(
    workers: list[task_queries.WorkerSeen],
    presence: dict[str, str],
    fleet: task_queries.FleetHealth | None,
    now: datetime,
    width: int,
) -> tuple[list[Text], list[Text]]:
    """The workers panel, drawn for `width` columns: its heading says how many workers
    report and when the fleet last reported (red when none does: a fleet that is down is
    said first); each line is one worker — presence, the tasks running on it (lease not
    run out), how long ago it last reported, and its name as the part that tells it apart."""
    title = f"workers ({len(workers)})"
    last = fleet.last_report if fleet else None
    if fleet is None:
        when: tuple[str, ...] = ()
    elif last is not None:
        ago = duration(between(last, now))
        when = (f"last report {ago} ago", f"last {ago} ago", f"{ago} ago")
    elif fleet.searched_since is not None:
        ago = duration(between(fleet.searched_since, now))
        when = (f"no report for over {ago}", f"none for >{ago}", f">{ago}")
    else:
        when = ("none ever reported", "none ever", "none")
    head = Text(title, style="bold", no_wrap=True, overflow="ellipsis")
    heads = [head]
    style = "bold red" if not workers else ""
    fits = [f" · {w}" for w in when if len(title) + 3 + len(w) <= width]
    if fits:
        head.append(fits[0], style=style)
    elif when:  # a narrow panel: the fleet's last report on a line of its own, whole
        heads.append(Text(first_that_fits(width, *when), style=style, no_wrap=True, overflow="ellipsis"))
    fixed = 1 + len(str(max((w.running for w in workers), default=0))) + 1 + 1 + 6 + 1
    names = [safe_text(w.worker_id).plain for w in workers]
    labels = distinct_labels(names, max(width - fixed, 4))
    rows = []
    for w, name in zip(workers, names, strict=True):
        # Presence comes from MQTT (per worker process); without a broker, the database says.
        state = presence.get(w.worker_id.rsplit("-", 1)[0]) or presence.get(w.worker_id)
        mark = {"online": "●", "offline": "○"}.get(state or "", "·")
        ago = duration(between(w.last_report, now))
        rows.append(Text(f"{mark}{w.running}▶ {ago:>6} {labels[name]}"))
    return heads, rows
