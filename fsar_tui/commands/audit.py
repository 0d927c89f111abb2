"""`fsar-tui audit …` and `fsar-tui alerts …`: audit gates and drift alerts, headless.

audit run [--gate NAME] [--strict] [--format table|json]: evaluate the enabled gates (or
    the one named), record a verdict for each, then (without --gate) run the drift
    detector over every type × model and open/refresh/resolve alerts. Exit 1 when a hard
    gate fails or errors (could not be measured) — or, with --gate or --strict, when any
    evaluated gate does — for cron and CI; inconclusive and soft failures are printed, not
    fatal, by default.
audit gates [--format table|json]: every gate, its condition and its latest verdict.
audit gate add NAME --metric M --pass-if '<= 0.2' --window 1h [--baseline 7d]
    [--type T] [--model M] [--rollout TARGET [--canary]] [--hard] --reason TEXT
audit gate set NAME [--hard|--soft] [--enable|--disable] [--pass-if COND] --reason TEXT
audit override NAME --reason TEXT [--for 4h]: let a failing hard gate's scope run until
    the gate next passes (or the time given); recorded in the operator log.
alerts list [--format table|json]: open alerts, then the notifications whose latest
    attempt failed (retried or given up; JSON: {"alerts": […], "notifications": {…}});
    alerts ack ID --reason TEXT.
With config.toml's [notify], `audit run` also notifies the state changes it finds (as
the app's audit pass does: services/notify.py), after checking the SMTP server answers.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from argparse import Namespace
from datetime import timedelta

from fsar_tui.commands.base import (
    Context,
    Parser,
    add_command,
    parse_window_arg,
    positive_id,
    required_reason,
    subcommands,
)
from fsar_tui.domain.sanitize import one_line
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(sub, common: Parser) -> None:
    from fsar_tui.domain.gates import METRICS

    audit = add_command(sub, common, "audit", help="audit gates")
    audit_sub = subcommands(audit, "audit_command")
    arun = add_command(
        audit_sub,
        common,
        "run",
        run_audit,
        help="evaluate the gates (and drift); exit 1 if a hard gate fails",
        description="Evaluate every enabled gate (or --gate NAME), record the verdicts, and run the drift detector. "
        "Exit 1 when a hard gate fails, or any evaluated gate with --gate or --strict.",
    )
    arun.add_argument("--gate", metavar="NAME", help="only this gate (exit 1 if it fails, hard or soft)")
    arun.add_argument("--strict", action="store_true", help="exit 1 on soft failures too")
    arun.add_argument("--format", choices=("table", "json"), default="table")
    alist = add_command(audit_sub, common, "gates", run_gates_list, help="gates and their latest verdicts")
    alist.add_argument("--format", choices=("table", "json"), default="table")
    agate = add_command(audit_sub, common, "gate", help="add or change a gate")
    agate_sub = subcommands(agate, "gate_command")
    gadd = add_command(agate_sub, common, "add", run_gate_add, help="define a gate")
    gadd.add_argument("name", metavar="NAME")
    gadd.add_argument("--metric", required=True, choices=METRICS)
    gadd.add_argument("--pass-if", required=True, metavar="COND", help="pass condition, e.g. '<= 0.2'")
    gadd.add_argument("--window", required=True, help="window, e.g. 1h")
    gadd.add_argument("--baseline", help="compare with this window before it, as a ratio (e.g. 7d)")
    gadd.add_argument("--type", help="scope: task type")
    gadd.add_argument("--model", help="scope: ai_model")
    gadd.add_argument("--rollout", help="scope: rollout target (its active revision's tasks)")
    gadd.add_argument(
        "--canary",
        action="store_true",
        help="with --rollout: the target's running canary revision's tasks; a hard failure blocks the canary only",
    )
    gadd.add_argument("--hard", action="store_true", help="a failure blocks execution in the scope")
    gadd.add_argument("--description")
    gadd.add_argument("--reason", help="why (required; goes to the operator log)")
    gset = add_command(agate_sub, common, "set", run_gate_set, help="change a gate")
    gset.add_argument("name", metavar="NAME")
    hard = gset.add_mutually_exclusive_group()
    hard.add_argument("--hard", dest="hard", action="store_const", const=True)
    hard.add_argument("--soft", dest="hard", action="store_const", const=False)
    enabled = gset.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True)
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False)
    gset.add_argument("--pass-if", metavar="COND")
    gset.add_argument("--reason", help="why (required; goes to the operator log)")
    aover = add_command(
        audit_sub,
        common,
        "override",
        run_override,
        help="let a failing hard gate's scope run until the gate passes again",
    )
    aover.add_argument("name", metavar="NAME")
    aover.add_argument("--reason", help="why (required; goes to the operator log)")
    aover.add_argument("--for", dest="for_", metavar="DURATION", help="expire the override after this long (e.g. 4h)")

    alerts = add_command(sub, common, "alerts", help="drift alerts")
    alerts_sub = subcommands(alerts, "alerts_command")
    al = add_command(alerts_sub, common, "list", run_alerts_list, help="open alerts (firing, acked)")
    al.add_argument("--format", choices=("table", "json"), default="table")
    aa = add_command(alerts_sub, common, "ack", run_alerts_ack, help="acknowledge a firing alert")
    aa.add_argument("id", type=positive_id, metavar="ID")
    aa.add_argument("--reason", help="why (required; goes to the operator log)")


def _condition(text: str) -> tuple[str, float]:
    from fsar_tui.domain.gates import parse_condition

    try:
        return parse_condition(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_audit(args: Namespace, ctx: Context) -> int:
    from fsar_tui.domain.gates import scope_label
    from fsar_tui.domain.sanitize import strip_controls
    from fsar_tui.services.audit_pass import evaluate
    from fsar_tui.services.canary_pass import announce_outcomes

    notify = ctx.settings.notify
    if notify is not None:
        from fsar_tui.services import notify as notifier

        notifier.preflight(notify)  # an SMTP server that does not answer: exit 2 before anything
    with ctx.connect() as conn:  # the scheduled pass's evaluation: every finished task, folded or not
        evaluation = evaluate(conn, args.gate)
        sent = _notify(conn, notify) if notify is not None else None
    for problem in announce_outcomes(ctx.settings.mqtt_url, evaluation.canaries):
        print(f"fsar-tui: {problem}", file=sys.stderr)
    results, alerts = evaluation.verdicts, evaluation.alerts
    # An 'error' (could not be measured: a timeout, history archived) is no pass either:
    # a CI step that trusts the exit code must not pass a hard gate nobody measured.
    failed = [g for g, v in results if v.verdict in ("fail", "error") and (g.hard or args.gate or args.strict)]
    if args.format == "json":
        print(
            json.dumps(
                {
                    "gates": [
                        {
                            "name": g.name,
                            "metric": g.metric,
                            "scope": g.scope,
                            "condition": g.condition,
                            "hard": g.hard,
                            "verdict": v.verdict,
                            "value": v.value,
                            "measured": v.measured,
                            "baseline": v.baseline,
                            "sample_size": v.sample_size,
                            "details": v.details,
                        }
                        for g, v in results
                    ],
                    "drift": None if alerts is None else {"firing": alerts[0], "resolved": alerts[1]},
                    "canaries": [o.__dict__ for o in evaluation.canaries],
                    "failed": [g.name for g in failed],
                    "notifications": sent,
                },
                indent=2,
                default=str,
            )
        )
    else:
        for g, v in results:  # one line per gate, whatever its name or scope holds
            why = f" ({one_line(str(v.details['why']))})" if "why" in v.details else ""
            print(
                f"{v.verdict.upper():<12} {'HARD' if g.hard else 'soft'} {one_line(g.name):<34} {g.condition:<40} "
                f"value {_fmt(v.value)}  n={v.sample_size}  scope {one_line(scope_label(g.scope))}{why}"
            )
        if alerts is not None:
            print(f"drift: {alerts[0]} alert(s) firing, {alerts[1]} resolved now")
        for o in evaluation.canaries:
            moved = f" → {o.action}: {o.state} at {o.weight} %" if o.action else f" (weight {o.weight} %)"
            print(strip_controls(f"canary {o.target}: {o.verdict}{moved}: {o.detail}"))
        if sent is not None:
            print(
                f"notifications: {sent['claimed']} change(s) claimed, {sent['sent']} sent, {sent['failed']} failed"
                + "".join(f"\n  {p}" for p in sent["problems"])
            )
        if failed:
            names = ", ".join(one_line(g.name) for g in failed)
            print(
                f"fsar-tui: {len(failed)} gate(s) failed or could not be measured: {names}",
                file=sys.stderr,
            )
    return EXIT_FAILED if failed else EXIT_OK


def _notify(conn, cfg) -> dict:
    """Claim the state changes (a row lock per key: a panel's pass racing this one claims
    each change once between them), then send what is due; what happened, masked."""
    import psycopg

    from fsar_tui import clock
    from fsar_tui.errors import first_line
    from fsar_tui.services import notify

    refused: list[str] = []
    try:
        with conn.transaction():  # no rehearsal here: readiness untouched
            claimed = notify.claim_changes(conn, cfg, clock.now(), None, refused)
        delivered = notify.deliver_due(conn, cfg)
    except psycopg.Error as exc:  # e.g. a schema behind 0038: the verdicts above still stand
        return {"claimed": 0, "sent": 0, "failed": 0, "problems": [f"could not notify: {first_line(exc)}"]}
    problems = [f"not claimed: {line}" for line in refused] + [f"failed: {p}" for p in delivered.problems]
    return {"claimed": claimed, "sent": delivered.ok, "failed": delivered.failed, "problems": problems}


def run_gates_list(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import gates
    from fsar_tui.domain.gates import scope_label

    with ctx.read_connect() as conn:
        rows = gates.latest_sync(conn)
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(g) for g in rows], indent=2, default=str))
        return EXIT_OK
    for g in rows:  # one line per gate, whatever its name, scope or overrider holds
        state = (g.verdict or "never run").upper() + (" · BLOCKING" if g.blocking else "")
        state += f" · overridden by {one_line(g.override)}" if g.override else ""
        rel = " × baseline" if g.baseline_window_s else ""
        print(
            f"{one_line(g.name):<34} {'HARD' if g.hard else 'soft'}{'' if g.enabled else ' (disabled)'} "
            f"{g.metric} {g.comparator} {g.threshold:g}{rel} · scope {one_line(scope_label(g.scope))} · {state} · "
            f"value {_fmt(g.value)}"
        )
    return EXIT_OK


def run_gate_add(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import gates
    from fsar_tui.db.actions import os_user
    from fsar_tui.domain.gates import Gate
    from fsar_tui.services.gates import refuse_if_archived

    reason = required_reason(args)
    comparator, threshold = _condition(args.pass_if)
    scope: dict[str, object] = {
        k: v for k, v in (("task_type", args.type), ("ai_model", args.model), ("rollout", args.rollout)) if v
    }
    if args.canary:
        if not args.rollout:
            raise UsageError("--canary needs --rollout TARGET: the canary of which target")
        scope["canary"] = True
    window_s: int = parse_window_arg(args.window, "--window")  # --window is required
    gate = Gate(
        0,
        args.name,
        args.metric,
        scope,
        window_s,
        comparator,
        threshold,
        args.hard,
        parse_window_arg(args.baseline, "--baseline"),
        description=args.description or "",
    )
    with ctx.connect() as conn:
        refuse_if_archived(conn, gate)
        gates.add_gate(conn, gate, actor=os_user(), reason=reason)
    print(
        f"gate {one_line(gate.name)} added: passes while {gate.condition} over {args.window} "
        f"({'hard: a failure blocks execution in its scope' if gate.hard else 'soft'})"
    )
    return EXIT_OK


def run_gate_set(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import gates
    from fsar_tui.db.actions import os_user
    from fsar_tui.services.gates import refuse_if_archived

    reason = required_reason(args)
    changes: dict = {}
    if args.hard is not None:
        changes["hard"] = args.hard
    if args.enabled is not None:
        changes["enabled"] = args.enabled
    if args.pass_if:
        changes["comparator"], changes["threshold"] = _condition(args.pass_if)
    with ctx.connect() as conn:
        if changes.get("enabled"):
            for current in gates.load_gates(conn, args.name, enabled_only=False):
                refuse_if_archived(conn, current)
        gate = gates.set_gate(conn, args.name, changes, actor=os_user(), reason=reason)
    print(
        f"gate {one_line(gate.name)}: {gate.condition}, {'hard' if gate.hard else 'soft'}, "
        f"{'enabled' if gate.enabled else 'disabled'}"
    )
    return EXIT_OK


def run_override(args: Namespace, ctx: Context) -> int:
    from fsar_tui import clock
    from fsar_tui.db import gates
    from fsar_tui.db.actions import os_user

    reason = required_reason(args)
    seconds = parse_window_arg(args.for_, "--for")
    until = clock.now() + timedelta(seconds=seconds) if seconds else None
    with ctx.connect() as conn:
        gates.override(conn, args.name, actor=os_user(), reason=reason, expires_at=until)
    print(
        f"gate {one_line(args.name)} overridden until it passes again"
        + (f" or {until:%Y-%m-%d %H:%M %Z}" if until else "")
    )
    return EXIT_OK


def run_alerts_list(args: Namespace, ctx: Context) -> int:
    import psycopg

    from fsar_tui.db import drift, notifications
    from fsar_tui.domain.gates import scope_label

    failures: list[notifications.FailedDelivery] | None = None
    with ctx.read_connect() as conn:
        rows = drift.open_alerts_sync(conn)
        try:
            with conn.transaction():
                failures = notifications.failed_deliveries_sync(conn)
        except psycopg.errors.UndefinedTable:  # a schema behind 0037: the alerts still list
            failures = None
    if args.format == "json":
        notes = None if failures is None else {"failed_deliveries": [dataclasses.asdict(f) for f in failures]}
        print(json.dumps({"alerts": [dataclasses.asdict(r) for r in rows], "notifications": notes}, indent=2,
                         default=str))  # fmt: skip
        return EXIT_OK
    for r in rows:
        ack = f" · acked by {one_line(str(r.acked_by))}: {one_line(str(r.ack_reason))}" if r.state == "acked" else ""
        scope = one_line(scope_label(r.scope))
        print(
            f"#{r.id} {r.state.upper()} {r.indicator} {scope} since {r.opened_at:%Y-%m-%d %H:%M} · "
            f"baseline {_fmt(r.baseline)} now {_fmt(r.current)}{ack}"
        )
    if not rows:
        print("(no open alerts)")
    _print_failures(failures)
    return EXIT_OK


def _print_failures(failures) -> None:
    from fsar_tui.domain.notify_failure import notify_failure_line

    if failures is None:
        print("notifications: unknown (the schema is behind 0037_notifications: run `fsar-tui migrate`)")
    elif not failures:
        print("notifications: no failed delivery")
    else:
        print(f"notifications: {len(failures)} failed delivery(ies), newest first")
        for f in failures:
            print("  " + notify_failure_line(f))


def run_alerts_ack(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import drift
    from fsar_tui.db.actions import os_user

    reason = required_reason(args)
    with ctx.connect() as conn:
        drift.ack(conn, args.id, actor=os_user(), reason=reason)
    print(f"alert {args.id} acknowledged")
    return EXIT_OK
