"""The canary judge at work: for each running canary, aggregate the step's window of both
revisions (db/canaries.arm_samples), add the gates scoped to the target as metrics, judge
(domain/canary_judge.judge), record the analysis, then act (domain/canary.next_move):
abort at once on a fail, promote a pass once the step has run its interval (unless the
canary is manual), hold otherwise — saying why.

Runs in the audit pass (services/audit_pass.py: one panel per database at a time, every
minute) and in `fsar-tui audit run`; `rollouts canary analyze` runs `analyse` alone, to
show, without recording or acting.

Cadence. The stated error rates (README, domain/canary_simulation.py) assume one look per
`look_every` new canary attempts: an analysis with fewer new canary attempts since the
step's last recorded one is skipped (the canary keeps its weight and its last judgement),
unless it would abort. A crash or a lost database anywhere in here changes nothing: the
weight moves only through fsar_canary_decide, after a complete judgement; the failure is
recorded as an 'error' analysis when the database still answers, and screen 4 says the
judgement is stale when no analysis arrives (domain/canary.staleness).

Gates. An enabled gate scoped to the target (`scope.rollout`) is measured over the step's
window twice — on the canary revision (its scope plus `canary`) and on the stable one —
and judged by its own condition: the canary failing where stable passes is a 'fail'
metric; the canary passing is a 'pass'; not enough data on either side is inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Connection

from fsar_tui import clock
from fsar_tui.db import canaries
from fsar_tui.db import gates as gate_reads
from fsar_tui.domain import canary as moves
from fsar_tui.domain.canary import Canary
from fsar_tui.domain.canary_judge import DEFAULT, ArmSample, JudgeConfig, Judgement, MetricJudgement, judge
from fsar_tui.errors import FsarError, first_line


@dataclass(frozen=True)
class Outcome:
    target: str
    canary_id: int
    verdict: str  # pass | fail | inconclusive | error | skipped
    action: str | None  # promote | abort | None
    detail: str  # the judgement's summary, why it held, or why it was skipped
    weight: int  # after this pass
    state: str  # after this pass


def analyse(conn: Connection, canary: Canary, now: datetime | None = None, config: JudgeConfig = DEFAULT) -> Judgement:
    """The judgement of `canary`'s current step as of `now` (nothing recorded)."""
    return _evidence(conn, canary, now or clock.now(), config)[0]


def _evidence(conn: Connection, canary: Canary, now: datetime, config: JudgeConfig) -> tuple[Judgement, ArmSample]:
    canary_arm, stable_arm = canaries.arm_samples(conn, canary, now)
    return judge(canary_arm, stable_arm, config, gate_metrics(conn, canary, now)), canary_arm


def gate_metrics(conn: Connection, canary: Canary, now: datetime) -> list[MetricJudgement]:
    from fsar_tui.domain.gates import judge as judge_gate
    from fsar_tui.services.gates import measure

    out = []
    for gate in gate_reads.load_gates(conn):
        if gate.scope.get("rollout") != canary.target or gate.metric == "broken_rollback_artifacts":
            continue
        on_canary = replace(gate, scope={**gate.scope, "canary": True})
        on_stable = replace(gate, scope={k: v for k, v in gate.scope.items() if k != "canary"})
        try:
            with conn.transaction():
                c = judge_gate(on_canary, measure(conn, on_canary, canary.step_started_at, now, now))
                s = judge_gate(on_stable, measure(conn, on_stable, canary.step_started_at, now, now))
        except (psycopg.Error, FsarError) as exc:
            why = exc.message if isinstance(exc, FsarError) else first_line(exc)
            out.append(MetricJudgement(f"gate:{gate.name}", "inconclusive", None, None, None, None, None, None, why))
            continue
        if c.verdict == "fail" and s.verdict != "fail":
            verdict, why = "fail", f"the canary fails gate {gate.name} ({gate.condition}); stable does not"
        elif c.verdict == "pass":
            verdict, why = "pass", f"the canary passes gate {gate.name} ({gate.condition})"
        else:
            verdict = "inconclusive"
            why = f"gate {gate.name}: canary {c.verdict}, stable {s.verdict}"
        out.append(MetricJudgement(f"gate:{gate.name}", verdict, c.value, s.value, None, None, None, None, why))
    return out


