"""`fsar-tui tasks …`: the queue screen (screens/queue.py), headless — for scripts and cron.

Owns the `tasks` command family; the SQL is db/tasks.py's and db/actions.py's (the
`_sync` twins of what the screen runs), the filter language is domain/task_filter.py's.

tasks list [--filter EXPR] [--sort COL] [--reverse] [--limit N] [--format table|json|csv]
    Keyset pages in PostgreSQL (db/tasks.page_sync), newest first by default (every sort
    column descends, NULLs last; --reverse ascends). It reads one row past --limit as a
    probe; only when that row exists does it count the matches, capped like the screen
    (`count_matching`): the table ends with "100 of 2,345 tasks" or "100 of >10,000
    tasks". JSON (a list) and CSV keep stdout to the rows and say the same on stderr.
tasks show ID [--format text|json] [--full]
    A task whose id range retention archived and dropped: one line saying when, the
    partition, its archive manifest and `fsar-tui retention restore MANIFEST` (exit 1, as
    for a task that does not exist: it is not in the database; db/retention_lookup.py).
    db/tasks.task_detail_sync: the row, rollout and proposal, and the task_events trail
    (from → to, attempt, worker, at). Attempts are rebuilt from the trail: one per
    transition into running, ended by the next transition out of it (its outcome;
    `queued` = put back: an executor retry, an expired lease or an operator requeue),
    with its worker, queue wait, run time and error (domain/attempts.py): since
    revision 0022 the event that ends an attempt badly keeps its error; before, only
    the task's last error was kept — it is shown on the latest attempt its worker or
    the lease reaper ended, and earlier ones say theirs was not recorded.
    A task without events (legacy rows) gets one attempt from its own columns.
    Payload and result are redacted (domain/redact.redact_value) unless this run's
    --reveal was allowed and logged (domain/sanitize.revealed()). Bounded like the
    screen (domain/capped.py): the text format prints the first 64 KiB of the error, the
    payload and the result (only that much is read), each followed by "… n more bytes
    not shown (of m) — --full prints all" when cut; --full reads and prints them whole.
    --format json is for scripts and always whole: payload and result parsed, a document
    nested deeper than 64 levels (or that Python's parser refuses) as
    {"unparsed_json": its text, redacted, "why": …}.
tasks retry|cancel|requeue (ID… | --filter EXPR) --reason TEXT [--yes] [--dry-run]
    db/actions.apply_action_sync: the screen's transitions, optimistic check (a row
    that moved since it was read is left alone and reported by id: exit 1), one
    transaction, one operator_actions row (actor = the OS user, action task.<name>,
    target "task: ID" / "tasks: IDS" / "filter: EXPR: IDS" — ids as the screen writes
    them, the first 50 — reason, before/after).
    Named ids must all exist (else "task N does not exist", exit 1) and all be in a
    state the action applies to (else exit 1 naming them): a script that names a task
    means that task, so nothing is done rather than part of it.
    --filter acts on the matching tasks in the action's from-states. Choice on the cap:
    it REFUSES (exit 1, nothing written) when more than 10,000 (the screen's bulk cap)
    match, saying how many (counted up to 1,000,000) and to narrow the filter; it never
    acts on a silently capped subset, and never splits one action over transactions.
    More than one task: the count is stated and needs --yes, or at a terminal the
    operator types the count; not a terminal and no --yes is a usage error (exit 2)
    before anything is written. --dry-run lists what would change (no reason needed).
    --read-only refuses the actions (exit 2); --dry-run still works.
Untrusted text (task_type, ai_model, worker, error, payload, result) goes through
domain/sanitize.safe_str (control sequences removed, then redacted) in every format.
"""

from __future__ import annotations

import csv
import io
import sys
from argparse import Namespace
from datetime import UTC, datetime
from typing import Any

from fsar_tui.commands.base import Context, Parser, add_command, positive_id, subcommands
from fsar_tui.db.actions import ACTIONS
from fsar_tui.db.tasks import SORTABLE
from fsar_tui.domain import json_decimal
from fsar_tui.domain.attempts import label_of
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, CheckFailed, UsageError

