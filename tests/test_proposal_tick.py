"""Checklist ticks are explicit and idempotent (issue 16, point 9): `proposals tick|untick
ID N` with N numbered from 1 as `proposals show` prints it, a repeat changes nothing, a
bad N writes nothing; the screen asks for the state opposite to the one it shows, so an
operator never flips back what another just did; revision 0023 and its downgrade."""

from __future__ import annotations

import json

import psycopg

from fsar_tui.db import governance_functions, privileges, proposals
from fsar_tui.db.connect import connect
from fsar_tui.db.migrations import downgrade, migrate
from fsar_tui.screens.proposals import ProposalsScreen
from support.pilot import make_app, until
from support.sql import q
from test_proposals import report, write
from test_proposals_screen import ingest

OLD_TICK = "fsar_proposal_tick(text,text,text,text)"
NEW_TICK = "fsar_proposal_tick(text,integer,boolean,text,text)"


def checklist(dsn, pid="fsar_p"):
    return sorted(q(dsn, "SELECT checklist FROM fsar_proposals WHERE id = %s", (pid,))[0][0])


def log_rows(dsn):
    return q(
        dsn,
        "SELECT action, reason, before, after FROM operator_actions "
        "WHERE action IN ('proposal.tick', 'proposal.untick') ORDER BY seq",
    )


def ingested(dsn, run_cli, tmp_path):
    # One risk, then two mitigations: items 1, 2 and 3.
    out = run_cli("ingest-fsar", str(write(tmp_path, "p.txt", report("fsar_p"))), "--dsn", dsn)
    assert out.returncode == 0, out.stderr
    return ("--dsn", dsn)


def test_tick_counts_from_one_like_show_and_a_repeat_changes_nothing(db_dsn, run_cli, tmp_path):
    cli = ingested(db_dsn, run_cli, tmp_path)
    shown = run_cli("proposals", "show", "fsar_p", *cli).stdout
    assert "1. [ ] a risk" in shown and "2. [ ] a mitigation" in shown and "3. [ ] another" in shown

    first = run_cli("proposals", "tick", "fsar_p", "1", *cli)
    assert first.returncode == 0 and first.stdout.strip() == "proposal fsar_p: item 1 ticked", first.stderr
    assert checklist(db_dsn) == ["risks/0"]
    again = run_cli("proposals", "tick", "fsar_p", "1", *cli)  # a script run twice
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "proposal fsar_p: item 1 was already ticked; nothing changed"
    assert checklist(db_dsn) == ["risks/0"]

    assert run_cli("proposals", "tick", "fsar_p", "3", "--reason", "done in #12", *cli).returncode == 0
    assert checklist(db_dsn) == ["mitigations/1", "risks/0"]
    shown = run_cli("proposals", "show", "fsar_p", *cli).stdout
    assert "1. [x] a risk" in shown and "2. [ ] a mitigation" in shown and "3. [x] another" in shown
    as_json = json.loads(run_cli("proposals", "show", "fsar_p", "--format", "json", *cli).stdout)
    assert as_json["ticked"] == [1, 3]

    off = run_cli("proposals", "untick", "fsar_p", "1", *cli)
    assert off.returncode == 0 and off.stdout.strip() == "proposal fsar_p: item 1 unticked", off.stderr
    off_again = run_cli("proposals", "untick", "fsar_p", "1", *cli)
    assert off_again.returncode == 0
    assert off_again.stdout.strip() == "proposal fsar_p: item 1 was not ticked; nothing changed"
    assert checklist(db_dsn) == ["mitigations/1"]

    # Each change logged once, saying ticked or unticked and the item's number from 1.
    assert log_rows(db_dsn) == [
        ("proposal.tick", "a risk", {"item": 1, "ticked": False}, {"item": 1, "ticked": True}),
        ("proposal.tick", "done in #12", {"item": 3, "ticked": False}, {"item": 3, "ticked": True}),
        ("proposal.untick", "a risk", {"item": 1, "ticked": True}, {"item": 1, "ticked": False}),
    ]