def judge_running(conn: Connection, now: datetime | None = None, config: JudgeConfig = DEFAULT) -> list[Outcome]:
    """One look at every running canary; acts on the verdicts. `conn`: autocommit."""
    now = now or clock.now()
    out = []
    for c in canaries.latest(conn, running_only=True):
        try:
            with conn.transaction():  # in a caller's transaction, a savepoint: a failure costs this canary only
                out.append(judge_one(conn, c, now, config))
        except psycopg.Error as exc:  # recording or deciding failed: nothing moved
            out.append(Outcome(c.target, c.id, "error", None, first_line(exc), c.weight, c.state))
    return out


def judge_one(conn: Connection, canary: Canary, now: datetime, config: JudgeConfig = DEFAULT) -> Outcome:
    try:
        judgement, canary_arm = _evidence(conn, canary, now, config)
    except (psycopg.Error, FsarError) as exc:
        why = exc.message if isinstance(exc, FsarError) else first_line(exc)
        hold = moves.next_move(
            "error",
            why=why,
            step_started_at=canary.step_started_at,
            interval_s=canary.interval_s,
            manual=canary.manual,
            now=now,
            weight=canary.weight,
        ).hold
        try:
            canaries.record(conn, canary, "error", None, {"error": why}, hold)
        except psycopg.Error:
            pass  # the database is away: nothing moved, and the screen's staleness says so
        return Outcome(canary.target, canary.id, "error", None, hold or why, canary.weight, canary.state)
    attempts = canary_arm.attempts
    last = canaries.last_look(conn, canary)  # counted by the database, not read from a judgement
    if judgement.verdict != "fail" and last is not None and attempts - last < config.look_every:
        detail = f"next look after {config.look_every - (attempts - last)} more canary attempts"
        return Outcome(canary.target, canary.id, "skipped", None, detail, canary.weight, canary.state)
    move = moves.next_move(
        judgement.verdict,
        why=judgement.summary,
        step_started_at=canary.step_started_at,
        interval_s=canary.interval_s,
        manual=canary.manual,
        now=now,
        weight=canary.weight,
    )
    data = {**moves.judgement_json(judgement), "canary_attempts": attempts, "at": now.isoformat()}
    if canaries.record(conn, canary, judgement.verdict, judgement.score, data, move.hold) is None:
        return Outcome(canary.target, canary.id, "skipped", None, "moved on meanwhile", canary.weight, canary.state)
    if move.action is None:
        return Outcome(canary.target, canary.id, judgement.verdict, None, move.hold or "", canary.weight, canary.state)
    reason = f"canary judge: {judgement.summary}"
    try:
        decided = canaries.decide(conn, canary, move.action, reason=reason, claimed=canaries.JUDGE_ACTOR, evidence=data)
    except FsarError as exc:  # an operator moved it first: theirs stands
        return Outcome(canary.target, canary.id, judgement.verdict, None, exc.message, canary.weight, canary.state)
    return Outcome(canary.target, canary.id, judgement.verdict, move.action, reason, decided.weight, decided.state)


def announce_outcomes(mqtt_url: str | None, outcomes: list[Outcome]) -> list[str]:
    """The retained control message of each abort or promotion (workers also get the
    database's NOTIFY); returns the problems, never raises."""
    if not mqtt_url:
        return []
    import asyncio

    from fsar_tui.live.mqtt import announce_canary

    problems = []
    for o in outcomes:
        if o.action is None:
            continue
        try:
            asyncio.run(announce_canary(mqtt_url, o.target, o.canary_id, o.state, o.weight, o.detail))
        except Exception as exc:  # the database is the truth
            problems.append(f"{o.target}: the MQTT control message failed: {type(exc).__name__}")
    return problems


def outcome_json(o: Outcome) -> dict[str, Any]:
    return o.__dict__.copy()