BULK_CAP = 10_000  # the queue screen's bulk cap (screens/queue.py BULK_CAP)
COUNT_CAP = 10_001  # the list's "of N" count stops here: "of >10,000"
REFUSED_COUNT_CAP = 1_000_001  # how far a refused bulk action counts its matches
PAGE = 1_000  # rows per keyset page when --limit is larger
LIST_FIELDS = tuple(
    "id status task_type ai_model attempt max_attempts worker_id created_at started_at finished_at "
    "run_s cost_minor currency error".split()
)
SHOW_FIELDS = tuple(
    "id task_type ai_model status priority attempt max_attempts worker_id created_at queued_at "
    "started_at finished_at lease_expires_at input_tokens output_tokens cost_minor currency idea_id "
    "error".split()
)
UNTRUSTED = frozenset({"task_type", "ai_model", "worker_id", "idea_id", "error"})  # agents' text: safe_str


LIST_DESCRIPTION = (
    "Filtered, sorted and paged in PostgreSQL, in the queue screen's filter language: status:failed "
    "type:self_improvement model:gpt-4o since:2h error~timeout. Says when more tasks match than are shown."
)
ACTION_DESCRIPTION = (
    "{name} tasks ({states} → {target}) in one transaction that only touches tasks still in the state read "
    "(others are reported by id), with an operator log entry. More than one task needs --yes, or typing the "
    "count at a terminal."
)


def register(sub, common: Parser) -> None:
    tasks_p = add_command(sub, common, "tasks", help="the task queue, headless: list, show, retry, cancel, requeue")
    tasks_sub = subcommands(tasks_p, "tasks_command")
    tl = add_command(tasks_sub, common, "list", run_list, help="tasks matching a filter", description=LIST_DESCRIPTION)
    tl.add_argument("--filter", default="", metavar="EXPR", help="the queue screen's filter (default: every task)")
    tl.add_argument("--sort", choices=list(SORTABLE), default="id", help="sort column (default id)")
    tl.add_argument("--reverse", action="store_true", help="oldest / smallest first (default: newest first)")
    tl.add_argument("--limit", type=int, default=100, help="rows to show (default 100)")
    tl.add_argument("--format", choices=("table", "json", "csv"), default="table")
    ts = add_command(tasks_sub, common, "show", run_show, help="one task: attempts, events, payload (redacted)")
    ts.add_argument("id", type=positive_id, metavar="ID")
    ts.add_argument("--format", choices=("text", "json"), default="text")
    ts.add_argument("--full", action="store_true", help="the whole error, payload and result (default: 64 KiB of each)")
    for name, (allowed, target) in ACTIONS.items():
        states = _alternatives(allowed)
        about = ACTION_DESCRIPTION.format(name=name.capitalize(), states=states, target=target)
        ta = add_command(tasks_sub, common, name, run_action, help=f"{states} → {target}", description=about)
        ta.add_argument("ids", nargs="*", type=positive_id, metavar="ID", help="task ids (or --filter)")
        ta.add_argument("--filter", metavar="EXPR", help=f"every matching task that is {states} (≤ {BULK_CAP:,})")
        ta.add_argument("--reason", help="why (required; goes to the operator log)")
        ta.add_argument("--yes", action="store_true", help="do not ask to type the count")
        ta.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")


# -- shared helpers -------------------------------------------------------------------------


