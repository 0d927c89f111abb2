"""FSAR proposals against a real database and broker: ingestion (all or nothing,
idempotent, conflicts), decisions with reasons, blocks honoured by the real simulator,
live ingestion from MQTT."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fsar_tui.domain.fsar_report import parse_report
from fsar_tui.live.mqtt import parse_mqtt_url
from fsar_tui.live.proposal_feed import PROPOSALS_TOPIC, follow_proposals
from fsar_tui.sim.seed import SEED_REPORT
from support.sql import q, x
from test_gates import queued, sim

SEED_ID = "fsar_c0a1af7c-eef0-473b-9af3-11ec5f9b2b4a"


def seed_text() -> str:
    return SEED_REPORT.read_text(
        encoding="utf-8"
    )  # the packaged copy of ../shared/seeds (checked verbatim in test_fsar_report)


def report(id_: str, *, severity=5, block="false", task_type="implement_idea", body_extra="") -> str:
    return (
        f"# FSAR Proposal Report\n- id: {id_}\n- timestamp: 2026-11-20T10:00:00+01:00\n- severity: {severity}\n"
        f"- block_execution: {block}\n- proposal:\n\n{task_type}: do the thing{body_extra}\n\n"
        "### 1. **First**\nText.\n\n## Risks\n- a risk\n\n## Mitigations\n- a mitigation\n- another\n"
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def stored(dsn):
    return q(dsn, "SELECT id, source_sha256 FROM fsar_proposals ORDER BY id")


def test_the_example_report_ingests_with_every_field_right(db_dsn, run_cli, tmp_path):
    path = write(tmp_path, "seed.txt", seed_text())
    out = run_cli("ingest-fsar", str(path), "--dsn", db_dsn)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ingested 1, unchanged 0"
    (row,) = q(
        db_dsn,
        "SELECT id, reported_at, severity, block_execution, block_lifted_at, task_type, body, risks, "
        "mitigations, extra_headers, status, source_sha256 FROM fsar_proposals",
    )
    (id_, at, severity, block, lifted, task_type, body, risks, mitigations, extra, status, sha) = row
    assert id_ == SEED_ID
    assert at == datetime(2026, 1, 2, 13, 18, 7, 564000, tzinfo=UTC)
    assert (severity, block, lifted, task_type, status, extra) == (6, False, None, "self_improvement", "new", {})
    assert body.startswith("self_improvement:  To address the issues identified")
    assert body.endswith("while maintaining a robust ethical framework.")
    assert "### 5. **Streamlining Monetization Flows**" in body and "## Risks" not in body
    assert risks == [
        "Slow failure: unnoticed degradation accumulating by 2028-01-02",
        "Unintended consequence: incentives shift toward short-term metrics, long-term reliability decays",
        "Incentive drift: stakeholders habituate to optimistic outputs, raising risk of silent defects",
    ]
    assert mitigations == [
        "Add scheduled adversarial audits with hard pass/fail gates",
        "Track leading indicators for drift and trust inflation; alert on trend change",
        "Prefer reversible rollouts; keep rollback artifacts warm and tested",
    ]
    normalised = seed_text().lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    assert sha == hashlib.sha256((normalised + "\n").encode()).hexdigest()  # one final newline counts
    assert q(db_dsn, "SELECT action, target FROM operator_actions") == [("proposal.ingest", f"proposal:{SEED_ID}")]

    # Re-ingesting (here with CRLF line endings and a BOM: the same report) is a no-op.
    again = write(tmp_path, "again.txt", "\ufeff" + normalised.replace("\n", "\r\n"))
    out = run_cli("ingest-fsar", str(again), "--dsn", db_dsn)
    assert out.returncode == 0 and out.stdout.strip() == "ingested 0, unchanged 1", out.stderr
    assert len(q(db_dsn, "SELECT 1 FROM operator_actions")) == 1


def test_a_batch_is_all_or_nothing(db_dsn, run_cli, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    write(folder, "a.txt", report("fsar_a"))
    write(folder, "b.txt", report("fsar_b", severity=11))  # line 4: severity out of range
    write(folder, ".hidden", "not a report")
    out = run_cli("ingest-fsar", str(folder), "--dsn", db_dsn)
    assert out.returncode == 1
    assert f"{folder / 'b.txt'}:4:" in out.stderr and "nothing stored" in out.stderr
    assert "Traceback" not in out.stderr
    assert stored(db_dsn) == []

    write(folder, "b.txt", report("fsar_b", severity=9, block="true"))
    out = run_cli("ingest-fsar", str(folder), "--dsn", db_dsn)
    assert out.returncode == 0 and out.stdout.strip() == "ingested 2, unchanged 0", out.stderr
    before = stored(db_dsn)

    # The same id with other content: a conflict, reported; the batch (with a new report) stores nothing.
    changed = write(tmp_path, "changed.txt", report("fsar_a", body_extra=" differently"))
    new = write(tmp_path, "new.txt", report("fsar_c"))
    out = run_cli("ingest-fsar", str(new), str(changed), "--dsn", db_dsn)
    assert out.returncode == 1
    assert (
        "conflicting" in out.stderr and "fsar_a: stored with sha256" in out.stderr and "not overwritten" in out.stderr
    )
    assert stored(db_dsn) == before

    # Standard input; a missing path is a usage error.
    out = run_cli("ingest-fsar", "-", "--dsn", db_dsn, input=report("fsar_stdin"))
    assert out.returncode == 0 and out.stdout.strip() == "ingested 1, unchanged 0", out.stderr
    missing = run_cli("ingest-fsar", str(tmp_path / "nope.txt"), "--dsn", db_dsn)
    assert missing.returncode == 2 and "no such file" in missing.stderr and missing.stderr.count("\n") == 1


BAD_INPUTS = {  # name: (how the good report is broken, the line the error names, a phrase of the reason)
    "missing field": (lambda t: t.replace("- severity: 5\n", ""), 5, "missing header 'severity'"),
    "severity out of range": (lambda t: t.replace("- severity: 5", "- severity: 11"), 4, "0 to 10"),
    "timestamp without zone": (lambda t: t.replace("10:00:00+01:00", "10:00:00"), 3, "no time zone"),
    "block_execution not a bool": (
        lambda t: t.replace("block_execution: false", "block_execution: yes"),
        5,
        "block_execution",
    ),
    "duplicate key": (
        lambda t: t.replace("- severity: 5\n", "- severity: 5\n- severity: 6\n"),
        5,
        "duplicate header 'severity' (first on line 4)",
    ),
    "body over 1 MiB": (lambda t: t.replace("do the thing", "do the thing " + "x" * (1024 * 1024)), 6, "1 MiB"),
    "escape sequence": (lambda t: t.replace("do the thing", "do \x1b[2J the thing"), 8, "U+001B"),
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_each_bad_input_fails_the_whole_batch_with_file_and_line(kind, db_dsn, run_cli, tmp_path):
    breaks, line, phrase = BAD_INPUTS[kind]
    good = write(tmp_path, "good.txt", report("fsar_good"))
    bad = write(tmp_path, "bad.txt", breaks(report("fsar_bad")))
    out = run_cli("ingest-fsar", str(good), str(bad), "--dsn", db_dsn)
    assert out.returncode == 1, out.stdout
    first = out.stderr.splitlines()[0]
    assert first.startswith(f"fsar-tui: {bad}:{line}: ") and phrase in first, first
    assert "Traceback" not in out.stderr and "\x1b" not in out.stderr
    assert stored(db_dsn) == [] and q(db_dsn, "SELECT count(*) FROM operator_actions") == [(0,)]


def test_oversized_and_escaped_reports_fail_with_file_and_line(db_dsn, run_cli, tmp_path):
    big = write(tmp_path, "big.txt", report("fsar_big", body_extra=" " + "x" * (1024 * 1024 + 10)))
    escaped = write(tmp_path, "esc.txt", report("fsar_esc", body_extra="\n\x1b]52;c;cGF5bG9hZA==\x07 and \x1b[31mred"))
    out = run_cli("ingest-fsar", str(big), str(escaped), "--dsn", db_dsn)
    assert out.returncode == 1
    assert f"{big}:6: " in out.stderr and "1 MiB" in out.stderr
    assert f"{escaped}:9: " in out.stderr and "U+001B" in out.stderr
    assert "\x1b" not in out.stderr  # the error names the character, never echoes it
    assert stored(db_dsn) == []


def test_decisions_need_a_reason_check_the_state_and_are_logged(db_dsn, run_cli, tmp_path):
    run_cli("ingest-fsar", str(write(tmp_path, "p.txt", report("fsar_p", block="true"))), "--dsn", db_dsn)
    cli = ("--dsn", db_dsn)
    assert run_cli("proposals", "accept", "fsar_p", *cli).returncode == 2  # no reason
    stale = run_cli("proposals", "accept", "fsar_p", "--reason", "ok", "--expect", "accepted", *cli)
    assert stale.returncode == 1 and "is now new, not accepted" in stale.stderr
    assert run_cli("proposals", "accept", "fsar_p", "--reason", "sound analysis", *cli).returncode == 0
    again = run_cli("proposals", "accept", "fsar_p", "--reason", "twice", *cli)
    assert again.returncode == 1 and "accept applies to new" in again.stderr
    assert q(db_dsn, "SELECT ref FROM execution_blocks WHERE source = 'proposal'") == [("fsar_p",)]
    lifted = run_cli("proposals", "lift", "fsar_p", "--reason", "fix deployed behind a flag", *cli)
    assert lifted.returncode == 0, lifted.stderr
    assert q(db_dsn, "SELECT ref FROM execution_blocks WHERE source = 'proposal'") == []
    twice = run_cli("proposals", "lift", "fsar_p", "--reason", "again", *cli)
    assert twice.returncode == 1 and "already lifted" in twice.stderr and "proposal.lift_block by" in twice.stderr
    assert run_cli("proposals", "implemented", "fsar_p", "--reason", "shipped in v9", *cli).returncode == 0
    assert run_cli("proposals", "reject", "nope", "--reason", "x", *cli).returncode == 2
    assert q(
        db_dsn,
        "SELECT action, reason, before, after FROM operator_actions WHERE action NOT IN "
        "('proposal.ingest', 'proposal.tick') ORDER BY seq",
    ) == [
        ("proposal.accept", "sound analysis", {"status": "new"}, {"status": "accepted"}),
        ("proposal.lift_block", "fix deployed behind a flag", {"blocking": True}, {"blocking": False}),
        ("proposal.implemented", "shipped in v9", {"status": "accepted"}, {"status": "implemented"}),
    ]
    ticked = run_cli("proposals", "tick", "fsar_p", "3", *cli)  # one risk, then two mitigations
    assert ticked.returncode == 0 and "item 3 ticked" in ticked.stdout, ticked.stderr
    assert q(db_dsn, "SELECT checklist ? 'mitigations/1' FROM fsar_proposals") == [(True,)]
    assert run_cli("proposals", "tick", "fsar_p", "4", *cli).returncode == 2  # there are three
    shown = run_cli("proposals", "show", "fsar_p", *cli)
    assert "3. [x] another" in shown.stdout and "2. [ ] a mitigation" in shown.stdout
    listing = run_cli("proposals", "list", *cli)
    assert listing.returncode == 0 and "implemented" in listing.stdout and "lifted" in listing.stdout


def test_a_blocking_proposal_stops_its_task_type_in_the_real_simulator(db_dsn, run_cli, isolated_env, tmp_path):
    path = write(tmp_path, "block.txt", report("fsar_stop", severity=9, block="true", task_type="self_improvement"))
    assert run_cli("ingest-fsar", str(path), "--dsn", db_dsn).returncode == 0
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT t, 'gpt-4o' FROM "
        "(VALUES ('self_improvement'), ('implement_idea')) v(t), generate_series(1, 3)",
    )
    out = sim(db_dsn, isolated_env, "--duration", "4")
    assert out.returncode == 0, out.stderr
    assert queued(db_dsn) == {"self_improvement": 3}  # the other type ran; the blocked one waited
    assert run_cli("proposals", "lift", "fsar_stop", "--reason", "reviewed", "--dsn", db_dsn).returncode == 0
    out = sim(db_dsn, isolated_env, "--until-idle")
    assert out.returncode == 0, out.stderr
    assert queued(db_dsn) == {}


def test_show_redacts_by_the_configured_policy(db_dsn, run_cli, tmp_path):
    body = "\nContact ops@example.com, badge EMP-123456, key sk-live_abcdefghijklmnop1234."
    run_cli("ingest-fsar", str(write(tmp_path, "p.txt", report("fsar_pii", body_extra=body))), "--dsn", db_dsn)
    config = write(tmp_path, "config.toml", '[redaction]\n[redaction.patterns]\nemployee_id = "EMP-[0-9]{6}"\n')
    out = run_cli("proposals", "show", "fsar_pii", "--config", str(config), "--dsn", db_dsn)
    assert out.returncode == 0, out.stderr
    assert "[REDACTED:email]" in out.stdout and "[REDACTED:employee_id]" in out.stdout
    assert "ops@example.com" not in out.stdout and "EMP-123456" not in out.stdout and "sk-live" not in out.stdout
    # The same report as JSON: the same policy.
    out = run_cli("proposals", "show", "fsar_pii", "--format", "json", "--config", str(config), "--dsn", db_dsn)
    assert "EMP-123456" not in out.stdout and "[REDACTED:employee_id]" in out.stdout
    bad = write(tmp_path, "bad.toml", '[redaction]\ndetectors = ["email", "telepathy"]\n')
    out = run_cli("proposals", "list", "--config", str(bad), "--dsn", db_dsn)
    assert out.returncode == 2 and "unknown telepathy" in out.stderr


async def test_reports_published_on_mqtt_are_ingested_live(db_dsn, mqtt_url):
    outcomes: list[tuple[str, bool]] = []
    subscribed = asyncio.Event()
    feed = asyncio.create_task(
        follow_proposals(
            mqtt_url, db_dsn, lambda m, ok: outcomes.append((m, ok)), statement_timeout_ms=5000, subscribed=subscribed
        )
    )
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        async with parse_mqtt_url(mqtt_url).client() as client:
            await client.publish(PROPOSALS_TOPIC, seed_text().encode(), qos=1)
            await client.publish(PROPOSALS_TOPIC, seed_text().encode(), qos=1)  # again: a no-op
            await client.publish(PROPOSALS_TOPIC, b"# FSAR Proposal Report\n- id: x\n", qos=1)
        for _ in range(200):
            if len(outcomes) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        feed.cancel()
    assert [ok for _, ok in outcomes] == [True, True, False], outcomes
    assert outcomes[0][0] == f"ingested {SEED_ID} (severity 6)"
    assert "already stored" in outcomes[1][0]
    assert outcomes[2][0].startswith("rejected: mqtt:fsar/v1/proposals:")
    assert stored(db_dsn) == [(SEED_ID, parse_report(seed_text()).sha256)]
    assert q(db_dsn, "SELECT claimed_os_user FROM operator_actions") == [("mqtt-ingest",)]
