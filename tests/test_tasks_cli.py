"""`fsar-tui tasks list|show|retry|cancel|requeue` — the queue screen headless — against a
real PostgreSQL, through the real CLI in a subprocess (in-process where a race has to be
staged between the command's read and its write)."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import subprocess
import sys

import psycopg
import pytest

from fsar_tui.db import actions
from fsar_tui.db.connect import connect
from support.sql import q, x

HOSTILE_TYPE = "\x1b]52;c;aGFja2Vk\x07[bold red]pwn[/] ann@evil.io\x1b[2J"  # fits varchar(64)
HOSTILE_ERROR = (
    "boom \x1b]52;c;ZXZpbCBjbGlwYm9hcmQ=\x07 mail jane.doe@example.com \x1b[31mred\x1b[0m "
    "[link=https://evil.example]click[/link] \x9b2J key sk-live_abcdefghijklmnop1234"
)
HOSTILE_PAYLOAD = {"note": "\x1b]52;c;ZXZpbA==\x07 ok \x9b31m", "\x1b[2Jkey": "mail ann@evil.io"}
PAYLOAD = {"prompt": "write to jane.doe@example.com", "email": "x@y.io", "n": 3}
DONE = "finished_at = clock_timestamp(), lease_expires_at = NULL"
STEPS = {  # what an executor (or an operator) writes for each move; the trigger writes the events
    "run": "status = 'running', attempt = attempt + 1, worker_id = %(a)s, started_at = clock_timestamp(), "
    "lease_expires_at = clock_timestamp() + interval '5 minutes'",
    "retry": "status = 'queued', error = %(a)s, queued_at = clock_timestamp(), lease_expires_at = NULL",
    "fail": f"status = 'failed', error = %(a)s, {DONE}",
    "ok": f"status = 'succeeded', error = NULL, result = '{{\"summary\": \"done\"}}', {DONE}",
    "cancel": f"status = 'cancelled', {DONE}",
}
# name: (task_type, ai_model, moves, payload, cost)
QUEUE = {
    "two_attempts": ("implement_idea", "gpt-4o", [("run", "w-1"), ("retry", "first: connection reset"),
                     ("run", "w-2"), ("fail", "TimeoutError: model call exceeded 120s")], PAYLOAD, 40),
    "si_failed": ("self_improvement", "claude-3-5-sonnet", [("run", "w-3"), ("fail", "pytest: 3 failed")], None, 10),
    "si_failed_2": ("self_improvement", "gpt-4o", [("run", "w-3"), ("fail", "pytest: 1 failed")], None, 25),
    "queued": ("implement_idea", "gpt-4o", [], None, None),
    "running": ("self_improvement", "gpt-4o", [("run", "w-9")], None, None),
    "succeeded": ("idea_implementation", "gpt-4o-mini", [("run", "w-1"), ("ok", None)], None, 5),
    "cancelled": ("implement_idea", None, [("cancel", None)], None, None),
    "hostile": (HOSTILE_TYPE, "gpt-4o", [("run", "w-6"), ("fail", HOSTILE_ERROR)], HOSTILE_PAYLOAD, None),
}  # fmt: skip


def add_task(conn, task_type, model, moves, payload, cost) -> int:
    sql = "INSERT INTO execution_tasks (task_type, ai_model, payload) VALUES (%s, %s, %s) RETURNING id"
    ((task_id,),) = conn.execute(sql, (task_type, model, payload and psycopg.types.json.Jsonb(payload))).fetchall()
    for kind, arg in moves:
        conn.execute(f"UPDATE execution_tasks SET {STEPS[kind]} WHERE id = %(id)s", {"a": arg, "id": task_id})
    if cost is not None:
        # Costs are derived by the database (revision 0024); a fixture writes them as the bulk loader does.
        with conn.transaction():
            conn.execute("SET LOCAL fsar.bulk_load = 'on'")
            conn.execute("UPDATE execution_tasks SET cost_minor = %s, currency = 'USD' WHERE id = %s", (cost, task_id))
    return task_id


@pytest.fixture
def queue(db_dsn):
    """A small queue: every status, two attempts on one task, a hostile type, error and payload."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        return db_dsn, {name: add_task(conn, *spec) for name, spec in QUEUE.items()}