def _alternatives(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def parse_filter_arg(text: str):
    from fsar_tui.domain.task_filter import FilterError, parse_filter

    try:
        return parse_filter(text)
    except FilterError as exc:
        raise UsageError(f"--filter: {exc}") from None


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _when(value: datetime | None) -> str:
    from fsar_tui.domain.formatting import clock_time

    return "-" if value is None else clock_time(value.astimezone(UTC))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _ids(ids: list[int], most: int = 20) -> str:
    shown = ", ".join(str(i) for i in ids[:most])
    return shown + (f", … ({len(ids) - most:,} more)" if len(ids) > most else "")


# -- list -----------------------------------------------------------------------------------


def run_list(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import tasks

    f = parse_filter_arg(args.filter)
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    want = args.limit + 1  # one row past the limit says whether more match
    rows: list = []
    after = None
    with ctx.read_connect() as conn:
        while len(rows) < want:
            size = min(PAGE, want - len(rows))
            batch = tasks.page_sync(conn, tasks.PageRequest(f, args.sort, not args.reverse, after, limit=size))
            rows += batch
            if len(batch) < size:
                break
            after = tasks.sort_key(batch[-1], args.sort)
        more = len(rows) > args.limit
        rows = rows[: args.limit]
        # "of >10,000" — unless more than that are shown: then count past what is shown,
        # so "N of >M" always has M > N.
        cap = COUNT_CAP if args.limit < COUNT_CAP - 1 else args.limit + COUNT_CAP
        matching = tasks.count_matching_sync(conn, f, cap) if more else len(rows)
    summary = _summary(len(rows), matching, more, cap)
    if args.format == "table":
        print(_table(rows))
        print(summary)
        return EXIT_OK
    records = [_record(r) for r in rows]
    if args.format == "json":
        print(json_decimal.dumps(records, indent=2))
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=LIST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        print(out.getvalue(), end="")
    if more:
        print(f"fsar-tui: {summary}", file=sys.stderr)
    return EXIT_OK


def _summary(shown: int, matching: int, more: bool, cap: int = COUNT_CAP) -> str:
    if not more:
        return "no task matches" if shown == 0 else f"{shown:,} task{'s' if shown != 1 else ''}"
    total = f">{cap - 1:,}" if matching >= cap else f"{matching:,}"
    return f"{shown:,} of {total} tasks (raise --limit or narrow --filter to see more)"


def _run_s(row) -> float | None:
    from fsar_tui.domain.formatting import between

    if row.started_at is None:
        return None
    return between(row.started_at, row.finished_at or datetime.now(UTC))


def _field(key: str, value: Any) -> Any:
    """A column for JSON/CSV: times in ISO 8601 UTC, untrusted text inert and redacted."""
    from fsar_tui.domain.sanitize import safe_str

    if isinstance(value, datetime):
        return _iso(value)
    return safe_str(value) if key in UNTRUSTED and value is not None else value


def _record(row) -> dict[str, Any]:
    return {k: _rounded(_run_s(row)) if k == "run_s" else _field(k, getattr(row, k)) for k in LIST_FIELDS}


def _table(rows: list) -> str:
    from fsar_tui.domain.formatting import duration, money
    from fsar_tui.domain.sanitize import safe_str

    header = (
        f"{'id':>8}  {'status':<9} {'type':<22} {'model':<16} {'att':>5}  {'worker':<14} "
        f"{'created (UTC)':<19}  {'run':>7}  {'cost':>12}  error"
    )
    lines = [header]
    for r in rows:
        error = _cut(_one_line(safe_str(r.error)), 60) if r.error else "-"
        lines.append(
            f"{r.id:>8}  {r.status:<9} {_cut(_one_line(safe_str(r.task_type)), 22):<22} "
            f"{_cut(_one_line(safe_str(r.ai_model or '-')), 16):<16} {f'{r.attempt}/{r.max_attempts}':>5}  "
            f"{_cut(_one_line(safe_str(r.worker_id or '-')), 14):<14} {_when(r.created_at):<19}  "
            f"{duration(_run_s(r)):>7}  {money(r.cost_minor, r.currency):>12}  {error}"
        )
    return "\n".join(lines)


# -- show -----------------------------------------------------------------------------------


def attempts_of(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's attempts rebuilt from its events trail (see the module docstring)."""
    from fsar_tui.domain.attempts import attempts

    return [a.as_dict() for a in attempts(task["events"], task)]


def run_show(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import tasks
    from fsar_tui.domain.capped import HEAD

    whole = args.full or args.format == "json"
    with ctx.read_connect() as conn:
        task = tasks.task_detail_sync(conn, args.id, tasks.FULL if whole else HEAD)
    if task is None and ctx.read_on_replica:  # a replica behind may not have it yet: ask the primary
        with ctx.connect() as conn:
            task = tasks.task_detail_sync(conn, args.id, tasks.FULL if whole else HEAD)
    if task is None:
        raise CheckFailed(_missing(ctx, args.id))
    attempts = attempts_of(task)
    if args.format == "json":
        print(json_decimal.dumps(_show_record(task, attempts), indent=2))
    else:
        print(_show_text(task, attempts, whole=whole))
    return EXIT_OK


def _missing(ctx: Context, task_id: int) -> str:
    """Why a task is not there: retention archived its range (where, and the way back), or
    it does not exist. Asked of the primary, where retention writes its log."""
    from fsar_tui.db.retention_lookup import archived_task
    from fsar_tui.domain.sanitize import one_line, strip_controls

    with ctx.connect() as conn:
        gone = archived_task(conn, task_id)
    if gone is None:
        return f"task {task_id} does not exist"
    part = one_line(strip_controls(gone.partition))  # inert; not redacted: a name and a path to type back
    said = f"task {task_id} was archived by retention on {_when(gone.at)} UTC (partition {part}"
    if gone.manifest is None:  # `retention run --no-archive`: nothing to restore from
        return said + ", dropped without an archive: its row is gone for good)"
    manifest = one_line(strip_controls(gone.manifest))
    return said + f", archive manifest {manifest}): bring it back with `fsar-tui retention restore {manifest}`"


def _s(value: Any) -> str | None:
    from fsar_tui.domain.sanitize import safe_str

    return None if value is None else safe_str(value)


def _show_record(t: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    from fsar_tui.domain.formatting import between

    now = datetime.now(UTC)
    record = {k: _field(k, t[k]) for k in SHOW_FIELDS}
    record["rollout"] = (
        {"target": _s(t["rollout_target"]), "revision": t["rollout_revision"]} if t["rollout_target"] else None
    )
    record["proposal"] = {"id": _s(t["proposal_id"]), "severity": t["proposal_severity"]} if t["proposal_id"] else None
    record["events_archived_before"] = _field("at", t.get("events_archived_before"))
    record["attempts"] = [
        {**{k: _field(k, a[k]) for k in ("attempt", "worker_id", "outcome", "queued_at", "started_at", "ended_at")},
         "wait_s": _rounded(between(a["queued_at"], a["started_at"])),
         "run_s": _rounded(between(a["started_at"], a["ended_at"] or now)),
         "error": _s(a["error"]), "error_kept": a["error_kept"]}
        for a in attempts
    ]  # fmt: skip
    record["events"] = [{"from": e["from_status"], "to": e["to_status"], "attempt": e["attempt"],
                         "worker_id": _s(e["worker_id"]), "at": _iso(e["at"]), "error": _s(e["error"])}
                        for e in t["events"]]  # fmt: skip
    from fsar_tui.domain.capped import json_for_output
    from fsar_tui.domain.sanitize import revealed

    record["payload"], record["result"] = (json_for_output(t[c], reveal=revealed()) for c in ("payload", "result"))
    return record


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _big_texts(t: dict[str, Any], whole: bool) -> list[str]:
    """The error, payload and result sections: the first 64 KiB of each unless `whole`."""
    from fsar_tui.domain.capped import SHOWN, capped_json, capped_text
    from fsar_tui.domain.sanitize import revealed

    limit = 2**62 if whole else SHOWN
    out: list[str] = []
    for column, cap in (("error", capped_text), ("payload", capped_json), ("result", capped_json)):
        shown = cap(t[column], t[f"{column}_bytes"], reveal=revealed(), limit=limit)
        out += ["", column] + ["  " + line for line in shown.text.splitlines() or ["-"]]
        if shown.more_bytes:
            out.append("  " + shown.cap_line("--full prints all"))
    return out


def _show_text(t: dict[str, Any], attempts: list[dict[str, Any]], *, whole: bool = False) -> str:
    from fsar_tui.domain.formatting import between, duration, money

    s = lambda v: _one_line(_s(v) or "-")  # noqa: E731 - one-line, inert, redacted
    now = datetime.now(UTC)
    wait = between(t["queued_at"], t["started_at"])
    run = between(t["started_at"], t["finished_at"] or (now if t["started_at"] else None))
    # The row's started_at is the last attempt's; once the task went back to the queue its
    # queued_at/finished_at belong to later events, and the difference means nothing.
    requeued = t["started_at"] is not None and t["queued_at"] > t["started_at"]
    facts = [
        ("task", f"{t['id']} · {s(t['task_type'])} · {s(t['ai_model']) if t['ai_model'] else 'no model'}"),
        ("status", f"{t['status']} · attempt {t['attempt']} of {t['max_attempts']} · worker {s(t['worker_id'])}"),
        ("created", _when(t["created_at"]) + " UTC"),
        ("queued", _when(t["queued_at"]) + " UTC"),
        ("started", _when(t["started_at"]) + (" UTC" if t["started_at"] else "")),
        ("finished", _when(t["finished_at"]) + (" UTC" if t["finished_at"] else "")),
        (
            "timing",
            f"queue wait {duration(wait)} · run {duration(run)}"
            if not requeued
            else "put back in the queue since its last start (see attempts)",
        ),
        (
            "tokens",
            (
                f"in {t['input_tokens'] or 0:,} · out {t['output_tokens'] or 0:,} · cost "
                f"{money(t['cost_minor'], t['currency'])}"
            ),
        ),
        ("rollout", f"{s(t['rollout_target'])} revision {t['rollout_revision']}" if t["rollout_target"] else "-"),
        ("proposal", f"{s(t['proposal_id'])} (severity {t['proposal_severity']})" if t["proposal_id"] else "-"),
        ("idea", s(t["idea_id"])),
    ]
    out = [f"{label:<9} {value}" for label, value in facts]
    out += ["", f"attempts ({len(attempts)}; times in UTC)"]
    if t.get("events_archived_before"):  # its trail is partly in a retention archive
        out.append(f"  events before {_when(t['events_archived_before'])} archived by retention")
    if not attempts:
        out.append("  (none: never started)")
    for a in attempts:
        ended = _when(a["ended_at"]) if a["ended_at"] else "-"
        wait_s, run_s = between(a["queued_at"], a["started_at"]), between(a["started_at"], a["ended_at"] or now)
        out.append(
            f"  #{a['attempt']:<3} {label_of(a['outcome'], a['error']):<14} worker {s(a['worker_id'])}"
            f" · started {_when(a['started_at'])} · ended {ended}"
            f" · wait {duration(wait_s)} · run {duration(run_s)}"
        )
        if a["error_kept"]:
            out.append(f"       error: {_cut(s(a['error']), 300)}")  # whole below
        elif a["ended_at"] is not None and a["outcome"] in ("failed", "queued"):
            out.append("       error: not recorded (none written, or ended before revision 0022 kept each attempt's)")
    out += ["", f"events ({len(t['events'])})", f"  {'at (UTC)':<19}  {'from':<9} → {'to':<9}  {'attempt':>7}  worker"]
    for e in t["events"]:
        out.append(
            f"  {_when(e['at']):<19}  {e['from_status'] or '-':<9} → {e['to_status']:<9}  {e['attempt']:>7}  "
            f"{s(e['worker_id'])}"
        )
    out += _big_texts(t, whole)
    return "\n".join(out)


# -- retry / cancel / requeue ---------------------------------------------------------------


def run_action(args: Namespace, ctx: Context, stdin=None) -> int:
    from fsar_tui.db import actions, tasks

    action = args.tasks_command
    allowed, target = ACTIONS[action]
    ids = list(dict.fromkeys(args.ids))
    if ids and args.filter is not None:
        raise UsageError("give task ids or --filter, not both")
    if not ids and args.filter is None:
        raise UsageError(f"name the tasks to {action}: task ids, or --filter EXPR")
    f = parse_filter_arg(args.filter) if args.filter is not None else None
    reason = (args.reason or "").strip()
    if not reason and not args.dry_run:
        raise UsageError("--reason is required: say why, it goes to the operator log")
    if ctx.settings.read_only and not args.dry_run:
        raise UsageError(f"--read-only: {action} changes tasks (--dry-run shows what it would do)")
    states = "/".join(allowed)
    with ctx.connect() as conn:
        if f is None:
            current = tasks.statuses_of_sync(conn, ids)
            missing = [i for i in ids if i not in current]
            if missing:
                raise CheckFailed(
                    f"task {missing[0]} does not exist" if len(missing) == 1 else f"tasks {_ids(missing)} do not exist"
                )
            wrong = [f"{i} is {current[i]}" for i in ids if current[i] not in allowed]
            if wrong:
                raise CheckFailed(
                    f"{action} applies to {states} tasks; task {', task '.join(wrong[:10])}"
                    f"{' …' if len(wrong) > 10 else ''}; nothing changed"
                )
            seen = [(i, current[i]) for i in ids]
            scope = "task" if len(seen) == 1 else "tasks"
        else:
            seen = [(i, s) for i, s in tasks.matching_ids_sync(conn, f, allowed, BULK_CAP + 1)]
            if not seen:
                raise CheckFailed(f"no {states} task matches the filter {args.filter!r}; nothing changed")
            if len(seen) > BULK_CAP:
                n = tasks.count_in_states_sync(conn, f, allowed, REFUSED_COUNT_CAP)
                how_many = f"more than {REFUSED_COUNT_CAP - 1:,}" if n >= REFUSED_COUNT_CAP else f"{n:,}"
                raise CheckFailed(
                    f"{how_many} {states} tasks match the filter; one {action} takes at most "
                    f"{BULK_CAP:,}: narrow the filter (e.g. since:, type:, id:); nothing changed"
                )
            scope = f"filter: {args.filter.strip() or '(all tasks)'}"
        seen_ids = [i for i, _ in seen]
        what = f"task {seen_ids[0]}" if len(seen) == 1 else f"{len(seen):,} tasks"
        if args.dry_run:
            print(f"dry run: would {action} {what} ({states} → {target}):")
            for i, status in seen:
                print(f"  {i:>8}  {status} → {target}")
            print("dry run: nothing changed")
            return EXIT_OK
        print(f"{action} {what} ({states} → {target})" + (f": {_ids(seen_ids)}" if len(seen) > 1 else ""))
        if len(seen) > 1 and not args.yes:
            stdin = stdin or sys.stdin
            if not stdin.isatty():
                raise UsageError(
                    f"{len(seen):,} tasks: a bulk {action} needs --yes (or typing the count at a "
                    "terminal); nothing changed"
                )
            print(f"type the number of tasks ({len(seen)}) to confirm: ", end="", flush=True)
            if stdin.readline().strip().replace(",", "") != str(len(seen)):
                print("fsar-tui: not confirmed; nothing changed", file=sys.stderr)
                return EXIT_FAILED
        scope += ": " + ",".join(str(i) for i in seen_ids[:50])  # as the screen writes it
        try:
            result = actions.apply_action_sync(conn, action, seen, reason, scope=scope, actor=actions.os_user())
        except actions.ActionRefused as exc:
            raise CheckFailed(str(exc)) from None
    print(f"{action}: {len(result.done):,} done" + (f" ({_ids(result.done)})" if result.done else ""))
    if result.changed:
        moved = f"{len(result.changed):,} changed meanwhile and were left alone: {_ids(result.changed)}"
        print(f"fsar-tui: {moved}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
