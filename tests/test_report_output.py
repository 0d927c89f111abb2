"""`fsar-tui report` output (issue 16, point 9): a report file never replaces another —
two runs in the same second keep two whole files — and each fraud flag's Markdown line
names the idea it is about (JSON and CSV carry it too). Real database, real HTTP receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fsar_tui import cli, clock
from support.sql import x
from test_fraud import charge, ledger
from test_report import http_receiver  # noqa: F401 (a fixture)

FROZEN = datetime(2026, 3, 2, 18, 0, 30, tzinfo=UTC)


@pytest.fixture
def frozen(monkeypatch, tmp_path):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def report(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_two_runs_in_the_same_second_keep_two_whole_files(db_dsn, frozen, capsys, http_receiver):  # noqa: F811
    hook, received = http_receiver
    x(db_dsn, "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold) "
              "VALUES ('g', 'failure_rate', '1 day', '<', 0.2)")  # fmt: skip
    runs = [report(capsys, "--dsn", db_dsn, "--webhook", hook) for _ in range(2)]
    assert [code for code, _, _ in runs] == [0, 0], runs
    name = "fsar-report-20260302T180030Z"
    assert sorted(p.name for p in frozen.iterdir()) == [f"{name}-2.md", f"{name}.md"]  # no temporary file left
    assert f"report written to {name}.md" in runs[0][2] and f"report written to {name}-2.md" in runs[1][2]
    for path in frozen.iterdir():  # each one whole: the report as rendered, to its last line
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# fsar-tui report 2026-02-24 .. 2026-03-02 (UTC)\n")
        assert text.endswith("## Open FSAR proposals\n\nNone.\n")
    assert len(received) == 2

    # An --out name that is taken is not replaced either.
    (frozen / "weekly.md").write_text("last week's\n", encoding="utf-8")
    code, _, err = report(capsys, "--dsn", db_dsn, "--out", "weekly.md")
    assert code == 0 and "report written to weekly-2.md" in err
    assert (frozen / "weekly.md").read_text(encoding="utf-8") == "last week's\n"
    assert (frozen / "weekly-2.md").read_text(encoding="utf-8").endswith("None.\n")
    code, _, err = report(capsys, "--dsn", db_dsn, "--out", "weekly.md", "--format", "json")
    assert code == 0 and "report written to weekly-3.md" in err
    assert (
        json.loads((frozen / "weekly-3.md").read_text(encoding="utf-8"))["generated_at"] == "2026-03-02T18:00:30+00:00"
    )

    # A name that cannot be written: one line, exit 2, nothing left behind.
    before = sorted(frozen.iterdir())
    code, _, err = report(capsys, "--dsn", db_dsn, "--out", "no/such/dir/r.md")
    assert code == 2 and err.count("\n") == 1 and "cannot write no/such/dir/r.md" in err
    code, _, err = report(capsys, "--dsn", db_dsn, "--out", ".")
    assert code == 2 and err.count("\n") == 1 and "cannot write ." in err
    assert sorted(frozen.iterdir()) == before


def test_each_fraud_flag_names_its_idea(db_dsn, capsys):
    # Today's entries (UTC): the report's period ends with today, at whatever hour it runs.
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # idea_disputed: 20 charges, 2 disputes (10 % > 1 %): a dispute-rate flag for it (and for all ideas).
    ledger(db_dsn, [charge(day + timedelta(hours=1, minutes=i), f"cus_{i}", "idea_disputed") for i in range(20)])
    ledger(
        db_dsn, [("dispute", day + timedelta(hours=3, minutes=i), f"cus_{i}", "idea_disputed", {}) for i in range(2)]
    )
    # cus_burst: 6 charges within an hour, for idea_burst (5) and none (1): a velocity flag.
    burst = [charge(day + timedelta(hours=5, minutes=5 * i), "cus_burst", "idea_burst") for i in range(5)]
    ledger(db_dsn, [*burst, charge(day + timedelta(hours=5, minutes=30), "cus_burst", None)])

    code, md, _ = report(capsys, "--dsn", db_dsn, "--period", "1d")
    assert code == 0
    section = md.split("## Fraud flags\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    by_rule: dict[str, list[str]] = {}
    for line in section:
        by_rule.setdefault(line.split(", ")[1].split(":")[0], []).append(line)
    assert sorted(by_rule) == ["dispute_rate", "velocity_customer"], section
    disputes = sorted(by_rule["dispute_rate"])
    assert disputes[0].startswith("- severity 3, dispute_rate, all ideas: 2 disputes / 26 charges")
    assert disputes[1].startswith("- severity 3, dispute_rate, idea idea\\_disputed: 2 disputes / 20 charges")
    (velocity,) = by_rule["velocity_customer"]
    assert velocity.startswith("- severity 1, velocity_customer, idea idea\\_burst (1 entries without one): 6 charges")

    code, out, _ = report(capsys, "--dsn", db_dsn, "--period", "1d", "--format", "json")
    flags = {(f["rule"], f["subject"]): f for f in json.loads(out)["fraud_flags"]}
    assert flags[("dispute_rate", "idea_disputed")]["ideas"] == ["idea_disputed"]
    assert flags[("dispute_rate", "all")]["all_ideas"] is True
    assert (flags[("velocity_customer", "cus_burst")]["ideas"], flags[("velocity_customer", "cus_burst")][
        "unattributed_entries"]) == (["idea_burst"], 1)  # fmt: skip

    code, out, _ = report(capsys, "--dsn", db_dsn, "--period", "1d", "--format", "csv")
    assert "fraud_flags,dispute_rate:idea_disputed,,ideas,idea idea_disputed" in out.splitlines()