def test_a_number_that_names_no_item_is_one_line_exit_2_and_writes_nothing(db_dsn, run_cli, tmp_path):
    cli = ingested(db_dsn, run_cli, tmp_path)
    before = q(db_dsn, "SELECT count(*) FROM operator_actions")
    for command, item, needle in (
        ("tick", "0", "no checklist item 0: its items are numbered 1 to 3"),
        ("tick", "4", "no checklist item 4: its items are numbered 1 to 3"),
        ("untick", "4", "no checklist item 4"),
        ("tick", "-1", "no checklist item -1"),
        ("tick", "99999999999", "no checklist item 99999999999"),
        ("tick", "risks/0", "'risks/0' is not an item number"),
        ("tick", "one", "'one' is not an item number"),
    ):
        out = run_cli("proposals", command, "fsar_p", item, *cli)
        assert out.returncode == 2, (item, out.stdout, out.stderr)
        assert needle in out.stderr and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    missing = run_cli("proposals", "tick", "fsar_nope", "1", *cli)
    assert missing.returncode == 2 and "no proposal 'fsar_nope'" in missing.stderr
    assert checklist(db_dsn) == []
    assert q(db_dsn, "SELECT count(*) FROM operator_actions") == before


def refused(app) -> int:
    return sum("meanwhile by someone else; nothing changed" in str(n.message) for n in app._notifications)


async def test_the_screen_asks_for_the_opposite_of_what_it_shows(db_dsn):
    """Operator A's screen shows item 2 unticked; B ticks it; A presses space: A asked for
    'ticked', which already holds, so nothing changes (the old toggle unticked B's work)."""
    ingest(db_dsn, report("fsar_p"))
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, ProposalsScreen)
        assert await until(pilot, lambda: screen.current is not None and screen.current.row.id == "fsar_p")
        table = screen.query_one("#checklist")
        await pilot.press("tab", "tab")
        assert screen.focused is table
        table.move_cursor(row=1)
        assert await until(pilot, lambda: table.current_key == "mitigations/0")
        stale = screen.current
        with connect(db_dsn, autocommit=True) as conn:
            assert proposals.tick(conn, "fsar_p", 2, ticked=True, actor="operator-b")
        screen.current = stale  # what A's screen showed when A pressed the key (no refresh between)
        screen.action_tick()
        assert await until(pilot, lambda: refused(app) == 1)
        assert await until(pilot, lambda: table.get_row("mitigations/0")[1].plain == "2. [x]")
        # The other way round: A's screen shows it ticked, B unticks it, A's space unticks nothing.
        stale = screen.current
        with connect(db_dsn, autocommit=True) as conn:
            assert proposals.tick(conn, "fsar_p", 2, ticked=False, actor="operator-b")
        screen.current = stale
        screen.action_tick()
        assert await until(pilot, lambda: refused(app) == 2)
        assert await until(pilot, lambda: table.get_row("mitigations/0")[1].plain == "2. [ ]")
    assert checklist(db_dsn) == []
    assert [(r[0], r[3]) for r in log_rows(db_dsn)] == [
        ("proposal.tick", {"item": 2, "ticked": True}),
        ("proposal.untick", {"item": 2, "ticked": False}),
    ]
    assert q(db_dsn, "SELECT DISTINCT claimed_os_user FROM operator_actions WHERE action LIKE 'proposal.%tick'") == [
        ("operator-b",)
    ]


def function_state(dsn):
    with psycopg.connect(dsn) as conn:
        return {
            sig: conn.execute(
                "SELECT to_regprocedure(%s) IS NOT NULL, to_regprocedure(%s) IS NOT NULL "
                "AND has_function_privilege('fsar_operator', to_regprocedure(%s), 'EXECUTE')",
                (sig, sig, sig),
            ).fetchone()
            for sig in (OLD_TICK, NEW_TICK)
        }


def test_revision_0023_replaces_the_function_and_its_downgrade_restores_the_old_one(empty_dsn):
    migrate(empty_dsn)
    assert function_state(empty_dsn) == {OLD_TICK: (False, False), NEW_TICK: (True, True)}
    with psycopg.connect(empty_dsn) as conn:
        assert privileges.shipped_function_problems(conn, governance_functions.FUNCTIONS) == []

    downgrade(empty_dsn, "0022_attempt_history")
    assert function_state(empty_dsn) == {OLD_TICK: (True, True), NEW_TICK: (False, False)}
    with psycopg.connect(empty_dsn) as conn:
        # Revision 0020's text, SECURITY DEFINER, pinned search_path, no PUBLIC EXECUTE.
        assert privileges.shipped_function_problems(conn, [governance_functions.PROPOSAL_TICK_0020]) == []

    migrate(empty_dsn)
    assert function_state(empty_dsn) == {OLD_TICK: (False, False), NEW_TICK: (True, True)}
    with psycopg.connect(empty_dsn) as conn:
        assert privileges.shipped_function_problems(conn, governance_functions.FUNCTIONS) == []
