"""Hostile size and shape against a real database (issue 15 point 2): a task whose error is
1 MB of base64url-looking text and whose payload is 10 MB with a branch nested 3,000 deep.

- The task detail: a key pressed right after opening it is handled at the next pause; its
  redaction and layout run off the event loop (a thread); it shows the first 64 KiB of
  each text and the cap line; `e` exports the whole, redacted, as valid JSON.
- `tasks show`: capped with the same line, `--full` whole, `--format json` whole.
- The sensitive-results gate and `anonymize` on such rows: no RecursionError, the deep
  document scrubbed as text (still valid JSON, as deep), a huge result checked on its first
  MiB and named.
"""

from __future__ import annotations

import json
import threading

import pytest

from fsar_tui.screens.task_detail import TaskDetailScreen
from support.pilot import make_app, until
from support.sql import q, x

ERROR = ("eyJhbGciOiJIUzI1NiJ9" + "QUJDREVGR0hJSktMTU5PUA" * 6 + "_-") * 7000  # ~1 MB, base64url-looking
DEEP = '{"a": ' * 3000 + '{"note": "mail ann@evil.example"}' + "}" * 3000


def big_payload() -> str:
    record = {"id": 123456789, "note": "mail jane.doe@example.com or call +1 415 555 0142", "pad": "x" * 180}
    records = json.dumps([record] * 40_000)  # ~10 MB
    return '{"deep": ' + DEEP + ', "records": ' + records + "}"


@pytest.fixture
def heavy(db_dsn):
    x(db_dsn, "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 3)")
    x(db_dsn, "UPDATE execution_tasks SET error = %s, payload = %s::jsonb WHERE id = 2", (ERROR, big_payload()))
    return db_dsn


def shown(app) -> str:
    from rich.console import Console

    found = app.screen.query("#detail")
    if not found:
        return ""
    console = Console(width=160, force_terminal=False, color_system=None)
    with console.capture() as cap:
        console.print(found.first().content)
    return cap.get()


async def test_the_detail_of_a_huge_deep_task_stays_responsive_capped_and_exports(heavy, monkeypatch, tmp_path):
    from fsar_tui.screens import task_detail

    on_loop: list[bool] = []
    preparing, release, prepared = threading.Event(), threading.Event(), threading.Event()
    prepare = task_detail.prepare

    def watched(task, reveal):
        on_loop.append(threading.current_thread() is threading.main_thread())
        preparing.set()
        release.wait(30)  # held until the test has pressed its key
        try:
            return prepare(task, reveal)
        finally:
            prepared.set()

    monkeypatch.setattr(task_detail, "prepare", watched)
    monkeypatch.setenv("FSAR_EXPORT_DIR", str(tmp_path / "exports"))
    app = make_app(heavy)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: type(app.screen).__name__ == "QueueScreen")
        # While the detail is being redacted and laid out (held here), a key is handled at
        # the next pause: that work is not on the event loop.
        app.push_screen(TaskDetailScreen(2))
        assert await until(pilot, preparing.is_set, tries=600)
        assert isinstance(app.screen, TaskDetailScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TaskDetailScreen) and not prepared.is_set()
        release.set()

        app.push_screen(TaskDetailScreen(2))
        assert await until(pilot, lambda: "payload" in shown(app) and "more bytes not shown" in shown(app), tries=600)
        text = shown(app)
        assert on_loop and not any(on_loop)  # the redaction and layout ran in a thread
        assert text.count("more bytes not shown") == 2  # the error and the payload; the result is empty
        assert len(text) < 400_000  # 64 KiB of each (laid out), not 11 MB
        assert "jane.doe@example.com" not in text and "ann@evil.example" not in text
        assert '"a": {' in text  # the deep branch, laid out as text
        await pilot.press("y")  # and keys keep working
        await pilot.pause()

        await pilot.press("e")
        exports = tmp_path / "exports"
        payload_file = exports / "task-2-payload.json"
        assert await until(pilot, lambda: payload_file.exists() and (exports / "task-2-error.txt").exists(), tries=600)
        assert await until(pilot, lambda: payload_file.read_text().endswith("}\n"), tries=200)
        exported = payload_file.read_text()
        assert exported.count('"a": {') == 3000 and exported.count("[REDACTED:email]") == 40_001
        assert "jane.doe" not in exported and "ann@evil" not in exported
        assert exported.count("{") == exported.count("}") and exported.count("[") == exported.count("]")
        assert len((exports / "task-2-error.txt").read_text()) >= len(ERROR)
        assert oct((exports / "task-2-payload.json").stat().st_mode & 0o777) == "0o600"
        assert app.is_running


