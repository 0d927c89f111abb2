"""Did the self-improvement pay? (issue 19): before/after evidence for an implemented
proposal and a deployed revision, against a real database — a task type whose failure
rate halved and run time dropped ("helped"), one whose failures doubled ("hurt"), one
whose after window has barely started, and one whose raw tasks retention archived —
as screen 5 and `proposals show` print it; plus the pure parts (windows, Student t,
the comparison's symmetry and words)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from statistics import NormalDist

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.db import before_after as reads
from fsar_tui.db import proposals
from fsar_tui.db.connect import connect
from fsar_tui.domain import before_after as ba
from fsar_tui.domain.before_after_text import lines, to_json
from fsar_tui.domain.fsar_report import parse_report
from fsar_tui.domain.histogram import histogram_of
from fsar_tui.screens.proposals import ProposalsScreen
from support.pilot import make_app, until
from support.sql import x
from test_proposals import report

DAY = timedelta(days=1)
NOW = datetime.now(UTC)
MIDNIGHT = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
CHANGED = MIDNIGHT - 9 * DAY + timedelta(hours=10)  # before: −16 d … −9 d; after: −8 d … −1 d (complete)
RECENT = NOW - timedelta(hours=36)  # after window: from the midnight after this one, partly over

TASKS_SQL = """
    INSERT INTO execution_tasks (task_type, ai_model, idea_id, status, attempt, queued_at, started_at, finished_at,
                                 cost_minor, compute_cost_minor, currency)
    SELECT %(type)s, CASE WHEN i %% 2 = 0 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END, %(idea)s,
           CASE WHEN i %% %(fail)s = 0 THEN 'failed' ELSE 'succeeded' END, 1,
           t.f - t.run - interval '5 seconds', t.f - t.run, t.f, 100 + (i * 13) %% 50, 10, 'USD'
    FROM generate_series(0, %(days)s - 1) d, generate_series(0, %(n)s - 1) i,
         LATERAL (SELECT %(start)s::timestamptz + d * interval '1 day' + (i + 0.5) * interval '850 seconds' AS f,
                         make_interval(secs => %(run)s * (1 + ((i * 37) %% 100) / 100.0)) AS run) t"""
REVENUE_SQL = """
    INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id)
    SELECT 'test', %(idea)s || '-' || %(start)s::text || '-' || d, 'revenue',
           %(amount)s + (d * 577) %% 1000 - 500, 'USD',
           %(start)s::timestamptz + d * interval '1 day' + interval '12 hours', %(idea)s
    FROM generate_series(0, %(days)s - 1) d"""


def window(dsn, task_type, start, *, fail_every, run_s, per_day=100, days=7):
    """`days` days from `start` of `per_day` tasks of a type: one in `fail_every` fails,
    run times spread over run_s…2·run_s; its idea earns 200 a success a day (± noise)."""
    idea = f"idea_{task_type}"
    params = {"type": task_type, "idea": idea, "fail": fail_every, "days": days, "n": per_day, "start": start}
    x(dsn, TASKS_SQL, {**params, "run": run_s})
    amount = round(per_day * (1 - 1 / fail_every)) * 200
    x(dsn, REVENUE_SQL, {"idea": idea, "start": start, "days": days, "amount": amount})


# A decision logged at `at`, chain intact: the chain trigger stamps clock_timestamp(), so
# the row is written as it would have (its seq, hash and the head) with the triggers off.
PLANT_SQL = """
    WITH head AS (SELECT seq + 1 AS seq, hash AS prev FROM operator_log_head),
    j AS (SELECT '{"status": "accepted"}'::jsonb AS b, '{"status": "implemented"}'::jsonb AS a),
    ins AS (
        INSERT INTO operator_actions (seq, prev_hash, at, actor, claimed_os_user, db_role, action, target, reason,
                                      before, after, hash)
        SELECT h.seq, h.prev, %(at)s, session_user, 't', session_user, 'proposal.implemented', %(target)s, 'shipped',
               j.b, j.a, fsar_operator_actions_hash(h.prev, h.seq, %(at)s, session_user, 't', session_user,
                                                    'proposal.implemented', %(target)s, 'shipped', j.b, j.a, NULL)
        FROM head h, j RETURNING seq, hash, at)
    UPDATE operator_log_head SET seq = ins.seq, hash = ins.hash, at = ins.at FROM ins"""


def implemented(dsn, proposal_id, task_type, at, severity=5):
    with connect(dsn, autocommit=True) as conn:
        proposals.ingest(
            conn, [parse_report(report(proposal_id, severity=severity, task_type=task_type), "t")], actor="t"
        )
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("UPDATE fsar_proposals SET status = 'implemented' WHERE id = %s", (proposal_id,))
            conn.execute(PLANT_SQL, {"at": at, "target": f"proposal:{proposal_id}"})


@pytest.fixture
def changes_db(db_dsn):
    before, after = MIDNIGHT - 16 * DAY, MIDNIGHT - 8 * DAY
    window(db_dsn, "self_improvement", before, fail_every=5, run_s=30)  # 20 % fail, 30–60 s
    window(db_dsn, "self_improvement", after, fail_every=10, run_s=20)  # 10 %, 20–40 s: helped
    window(db_dsn, "implement_idea", before, fail_every=10, run_s=20)
    window(db_dsn, "implement_idea", after, fail_every=5, run_s=30)  # failures doubled: hurt
    implemented(db_dsn, "fsar_helped", "self_improvement", CHANGED, severity=9)
    implemented(db_dsn, "fsar_hurt", "implement_idea", CHANGED, severity=8)
    recent_before = RECENT.replace(hour=0, minute=0, second=0, microsecond=0) - 7 * DAY
    window(db_dsn, "idea_implementation", recent_before, fail_every=5, run_s=30)
    window(db_dsn, "idea_implementation", recent_before + 8 * DAY, fail_every=5, run_s=30, per_day=20, days=1)
    implemented(db_dsn, "fsar_recent", "idea_implementation", RECENT)
    with connect(db_dsn, autocommit=True) as conn:
        proposals.ingest(conn, [parse_report(report("fsar_new", severity=1), "t")], actor="t")
    return db_dsn


def by_metric(evidence):
    return {c.metric: c for c in evidence.comparisons}


def read(dsn, proposal_id):
    with connect(dsn) as conn:
        return reads.proposal_evidence_sync(conn, proposal_id, datetime.now(UTC))


def test_a_change_that_helped_and_one_that_hurt(changes_db):
    helped, hurt = read(changes_db, "fsar_helped"), read(changes_db, "fsar_hurt")
    assert helped.verdict == "helped" and hurt.verdict == "hurt", (helped.summary, hurt.summary)
    assert helped.counts == ((700, 140), (700, 70)) and hurt.counts == ((700, 70), (700, 140))
    w = helped.windows
    assert (w.before_start, w.before_end, w.after_start, w.after_end) == (
        MIDNIGHT - 16 * DAY,
        MIDNIGHT - 9 * DAY,
        MIDNIGHT - 8 * DAY,
        MIDNIGHT - DAY,
    )
    good, bad = by_metric(helped), by_metric(hurt)
    # Failure rate halved / doubled: the ratio and its whole interval on the right side of 1.
    assert good["failure_rate"].effect == pytest.approx(0.5, rel=0.01) and good["failure_rate"].ci[1] < 1
    assert bad["failure_rate"].effect == pytest.approx(2.0, rel=0.01) and bad["failure_rate"].ci[0] > 1
    assert (good["failure_rate"].before, good["failure_rate"].after) == pytest.approx((0.2, 0.1))
    # Run time: p90 ~58 s → ~39 s (the 20–40 s spread); the shift's interval below 1.
    assert good["run_time"].before == pytest.approx(58_000, rel=0.03)
    assert good["run_time"].after == pytest.approx(38_700, rel=0.03)
    assert good["run_time"].ci[1] < 1 < bad["run_time"].ci[0]
    # Cost per success (raw tasks): the same cost a task, more or fewer successes.
    assert good["cost_per_success"].moved == "better" and bad["cost_per_success"].moved == "worse"
    assert good["cost_per_success"].effect == pytest.approx(560 / 630, rel=0.01)
    # ROI (USD): revenue follows successes, cost does not.
    assert good["roi"].label == "ROI USD" and good["roi"].moved == "better" and good["roi"].ci[0] > 0
    assert bad["roi"].moved == "worse" and bad["roi"].ci[1] < 0
    assert all(c.needed is None for c in (*helped.comparisons, *hurt.comparisons))
    assert helped.summary.startswith("helped: better on failure rate ×0.50, p90 run time ×0.6")
    assert hurt.summary.startswith("hurt: worse on failure rate ×2.00")


def test_proposals_show_prints_the_evidence_and_json_carries_it(changes_db, run_cli):
    out = run_cli("proposals", "show", "fsar_helped", "--dsn", changes_db)
    assert out.returncode == 0, out.stderr
    text = out.stdout[out.stdout.index("Evidence: before/after") :]
    assert text.startswith("Evidence: before/after · self_improvement · proposal fsar_helped\n")
    assert "  before " in text and "700 finished, 140 failed" in text and "700 finished, 70 failed" in text
    assert "  failure rate  20.0 % → 10.0 %  ×0.50 (CI ×0." in text
    assert "  verdict: helped: better on failure rate ×0.50" in text
    assert "also changed" not in text  # fsar_hurt changed another type
    data = json.loads(run_cli("proposals", "show", "fsar_hurt", "--dsn", changes_db, "--format", "json").stdout)
    ev = data["evidence"]
    assert ev["verdict"] == "hurt" and ev["task_type"] == "implement_idea" and ev["level"] == 0.9875
    assert ev["windows"]["after_complete"] is True and ev["before"] == {"finished": 700, "failed": 70}
    fr = next(m for m in ev["metrics"] if m["metric"] == "failure_rate")
    assert fr["moved"] == "worse" and fr["effect"] == pytest.approx(2.0, rel=0.01) and fr["ci"][0] > 1
    assert [m["metric"] for m in ev["metrics"]] == ["failure_rate", "run_time", "cost_per_success", "roi"]
    new = json.loads(run_cli("proposals", "show", "fsar_new", "--dsn", changes_db, "--format", "json").stdout)
    assert new["evidence"] is None
    assert "Evidence" not in run_cli("proposals", "show", "fsar_new", "--dsn", changes_db).stdout


def test_an_after_window_still_filling_says_what_it_needs(changes_db):
    e = read(changes_db, "fsar_recent")
    assert e.verdict == "too little data" and not e.windows.complete
    assert 0 < e.windows.after_days < 2 and e.counts[1] == (20, 4)
    fr = by_metric(e)["failure_rate"]
    assert fr.moved == "too little data" and fr.needed == ba.MIN_SAMPLES - 20
    assert (fr.before, fr.after) == pytest.approx((0.2, 0.2))
    shown = "\n".join(lines(e))
    assert f"of {ba.WINDOW_DAYS} days" in e.summary and "so far" in shown
    assert f"~{ba.MIN_SAMPLES - 20} more finished tasks after, ~" in shown  # and how many days at this pace
    assert "too few days" in by_metric(e)["roi"].why


def test_archived_raw_tasks_say_history_archived_and_the_rollups_still_judge(changes_db):
    x(
        changes_db,
        "INSERT INTO retention_log (action, table_name, partition, lower_bound, upper_bound, rows, sha256, newest_at) "
        "VALUES ('dropped', 'execution_tasks', 'execution_tasks_p0', NULL, '1', 10, 'abc', %s)",
        (MIDNIGHT - 15 * DAY,),
    )
    e = read(changes_db, "fsar_helped")
    m = by_metric(e)
    assert m["cost_per_success"].moved == "history archived" and m["cost_per_success"].effect is None
    assert "retention restore" in m["cost_per_success"].why
    assert m["failure_rate"].moved == "better" and m["run_time"].moved == "better" and e.verdict == "helped"


def test_a_deployed_revision_is_judged_around_its_activation(changes_db):
    x(changes_db, "INSERT INTO rollouts (target, kind, task_type) VALUES ('prompt-main', 'prompt', 'implement_idea')")
    x(
        changes_db,
        "INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256, created_at) "
        "SELECT id, 1, '{}', repeat('a', 64), %s FROM rollouts WHERE target = 'prompt-main'",
        (CHANGED + timedelta(hours=1),),
    )
    with connect(changes_db) as conn:
        e = reads.revision_evidence_sync(conn, "prompt-main", 1, datetime.now(UTC))
        with pytest.raises(Exception, match="no revision 2 of rollout target"):
            reads.revision_evidence_sync(conn, "prompt-main", 2, datetime.now(UTC))
        any_change = reads.evidence_sync(conn, "implement_idea", CHANGED, datetime.now(UTC))
    assert e.subject == "revision 1 of prompt-main" and e.verdict == "hurt"
    assert ("proposal fsar_hurt", CHANGED) in e.other_changes
    assert any_change.verdict == "hurt" and by_metric(any_change)["failure_rate"].ci[0] > 1
    assert "revision 1 of prompt-main" in [w for w, _ in read(changes_db, "fsar_hurt").other_changes]


def evidence_text(app) -> str:
    return app.screen.query_one("#evidence").content.plain


async def test_screen_5_shows_the_evidence_of_an_implemented_proposal_only(changes_db):
    app = make_app(changes_db)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("5")
        assert isinstance(app.screen, ProposalsScreen)
        assert await until(pilot, lambda: app.screen.current is not None and app.screen.current.row.id == "fsar_helped")
        assert await until(pilot, lambda: app.screen.query_one("#evidence").display, tries=400)
        shown = evidence_text(app)
        assert shown.startswith("Evidence: before/after · self_improvement · proposal fsar_helped")
        assert "failure rate  20.0 % → 10.0 %  ×0.50" in shown and "verdict: helped" in shown
        assert any(span.style == "bold green" for span in app.screen.query_one("#evidence").content.spans)
        await pilot.press("j")  # fsar_hurt
        assert await until(pilot, lambda: "verdict: hurt" in evidence_text(app), tries=400)
        assert "worse on failure rate ×2.00" in evidence_text(app)
        app.screen.query_one("#proposals").move_cursor(row=3)  # fsar_new: not implemented
        assert await until(pilot, lambda: app.screen.current.row.id == "fsar_new")
        assert await until(pilot, lambda: not app.screen.query_one("#evidence").display)
        assert app.screen.problems == {}


# -- the pure parts --------------------------------------------------------------------------

T0 = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


def test_windows_leave_the_change_day_out_and_stop_at_now():
    w = ba.windows(T0, T0 + 30 * DAY)
    assert (w.before_start, w.before_end) == (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
    assert (w.after_start, w.after_end) == (datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
    assert w.complete and len(w.day_list(False)) == len(w.day_list(True)) == 7
    assert ba.windows(T0.astimezone(timezone(timedelta(hours=-10))), T0 + 30 * DAY) == w  # UTC days, whatever zone
    early = ba.windows(T0, datetime(2026, 11, 18, 6, tzinfo=UTC))
    assert not early.complete and early.after_days == 1.25 and len(early.day_list(True)) == 2
    none_yet = ba.windows(T0, T0 + timedelta(hours=2))
    assert none_yet.after_end == none_yet.after_start
    canary = ba.windows(T0, T0 + 30 * DAY, settled_at=T0 + 2 * DAY)  # from the canary's start to its promotion
    assert canary.before_end == w.before_end and canary.after_start == w.after_start + 2 * DAY


@given(
    changed=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
    days=st.integers(1, 31),
)
def test_windows_invariants(changed, later, days):
    w = ba.windows(changed, changed + later, days)
    assert w.before_end - w.before_start == days * DAY and w.before_end <= changed < w.after_start
    assert w.after_start <= w.after_end <= min(max(changed + later, w.after_start), w.after_start + days * DAY)
    assert w.after_start - w.before_end == DAY and w.complete == (w.after_end == w.after_start + days * DAY)


def test_student_t_matches_the_tables():
    for p, df, table in ((0.975, 10, 2.228), (0.95, 5, 2.015), (0.975, 1, 12.706), (0.995, 30, 2.750)):
        assert ba.t_quantile(p, df) == pytest.approx(table, abs=5e-4)
    assert ba.t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError):
        ba.t_quantile(0.4, 3)


@given(p=st.floats(0.5, 0.9999), df=st.floats(0.5, 1e4))
@settings(max_examples=200)
def test_student_t_is_wider_than_the_normal_and_inverts_its_tail(p, df):
    t = ba.t_quantile(p, df)
    assert t >= NormalDist().inv_cdf(p) - 1e-9
    # The quantile is found by bisection on the tail, whose continued fraction switches
    # branch near t = 0 with a jump of up to ~3e-7 at large df (hypothesis found 2.7e-7):
    # the tail probability within 1e-6 — a CI bound's level to six places.
    assert ba.t_upper(t, df) == pytest.approx(1 - p, abs=1e-6)


def arm(n, fail, scale, cost=100, days=7, revenue=None, archived=False):
    ok = n - round(n * fail)
    hist = histogram_of(scale * (1 + (i * 37 % 100) / 100) for i in range(ok))
    costs = [Decimal(cost + i * 13 % 50) for i in range(n)]
    moments = ba.CostMoments("USD", n, ok, sum(costs), sum(c * c for c in costs), sum(costs[:ok]))
    rev = ok * 200 / days if revenue is None else revenue
    money = {"USD": [(sum(costs) / days, Decimal(rev + (d * 577) % 1000 - 500)) for d in range(days)]}
    return ba.Arm(ok, n - ok, hist, None if archived else [moments], money)


W = ba.windows(T0, T0 + 30 * DAY)


@given(n=st.integers(40, 3000), fb=st.floats(0.02, 0.5), fa=st.floats(0.02, 0.5), scale=st.floats(0.5, 3))
@settings(max_examples=40, deadline=None)
def test_swapping_the_windows_inverts_every_effect(n, fb, fa, scale):
    before, after = arm(n, fb, 20_000), arm(n, fa, 20_000 * scale)
    there, back = (by_metric(ba.compare("s", "t", W, b, a)) for b, a in ((before, after), (after, before)))
    flip = {"better": "worse", "worse": "better", "no clear change": "no clear change"}
    for metric in ("failure_rate", "cost_per_success"):
        assert there[metric].effect * back[metric].effect == pytest.approx(1, rel=1e-9)
        assert there[metric].moved == flip[back[metric].moved]
    assert there["roi"].effect == pytest.approx(-back["roi"].effect, abs=1e-6)
    for c in there.values():
        if c.ci is not None:
            lo, hi = c.ci
            assert lo <= c.effect <= hi


def test_the_words_are_inert_and_the_json_has_no_infinity():
    hostile = "self\x1b]52;c;cGF5\x07_improvement\x1b[31m [bold]x[/]"
    e = ba.compare("proposal \x1b[2Jevil", hostile, W, arm(500, 0.2, 30_000), arm(25, 0.1, 20_000, days=2))
    text = "\n".join(lines(e))
    assert "\x1b" not in text and "cGF5" not in text and "[bold]x[/]" in text
    assert "too little data" in text and "(more after data" not in text
    assert f"~{ba.MIN_SAMPLES - 25} more finished tasks would tell (the windows are full)" in text
    data = to_json(e)
    json.dumps(data, allow_nan=False)
    assert data["verdict"] == "too little data" and data["windows"]["after_complete"] is True
    archived = ba.compare("s", "t", W, arm(700, 0.2, 30_000, archived=True), arm(700, 0.1, 20_000, archived=True))
    assert by_metric(archived)["cost_per_success"].moved == "history archived" and archived.verdict == "helped"
    assert ba.unavailable("s", None, "why").verdict == "not available"
    assert lines(ba.unavailable("s", None, "why")) == [
        "Evidence: before/after · every task type · s",
        "  not available: why",
    ]