@pytest.fixture
def fsar(queue, run_cli):
    """fsar("tasks show {hostile}"): the real CLI on the queue's database ({name}: that task's id)."""
    dsn, ids = queue

    def run(command: str, *, dsn_: str | None = None):
        return run_cli(*shlex.split(command.format(**ids)), "--dsn", dsn_ or dsn)

    return run


def ids_of(dsn: str, sql: str, params=None) -> list[int]:
    return [r[0] for r in q(dsn, sql, params)]


def state(dsn: str) -> tuple[list[tuple], int, int]:
    """Everything an action could change: every task's status and attempts, the log, the events."""
    return (
        q(dsn, "SELECT id, status, max_attempts, finished_at FROM execution_tasks ORDER BY id"),
        q(dsn, "SELECT count(*) FROM operator_actions")[0][0],
        q(dsn, "SELECT count(*) FROM task_events")[0][0],
    )


def assert_one_line_error(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fsar-tui: "), err
    for needle in needles:
        assert needle in err, err


def table_ids(stdout: str) -> list[int]:
    """The id column of `tasks list`'s table (between the header and the count line)."""
    return [int(line.split()[0]) for line in stdout.splitlines()[1:-1]]


# -- list -------------------------------------------------------------------------------------


def test_list_newest_first_with_counts_and_limit(queue, fsar):
    _, ids = queue
    proc = fsar("tasks list")
    assert proc.returncode == 0, proc.stderr
    assert table_ids(proc.stdout) == sorted(ids.values(), reverse=True)
    assert proc.stdout.splitlines()[-1] == "8 tasks"
    limited = fsar("tasks list --limit 3")
    assert table_ids(limited.stdout) == sorted(ids.values(), reverse=True)[:3]
    assert limited.stdout.splitlines()[-1].startswith("3 of 8 tasks")
    assert table_ids(fsar("tasks list --reverse --limit 2").stdout) == sorted(ids.values())[:2]
    none = fsar("tasks list --filter type:no_such_type")
    assert none.returncode == 0 and table_ids(none.stdout) == [] and none.stdout.splitlines()[-1] == "no task matches"


def test_list_filter_sort_and_formats_match_sql(queue, fsar):
    dsn, ids = queue
    proc = fsar("tasks list --filter 'status:failed type:self_improvement' --sort cost --format json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["id"] for r in rows] == [ids["si_failed_2"], ids["si_failed"]]  # cost 25 then 10
    assert {r["status"] for r in rows} == {"failed"} and rows[0]["cost_minor"] == 25 and rows[0]["currency"] == "USD"
    assert rows[0]["error"] == "pytest: 1 failed" and rows[0]["worker_id"] == "w-3" and rows[0]["run_s"] >= 0
    assert proc.stderr == ""  # everything matching was shown

    # status:a,b lists alternatives and error~ searches errors (the screen's language).
    proc = fsar("tasks list --filter 'status:failed,cancelled error~fail' --sort started --reverse --format csv")
    records = list(csv.DictReader(io.StringIO(proc.stdout)))
    want = ids_of(dsn, "SELECT id FROM execution_tasks WHERE status IN ('failed', 'cancelled') "
                       "AND error ILIKE '%fail%' ORDER BY started_at ASC NULLS FIRST, id")  # fmt: skip
    assert [int(r["id"]) for r in records] == want == [ids["si_failed"], ids["si_failed_2"]]
    assert " ".join(records[0]) == ("id status task_type ai_model attempt max_attempts worker_id created_at "
                                    "started_at finished_at run_s cost_minor currency error")  # fmt: skip

    limited = fsar("tasks list --limit 2 --format json")
    assert len(json.loads(limited.stdout)) == 2
    assert "2 of 8 tasks" in limited.stderr  # stdout stays parseable; the truncation is said on stderr


def test_list_says_more_than_the_count_cap(db_dsn, run_cli):
    x(db_dsn, "INSERT INTO execution_tasks (task_type) SELECT 'bulk' FROM generate_series(1, 10050)")
    proc = run_cli("tasks", "list", "--limit", "5", "--dsn", db_dsn)
    assert proc.stdout.splitlines()[-1].startswith("5 of >10,000 tasks")
    # Past the first keyset page: --limit larger than one page is paged, not truncated.
    big = run_cli("tasks", "list", "--limit", "2500", "--sort", "created", "--format", "json", "--dsn", db_dsn)
    want = ids_of(db_dsn, "SELECT id FROM execution_tasks ORDER BY created_at DESC, id DESC LIMIT 2500")
    assert [r["id"] for r in json.loads(big.stdout)] == want
    # Showing more than the count cap: the count goes past what is shown ("N of >M", M > N).
    more = run_cli("tasks", "list", "--limit", "10020", "--dsn", db_dsn)
    assert more.stdout.splitlines()[-1].startswith("10,020 of 10,050 tasks"), more.stdout.splitlines()[-1]


# -- show -------------------------------------------------------------------------------------


def test_show_attempts_events_and_redacted_payload(queue, fsar):
    dsn, ids = queue
    task_id = ids["two_attempts"]
    proc = fsar("tasks show {two_attempts}")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"task      {task_id} · implement_idea · gpt-4o" in out
    assert "failed · attempt 2 of 3 · worker w-2" in out
    first, second = out[out.index("attempts (2") : out.index("events (")].split("#1")[1].split("#2")
    assert "failed → retry" in first and "worker w-1" in first and "error: first: connection reset" in first
    assert "failed" in second and "worker w-2" in second and "error: TimeoutError: model call exceeded 120s" in second
    events = out[out.index("events (") : out.index("\nerror\n")].splitlines()
    assert events[0] == "events (5)"  # created, run, back to queue, run, fail
    assert [" ".join(line.split()[2:5]) for line in events[2:]] == [
        "- → queued", "queued → running", "running → queued", "queued → running", "running → failed"]  # fmt: skip
    assert [line.split()[-1] for line in events[2:]] == ["-", "w-1", "w-1", "w-2", "w-2"]
    assert "jane.doe@example.com" not in out and "x@y.io" not in out and "[REDACTED:email]" in out
    assert '"n": 3' in out

    data = json.loads(fsar("tasks show {two_attempts} --format json").stdout)
    assert [(a["attempt"], a["worker_id"], a["outcome"], a["error_kept"]) for a in data["attempts"]] == [
        (1, "w-1", "queued", True), (2, "w-2", "failed", True)]  # fmt: skip
    assert data["attempts"][1]["error"] == "TimeoutError: model call exceeded 120s"
    assert all(a["run_s"] is not None and a["run_s"] >= 0 and a["wait_s"] >= 0 for a in data["attempts"])
    assert data["attempts"][0]["ended_at"] <= data["attempts"][1]["started_at"]
    assert len(data["events"]) == 5 == q(dsn, "SELECT count(*) FROM task_events WHERE task_id = %s", (task_id,))[0][0]
    assert data["payload"] == {"prompt": "write to [REDACTED:email]", "email": "[REDACTED:field]", "n": 3}
    assert data["cost_minor"] == 40 and data["result"] is None


def test_show_running_never_started_and_legacy_rows(queue, fsar):
    dsn, ids = queue
    running = json.loads(fsar("tasks show {running} --format json").stdout)
    assert [(a["outcome"], a["ended_at"], a["worker_id"]) for a in running["attempts"]] == [("running", None, "w-9")]
    assert "(none: never started)" in fsar("tasks show {queued}").stdout
    # A row with no trail (a legacy row, a bulk load): its own columns make the one attempt.
    x(dsn, "DELETE FROM task_events WHERE task_id = %s", (ids["si_failed"],))
    legacy = json.loads(fsar("tasks show {si_failed} --format json").stdout)
    assert [(a["attempt"], a["outcome"], a["error"]) for a in legacy["attempts"]] == [(1, "failed", "pytest: 3 failed")]
    assert legacy["events"] == []


def test_show_unknown_id_and_reveal(queue, fsar, login):
    dsn, ids = queue
    assert_one_line_error(fsar("tasks show 987654"), 1, "task 987654 does not exist")
    assert_one_line_error(fsar("tasks show abc"), 2, "invalid int value")
    raw = fsar("tasks show {two_attempts} --format json --reveal", dsn_=login("fsar_admin"))
    assert raw.returncode == 0, raw.stderr
    assert json.loads(raw.stdout)["payload"] == PAYLOAD
    reveals = q(dsn, "SELECT target FROM operator_actions WHERE action = 'reveal'")
    assert reveals == [(f"cli:tasks show {ids['two_attempts']}",)]


# -- hostile text -------------------------------------------------------------------------------


def strings(value) -> list[str]:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, dict):
        return [*value.keys(), *(s for v in value.values() for s in strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("command", [
    "tasks list", "tasks list --format json", "tasks list --format csv", "tasks list --filter error~jane",
    "tasks show {hostile}", "tasks show {hostile} --format json", "tasks retry {hostile} --dry-run",
])  # fmt: skip
def test_hostile_text_never_reaches_stdout_raw(fsar, command):
    proc = fsar(command)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    for raw in ("\x1b", "\x07", "\x9b", "]52;", "jane.doe@example.com", "ann@evil.io", "sk-live_abcdefghijklmnop1234"):
        assert raw not in out, (raw, out)
    for escaped in ("\\u001b", "\\u0007", "\\u009b"):
        assert escaped not in out  # not merely escaped in JSON: gone
    if "retry" in command:
        return  # the dry run names ids and states only
    assert "[REDACTED:email]" in out
    if "json" in command:  # what a consumer of the JSON gets, decoded
        assert not any(ch in text for text in strings(json.loads(proc.stdout)) for ch in "\x1b\x07\x9b")
    if "show" in command:  # the payload, keys included: inert and redacted
        assert '"note": " ok "' in out and '"key": "mail [REDACTED:email]"' in out
    # Rich markup is text, printed as typed: nothing interprets it on a plain stdout.
    assert "[bold red]pwn[/]" in out


# -- actions ------------------------------------------------------------------------------------


def test_retry_one_task_by_id_writes_the_operator_log(queue, fsar):
    dsn, ids = queue
    task_id = ids["two_attempts"]
    proc = fsar("tasks retry {two_attempts} --reason 'upstream fixed'")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"retry task {task_id} (failed → queued)", f"retry: 1 done ({task_id})"]
    sql = "SELECT status, finished_at IS NULL, attempt < max_attempts FROM execution_tasks WHERE id = %s"
    assert q(dsn, sql, (task_id,)) == [("queued", True, True)]
    sql = "SELECT actor, claimed_os_user, db_role, action, target, reason, before, after FROM operator_actions"
    ((actor, claimed, db_role, action, target, reason, before, after),) = q(dsn, sql)
    assert (
        actor == db_role == "postgres" and claimed == actions.os_user()
    )  # the role authenticated; the OS user claimed
    assert (action, target, reason) == ("task.retry", f"task: {task_id}", "upstream fixed")
    assert before == {"status": {str(task_id): "failed"}} and after == {"status": "queued", "ids": [task_id]}
    assert q(dsn, "SELECT fsar_operator_actions_verify()") == [(None,)]
    # The trail shows the operator's transition too.
    events = json.loads(fsar("tasks show {two_attempts} --format json").stdout)["events"]
    assert (events[-1]["from"], events[-1]["to"]) == ("failed", "queued")


def test_cancel_and_requeue_by_ids_and_filter(queue, fsar):
    dsn, ids = queue
    proc = fsar("tasks cancel {queued} {running} --reason 'bad batch' --yes")
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout.splitlines()[0] == f"cancel 2 tasks (queued/running → cancelled): {ids['queued']}, {ids['running']}"
    )
    statuses = q(
        dsn, "SELECT DISTINCT status FROM execution_tasks WHERE id = ANY(%s)", ([ids["queued"], ids["running"]],)
    )
    assert statuses == [("cancelled",)]
    # requeue by filter: the matching tasks in running/cancelled/succeeded, nothing else.
    movable = ids_of(dsn, "SELECT id FROM execution_tasks WHERE status IN ('cancelled', 'succeeded') "
                          "AND task_type <> 'self_improvement' ORDER BY id")  # fmt: skip
    proc = fsar("tasks requeue --filter type:implement_idea,idea_implementation --reason refill --yes")
    assert proc.returncode == 0, proc.stderr
    assert ids_of(dsn, "SELECT id FROM execution_tasks WHERE status = 'queued' ORDER BY id") == movable
    assert f"requeue: {len(movable)} done" in proc.stdout
    assert q(dsn, "SELECT status FROM execution_tasks WHERE id = %s", (ids["two_attempts"],)) == [("failed",)]
    rows = q(dsn, "SELECT action, target, reason, after FROM operator_actions ORDER BY seq")
    assert [r[0] for r in rows] == ["task.cancel", "task.requeue"]
    assert rows[0][1] == f"tasks: {ids['queued']},{ids['running']}"
    assert rows[1][1] == "filter: type:implement_idea,idea_implementation: " + ",".join(map(str, movable))
    assert rows[1][2] == "refill" and rows[1][3] == {"status": "queued", "ids": movable}


def test_retry_by_filter_acts_only_on_the_from_states(queue, fsar):
    dsn, ids = queue
    proc = fsar("tasks retry --filter type:self_improvement --reason flaky --yes")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"retry: 2 done ({ids['si_failed']}, {ids['si_failed_2']})"
    assert q(dsn, "SELECT status FROM execution_tasks WHERE id = %s", (ids["running"],)) == [("running",)]


def test_dry_run_writes_nothing_and_needs_no_reason(queue, fsar):
    dsn, ids = queue
    before = state(dsn)
    proc = fsar("tasks retry --filter status:failed --dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "dry run: would retry 4 tasks (failed → queued):" and lines[-1] == "dry run: nothing changed"
    failed = sorted(ids[k] for k in ("two_attempts", "si_failed", "si_failed_2", "hostile"))
    assert [line.split() for line in lines[1:-1]] == [[str(i), "failed", "→", "queued"] for i in failed]
    single = fsar("tasks cancel {running} --dry-run --reason r")
    assert single.returncode == 0
    assert single.stdout.splitlines()[0] == f"dry run: would cancel task {ids['running']} (queued/running → cancelled):"
    read_only = fsar("tasks cancel {running} --dry-run --read-only")
    assert read_only.returncode == 0, read_only.stderr
    assert state(dsn) == before


def test_bulk_needs_yes_or_the_typed_count(queue, fsar, isolated_env, tmp_path):
    dsn, _ = queue
    before = state(dsn)
    proc = fsar("tasks retry --filter status:failed --reason r")
    assert_one_line_error(proc, 2, "4 tasks", "needs --yes", "nothing changed")
    assert "retry 4 tasks" in proc.stdout  # the count is stated
    assert state(dsn) == before

    def at_terminal(typed: bytes):
        main, secondary = os.openpty()
        args = ["tasks", "retry", "--filter", "status:failed", "--reason", "r", "--dsn", dsn]
        try:
            os.write(main, typed)
            return subprocess.run([sys.executable, "-m", "fsar_tui", *args], stdin=secondary, capture_output=True,
                                  text=True, env=isolated_env, cwd=tmp_path, timeout=120)  # fmt: skip
        finally:
            os.close(main)
            os.close(secondary)

    wrong = at_terminal(b"3\n")
    assert wrong.returncode == 1 and "type the number of tasks (4) to confirm" in wrong.stdout
    assert "not confirmed; nothing changed" in wrong.stderr and state(dsn) == before
    typed = at_terminal(b"4\n")
    assert typed.returncode == 0, typed.stderr
    assert "retry: 4 done" in typed.stdout
    assert q(dsn, "SELECT count(*) FROM execution_tasks WHERE status = 'failed'") == [(0,)]
    assert q(dsn, "SELECT action, reason FROM operator_actions") == [("task.retry", "r")]


def test_optimistic_check_in_the_database(queue):
    dsn, ids = queue
    a, b = ids["si_failed"], ids["si_failed_2"]
    x(dsn, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL WHERE id = %s", (a,))  # moved meanwhile
    seen = [(a, "failed"), (b, "failed"), (ids["queued"], "queued")]
    with connect(dsn, autocommit=True) as conn:
        result = actions.apply_action_sync(conn, "retry", seen, "stale view", scope="tasks", actor="bob")
    assert (result.done, result.changed, result.not_applicable) == ([b], [a], [ids["queued"]])
    assert q(dsn, "SELECT claimed_os_user, action, before, after FROM operator_actions") == [
        ("bob", "task.retry", {"status": {str(b): "failed"}}, {"status": "queued", "ids": [b]})]  # fmt: skip
    # All moved: nothing done, nothing logged.
    with connect(dsn, autocommit=True) as conn:
        nothing = actions.apply_action_sync(conn, "cancel", [(ids["succeeded"], "queued")], "stale", scope="task")
        assert nothing.done == [] and nothing.changed == [ids["succeeded"]]
        with pytest.raises(ValueError, match="reason"):
            actions.apply_action_sync(conn, "retry", [(b, "queued")], "  ", scope="task")
    assert q(dsn, "SELECT count(*) FROM operator_actions") == [(1,)]


def test_cli_reports_tasks_that_moved_between_read_and_write(queue, monkeypatch, capsys):
    """A worker (here: another connection) moves one task after the command read the states."""
    from fsar_tui import cli
    from fsar_tui.db import tasks

    dsn, ids = queue
    a, b = ids["si_failed"], ids["si_failed_2"]
    read = tasks.statuses_of_sync

    def read_then_someone_moves(conn, wanted):
        seen = read(conn, wanted)
        x(dsn, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL WHERE id = %s", (a,))
        return seen

    monkeypatch.setattr(tasks, "statuses_of_sync", read_then_someone_moves)
    code = cli.main(["tasks", "retry", str(a), str(b), "--reason", "race", "--yes", "--dsn", dsn])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines()[-1] == f"retry: 1 done ({b})"
    assert err.strip() == f"fsar-tui: 1 changed meanwhile and were left alone: {a}"
    assert q(dsn, "SELECT after FROM operator_actions") == [({"status": "queued", "ids": [b]},)]


@pytest.mark.parametrize("command,code,needles", [
    ("retry 987654 --reason r", 1, ["task 987654 does not exist"]),
    ("cancel {queued} 987654 987655 --reason r --yes", 1, ["tasks 987654, 987655 do not exist"]),
    ("retry --filter 'type:implement_idea status:queued' --reason r --yes", 1,
     ["no failed task matches the filter", "nothing changed"]),
    ("cancel --filter status:bogus --reason r", 2, ["--filter: unknown status 'bogus'; use one of queued, running"]),
    ("cancel --filter colour:red --reason r", 2, ["unknown filter key 'colour'"]),
    ("cancel --filter 'error~\"open' --reason r", 2, ["unbalanced quotes"]),
    ("retry {si_failed}", 2, ["--reason is required"]),
    ("retry {si_failed} --reason '   '", 2, ["--reason is required"]),
    ("retry {si_failed} --filter status:failed --reason r", 2, ["task ids or --filter, not both"]),
    ("requeue --reason r", 2, ["name the tasks to requeue"]),
    ("retry {si_failed} {succeeded} --reason r --yes", 1, ["is succeeded", "retry applies to failed tasks"]),
    ("retry {si_failed} --reason r --read-only", 2, ["--read-only"]),
    ("retry 12x --reason r", 2, ["invalid int value"]),
])  # fmt: skip
def test_bad_input_changes_nothing(queue, fsar, command, code, needles):
    dsn, _ = queue
    before = state(dsn)
    assert_one_line_error(fsar("tasks " + command), code, *needles)
    assert state(dsn) == before


def test_filter_over_the_bulk_cap_is_refused_with_the_count(db_dsn, run_cli):
    x(db_dsn, "INSERT INTO execution_tasks (task_type) SELECT 'bulk' FROM generate_series(1, 10007)")
    before = state(db_dsn)
    proc = run_cli("tasks", "cancel", "--filter", "type:bulk", "--reason", "drain", "--yes", "--dsn", db_dsn)
    needles = ("10,007 queued/running tasks match", "at most 10,000", "narrow the filter", "nothing changed")
    assert_one_line_error(proc, 1, *needles)
    assert state(db_dsn) == before
    dry = run_cli("tasks", "cancel", "--filter", "type:bulk", "--dry-run", "--dsn", db_dsn)
    assert dry.returncode == 1 and "10,007" in dry.stderr and dry.stdout == ""
    # Narrowed under the cap, it goes through in one transaction with one log entry.
    ok = run_cli("tasks", "cancel", "--filter", "type:bulk id:1,2,3", "--reason", "drain", "--yes", "--dsn", db_dsn)
    assert ok.returncode == 0, ok.stderr
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks WHERE status = 'cancelled'") == [(3,)]
    assert q(db_dsn, "SELECT count(*) FROM operator_actions") == [(1,)]


def test_a_read_only_role_is_refused_by_postgres(queue, fsar, login):
    dsn, _ = queue
    before = state(dsn)
    viewer = login("fsar_viewer")
    assert_one_line_error(fsar("tasks retry {si_failed} --reason r", dsn_=viewer), 1, "the database refused retry")
    assert state(dsn) == before
    listed = fsar("tasks list", dsn_=viewer)  # reading is what a viewer may do
    assert listed.returncode == 0 and len(table_ids(listed.stdout)) == 8
    operator = login("fsar_operator")
    done = fsar("tasks retry {si_failed} --reason r", dsn_=operator)
    assert done.returncode == 0, done.stderr
    assert q(dsn, "SELECT db_role FROM operator_actions") == [(operator.split("user=")[1].split()[0],)]
