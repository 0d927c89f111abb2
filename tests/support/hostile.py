"""The hostile fixture: a seeded database whose every agent-written column, and every
table an operator may write, holds text an attacker would write — every class of
terminal control (C0, C1, CSI, OSC 52 clipboard writes, OSC 8 links, DCS), bidi
overrides and isolates, invisible format and tag characters, line separators, Rich and
Textual markup (including `[@click=app.quit]`), plus a 10 MB payload, a 3,000-deep
payload and a 1 MB error that looks like base64url.

`unsafe_in(text)` says what of it survived into an output: any ESC, C0 (but newline,
tab and carriage return), C1, bidi, invisible format character (but ZWJ/ZWNJ) or tag
character — after removing the escape sequences a terminal UI legitimately emits
(SGR colours, cursor moves, mode switches) when `ui=True`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from fsar_tui.db import bulk, operator_log
from fsar_tui.domain.rollouts import artifact_sha256
from fsar_tui.domain.sanitize import FORMAT_CHARS

PARTS = {
    "c0": "\x07\x08\x0b\x0c\x0e\x1a\x7f",
    "c1": "\x85\x8d\x9b2J\x9c",
    "csi": "\x1b[2J\x1b[31;1m\x1b[?1049l",
    "osc52": "\x1b]52;c;SGVsbG8=\x07",
    "c1_osc52": "\x9d52;c;SGVsbG8=\x9c",
    "osc8": "\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\",
    "dcs": "\x1bPq#0;2;0;0;0\x1b\\",
    "bidi": "\u202eexe.gpj\u202c \u2067rtl\u2069 \u200f\u061c",
    "invisible": "\u200b\ufeff\u00ad\u2060" + "".join(chr(0xE0000 + ord(c)) for c in "hidden"),
    "separators": "a\u2028b\u2029c",
    "markup": "[bold red]pwn[/] [@click=app.quit]quit[/] [link=https://evil.example]x[/link] [/]",
    "scripts": "👨\u200d👩\u200d👧 漢字 ünï",
}
HOSTILE = " ".join(f"<{name}:{text}>" for name, text in PARTS.items())
# Fits varchar(64) (task_type): one of each dangerous class.
SHORT = "\x1b]52;c;SGk=\x07\u202e[b]x[/]\x9b2J\u200b\U000e0041\x07T"
assert len(SHORT) <= 64

HOSTILE_JSON = {
    "note": HOSTILE,
    SHORT: [HOSTILE, {"deeper": HOSTILE, "email": "ann@evil.example"}],
    "[bold]key[/]": "\x1b]52;c;SGVsbG8=\x07",
}
BIG_PAYLOAD_BYTES = 10 * 1024 * 1024
DEEP = 3000


def deep_json(depth: int = DEEP) -> str:
    return '{"a":' * depth + json.dumps(HOSTILE) + "}" * depth


def big_payload() -> str:
    chunk = json.dumps(HOSTILE)[1:-1] + " "
    return json.dumps({"blob": chunk * (BIG_PAYLOAD_BYTES // len(chunk.encode()))})


def base64url_error(size: int = 1024 * 1024) -> str:
    return ("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo-_abc" * (size // 40))[:size]


@dataclass(frozen=True)
class HostileIds:
    task: int  # hostile everywhere
    big: int  # 10 MB payload
    deep: int  # 3,000-deep payload
    long_error: int  # 1 MB base64url-looking error
    proposal: str
    alert: int
    gate: str
    rollout: str


def populate(dsn: str) -> HostileIds:
    """Seed `dsn` (a migrated database) and make it hostile. Runs as the superuser."""
    from fsar_tui.sim.seed import seed_history

    seed_history(dsn, days=7, tasks=400, seed=15)
    with psycopg.connect(dsn, autocommit=True) as conn:
        task = _tasks(conn)
        big, deep, long_error = _heavy_tasks(conn)
        proposal = _proposal(conn)  # after _tasks: links the hostile tasks to it
        alert = _alert(conn)
        gate = _gate(conn)
        rollout = _rollout(conn)
        _ledger(conn)
        _stripe(conn)
        _log(conn)
    return HostileIds(task, big, deep, long_error, proposal, alert, gate, rollout)


def _tasks(conn: psycopg.Connection) -> int:
    # A few tasks of every status get hostile agent-written columns; one is the showcase.
    conn.execute(
        """UPDATE execution_tasks SET task_type = %(short)s::text, ai_model = %(h)s, worker_id = %(short)s::text,
                  idea_id = %(h)s, payload = %(j)s,
                  error = CASE WHEN status IN ('failed', 'queued') THEN %(h)s ELSE error END,
                  result = CASE WHEN status = 'succeeded' THEN %(j)s ELSE result END
           WHERE id IN (SELECT min(id) FROM execution_tasks GROUP BY status
                        UNION (SELECT id FROM execution_tasks ORDER BY id DESC LIMIT 20))""",
        {"short": SHORT, "h": HOSTILE, "j": Jsonb(HOSTILE_JSON)},
    )
    conn.execute("UPDATE task_events SET worker_id = %s WHERE id IN (SELECT id FROM task_events LIMIT 50)", (SHORT,))
    ((task,),) = conn.execute(
        """INSERT INTO execution_tasks (task_type, ai_model, payload, worker_id, status, error, attempt,
                                        started_at, finished_at, idea_id)
           VALUES (%s, %s, %s, %s, 'failed', %s, 1, now() - interval '2 minutes', now(), %s) RETURNING id""",
        (SHORT, HOSTILE, Jsonb(HOSTILE_JSON), SHORT, HOSTILE, HOSTILE),
    ).fetchall()
    return int(task)


def _heavy_tasks(conn: psycopg.Connection) -> tuple[int, int, int]:
    ids = []
    for payload, error in ((big_payload(), "big"), (deep_json(), "deep"), ('{"n": 1}', base64url_error())):
        ((tid,),) = conn.execute(
            """INSERT INTO execution_tasks (task_type, ai_model, payload, status, error, attempt, started_at,
                                            finished_at)
               VALUES ('implement_idea', 'gpt-4o', %s::jsonb, 'failed', %s, 1, now() - interval '1 minute', now())
               RETURNING id""",
            (payload, error),
        ).fetchall()
        ids.append(int(tid))
    return ids[0], ids[1], ids[2]


def _proposal(conn: psycopg.Connection) -> str:
    pid = f"FSAR-{SHORT}"  # report ids are agent-written too
    conn.execute(
        """INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, task_type, body, risks,
                                       mitigations, extra_headers, source_sha256)
           VALUES (%s, now(), 9, true, %s, %s, %s, %s, %s, %s)""",
        (
            pid,
            SHORT,
            f"# {HOSTILE}\n\n{HOSTILE}\n\n```\n{HOSTILE}\n```\n",
            Jsonb([HOSTILE, SHORT]),
            Jsonb([HOSTILE]),
            Jsonb({SHORT: HOSTILE}),
            "0" * 64,
        ),
    )
    conn.execute("UPDATE fsar_proposals SET body = body || %s, task_type = %s WHERE id <> %s", (HOSTILE, SHORT, pid))
    conn.execute("UPDATE execution_tasks SET proposal_id = %s WHERE task_type = %s", (pid, SHORT))
    return pid


def _alert(conn: psycopg.Connection) -> int:
    ((aid,),) = conn.execute(
        """INSERT INTO drift_alerts (indicator, scope, baseline, current, details)
           VALUES (%s, %s, 0.1, 0.5, %s) RETURNING id""",
        (HOSTILE, Jsonb({"task_type": SHORT, "ai_model": HOSTILE}), Jsonb(HOSTILE_JSON)),
    ).fetchall()
    conn.execute(
        """INSERT INTO drift_alerts (indicator, scope, state, acked_at, acked_by, ack_reason)
           VALUES (%s, %s, 'acked', now(), %s, %s)""",
        (SHORT, Jsonb({"task_type": SHORT}), HOSTILE, HOSTILE),
    )
    return int(aid)


def _gate(conn: psycopg.Connection) -> str:
    name = f"gate {SHORT}"
    ((gid,),) = conn.execute(
        """INSERT INTO audit_gates (name, metric, scope, time_window, comparator, threshold, hard, description)
           VALUES (%s, 'failure_rate', %s, interval '1 day', '<=', 0.0, true, %s) RETURNING id""",
        (name, Jsonb({"task_type": SHORT}), HOSTILE),
    ).fetchall()
    conn.execute(
        "INSERT INTO audit_runs (gate_id, value, verdict, details) VALUES (%s, 0.5, 'fail', %s)",
        (gid, Jsonb(HOSTILE_JSON)),
    )
    conn.execute("INSERT INTO audit_gate_overrides (gate_id, actor, reason) VALUES (%s, %s, %s)", (gid, SHORT, HOSTILE))
    return name


def _rollout(conn: psycopg.Connection) -> str:
    target = f"prompt/{SHORT}"
    artifact = {"system": HOSTILE, SHORT: [HOSTILE]}
    revision = (artifact, artifact_sha256(artifact), datetime.now(UTC), HOSTILE)
    bulk.insert_rollout(conn, target, "prompt", SHORT, [revision])
    # created_by is not insert_rollout's to set; the append-only trigger is bypassed once.
    conn.execute("SET session_replication_role = replica")
    conn.execute("UPDATE rollout_revisions SET created_by = %s WHERE reason = %s", (HOSTILE, HOSTILE))
    conn.execute("RESET session_replication_role")
    _canary(conn, target)
    return target


def _canary(conn: psycopg.Connection, target: str) -> None:
    """A running canary on the hostile target: its artifact, reason, claimed actor, and a
    recorded judgement (summary, per-metric figures and words, why it holds) all hostile."""
    from fsar_tui.db import canaries

    artifact = {"system": HOSTILE, "simulate": {"failure_rate_multiplier": HOSTILE}, SHORT: HOSTILE_JSON}
    done = canaries.deploy(
        conn, target, artifact, artifact_sha256(artifact), expected_active=1, steps=[10, 100], interval_s=0,
        manual=False, reason=HOSTILE, claimed=HOSTILE,
    )  # fmt: skip
    metric = {"metric": f"gate:{HOSTILE}", "verdict": HOSTILE, "canary": HOSTILE, "stable": 1e308, "effect": -1,
              "ci": [HOSTILE, None], "why": HOSTILE}  # fmt: skip
    judgement = {"verdict": "inconclusive", "summary": HOSTILE, "score": 50, "metrics": [metric, HOSTILE]}
    conn.execute(
        "SELECT fsar_canary_record(%s, 0, 'inconclusive', 50, %s, %s)", (done.canary_id, Jsonb(judgement), HOSTILE)
    )


def _ledger(conn: psycopg.Connection) -> None:
    conn.execute(
        """UPDATE ledger_entries SET metadata = %s, idea_id = %s, customer_id = %s, external_id = %s || id
           WHERE id IN (SELECT id FROM ledger_entries ORDER BY id LIMIT 30)""",
        (Jsonb(HOSTILE_JSON), HOSTILE, SHORT, SHORT),
    )
    conn.execute(
        """INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from)
           VALUES (%s, 'USD', 100, 200, now() - interval '30 days')""",
        (HOSTILE,),
    )


def _stripe(conn: psycopg.Connection) -> None:
    conn.execute(
        """INSERT INTO stripe_events (id, type, created, object_id, outcome, payload)
           VALUES (%s, %s, now(), %s, 'skipped', %s)""",
        (f"evt_{SHORT}", HOSTILE, SHORT, Jsonb(HOSTILE_JSON)),
    )


def _log(conn: psycopg.Connection) -> None:
    operator_log.append_sync(
        conn,
        actor=SHORT,
        action=f"task.{SHORT}",
        target=HOSTILE,
        reason=HOSTILE,
        before=HOSTILE_JSON,
        after={"status": SHORT},
    )


# What a terminal UI may legitimately emit: SGR, cursor and mode CSI sequences
# (Textual's own drawing) and OSC 22, the mouse pointer's shape (Textual sets
# "default"); nothing else with an ESC is allowed — in particular no other OSC.
_UI_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\]22;[a-z-]*(?:\x07|\x1b\\)")
_UNSAFE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{FORMAT_CHARS}]")


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F


def unsafe_in(output: str, *, ui: bool = False) -> list[str]:
    """The unsafe characters left in `output` (their repr, at most 10), [] when none.

    `ui`: output of a terminal UI, whose own CSI sequences are allowed — but not the
    hostile part's own payload right after its marker: an agent's `ESC [ 2 J` looks like
    Textual's own, and drawn sanitised it reads "<csi:>". The payload's first four
    characters are what is looked for, not any ESC: a horizontally scrolled table cuts a
    cell at the viewport's edge with no ellipsis, and the cut "<c0:" is then followed by
    Textual's own reset (`ESC [ 0 m`) — drawing, not the agent's bytes (which the scan
    below would find anyway, the CSI-looking ones aside)."""
    if ui:
        leaked = [
            name
            for name, payload in PARTS.items()
            if _is_control(payload[0]) and f"<{name}:{payload[:4]}" in output  # markup shows as text: wanted
        ]
        if leaked:
            return [f"the {name} part reached the terminal" for name in leaked]
        output = _UI_CSI.sub("", output)
    found = [f"{m.group(0)!r}@{m.start()}: …{output[max(0, m.start() - 20) : m.start() + 20]!r}…"
             for m in _UNSAFE.finditer(output)]  # fmt: skip
    return found[:10]