def test_tasks_show_caps_and_full_prints_all(heavy, run_cli):
    capped = run_cli("tasks", "show", "2", "--dsn", heavy)
    assert capped.returncode == 0, capped.stderr
    assert capped.stdout.count("more bytes not shown") == 2 and "--full prints all" in capped.stdout
    assert len(capped.stdout) < 400_000 and "jane.doe@example.com" not in capped.stdout
    full = run_cli("tasks", "show", "2", "--full", "--dsn", heavy)
    assert full.returncode == 0, full.stderr
    assert "more bytes not shown" not in full.stdout and full.stdout.count("[REDACTED:email]") >= 40_001
    assert "jane.doe" not in full.stdout and ERROR[-5000:] in full.stdout
    as_json = run_cli("tasks", "show", "2", "--format", "json", "--dsn", heavy)
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)["payload"]
    assert payload["why"].startswith("nested deeper than 64 levels") and "jane.doe" not in payload["unparsed_json"]


def test_the_sensitive_results_gate_bounds_each_result(db_dsn):
    from fsar_tui.db.connect import connect
    from fsar_tui.services import gates

    huge = json.dumps({"log": "x " * 600_000 + " mail jane.doe@example.com"})  # the email past the first MiB
    for result in (DEEP, huge, '{"ok": true}'):
        x(
            db_dsn,
            """INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at,
                                            finished_at, result)
               VALUES ('implement_idea', 'gpt-4o', 'succeeded', 1, now() - interval '12 minutes',
                       now() - interval '11 minutes', now() - interval '10 minutes', %s::jsonb)""",
            (result,),
        )
    with connect(db_dsn, autocommit=True) as conn:
        ((_, verdict),) = gates.run_gates(conn, "builtin:sensitive-results")
    assert verdict.verdict == "fail" and verdict.measured == 1, verdict.details  # the deep one: its email
    deep_id, huge_id = (r[0] for r in q(db_dsn, "SELECT id FROM execution_tasks ORDER BY id LIMIT 2"))
    assert verdict.details["task_ids"] == [deep_id] and verdict.details["kinds"] == ["email"]
    assert verdict.details["partly_checked"]["task_ids"] == [huge_id]


def test_anonymize_scrubs_a_3000_deep_document_as_text_and_goes_on(db_dsn, login, run_cli):
    for payload in (DEEP, '{"prompt": "email jane@example.com"}'):
        x(
            db_dsn,
            """INSERT INTO execution_tasks (task_type, status, payload, created_at, queued_at, finished_at)
               VALUES ('implement_idea', 'succeeded', %s::jsonb, now() - interval '120 days',
                       now() - interval '120 days', now() - interval '120 days')""",
            (payload,),
        )
    admin = login("fsar_admin")
    dry = run_cli("anonymize", "--older-than", "90d", "--dry-run", "--dsn", admin)
    assert dry.returncode == 0, dry.stderr
    assert "execution_tasks: scanned 2, would scrub 2" in dry.stdout
    assert "1 document(s) too deep or too large to parse scrubbed as text" in dry.stdout
    done = run_cli("anonymize", "--older-than", "90d", "--reason", "retention test", "--yes", "--dsn", admin)
    assert done.returncode == 0, done.stderr
    ((deep,),) = q(db_dsn, "SELECT payload::text FROM execution_tasks ORDER BY id LIMIT 1")
    assert "ann@evil" not in deep and "[REDACTED:email]" in deep and deep.count("{") == 3001  # valid jsonb, as deep
    again = run_cli("anonymize", "--older-than", "90d", "--reason", "retention test", "--yes", "--dsn", admin)
    assert "execution_tasks: scanned 2, scrubbed 0" in again.stdout
