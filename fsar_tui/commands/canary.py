"""`fsar-tui rollouts deploy` and `fsar-tui rollouts canary status|promote|abort|analyze`.

deploy TARGET --artifact FILE --reason TEXT [--canary WEIGHT] [--steps 10,50,100]
       [--interval 30m] [--manual] [--yes] [--dry-run]
  Reads the artifact (≤ 1 MiB, one JSON object: domain/canary.parse_artifact; anything
  else is refused, exit 2, nothing written), previews — the new revision, the diff from
  the active one, tasks of the type in flight, how it will roll out — asks to type the
  target's name (or --yes), then one transaction (fsar_rollout_deploy). Without --canary
  or --steps the revision becomes active at once (a rollout like a roll-forward); with
  them a canary starts at the first weight (--canary 10 alone means steps 10,100) and
  the judge (the audit pass, `audit run`) moves it: a failing analysis aborts it at once,
  a passing one promotes it after the step's --interval (default 30m; with --manual an
  operator promotes). Refused (exit 1, nothing written): the artifact equals the active
  revision, a canary already runs on the target, someone changed the target since the
  preview, or — for a canary — the target's rollback rehearsal fails (there would be no
  way back).
canary status [TARGET] [--format json]: per target its running canary or the latest one:
  state, weight and step, the judge's last verdict per metric, why the weight holds, and
  whether the judgement is stale.
canary promote|abort TARGET --reason TEXT [--yes] [--from WEIGHT]: the operator's move,
  confirmed by typing the target's name; two operators at once: one wins, the other is
  told who (exit 1). `promote --yes` needs `--from WEIGHT` (the weight the operator saw):
  two scripted promotes, or one after the judge's, would otherwise each move a step.
  Logged as canary.promote / canary.abort under the role.
canary analyze TARGET [--format json]: the judge's analysis now, shown, not recorded, no
  action; exit 1 when its verdict is fail (for scripts), else 0.
evidence TARGET [--revision N] [--format json]: did a deployed revision pay — its target's
  task type over the 7 days before and after it went live (a canary's: from its start to
  its promotion), as `proposals show` gives it for a proposal (domain/before_after.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
from argparse import Namespace
from typing import Any

from fsar_tui.commands.base import Context, Parser, add_command, required_reason, revision_number, subcommands
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, CheckFailed, UsageError

MAX_INTERVAL_S = 7 * 86_400  # what fsar_rollout_deploy accepts
MAX_DIFF_LINE = 300  # a preview line of an artifact's diff, cut (a 5,000-character value is one line)


def register(rollouts_sub, common: Parser) -> None:
    dp = add_command(
        rollouts_sub,
        common,
        "deploy",
        run_deploy,
        help="deploy a new revision: at once, or as a canary judged against the stable one",
    )
    dp.add_argument("target", metavar="TARGET")
    dp.add_argument("--artifact", required=True, metavar="FILE", help="the revision's artifact: a JSON object")
    dp.add_argument("--reason", help="why (required; goes to the operator log)")
    dp.add_argument("--canary", type=_weight, metavar="WEIGHT", help="start as a canary at this weight (%%, 1-99)")
    dp.add_argument("--steps", metavar="LIST", help="canary weights, e.g. 10,50,100 (the last must be 100)")
    dp.add_argument("--interval", default="30m", help="a canary step's minimum duration (default 30m)")
    dp.add_argument("--manual", action="store_true", help="a passing canary step waits for `canary promote`")
    dp.add_argument("--yes", action="store_true", help="do not ask to type the target's name")
    dp.add_argument("--dry-run", action="store_true", help="show the preview and stop")
    cp = add_command(rollouts_sub, common, "canary", help="canaries: status, promote, abort, analyze")
    canary_sub = subcommands(cp, "canary_command")
    st = add_command(canary_sub, common, "status", run_status, help="the canaries' state and last judgement")
    st.add_argument("target", nargs="?", metavar="TARGET")
    st.add_argument("--format", choices=("table", "json"), default="table")
    for name, verb in (
        ("promote", "to the next step (at the last, make the canary revision active)"),
        ("abort", "all traffic back to stable"),
    ):
        mv = add_command(canary_sub, common, name, run_decide, help=f"{name} the running canary: {verb}")
        mv.add_argument("target", metavar="TARGET")
        mv.add_argument("--reason", help="why (required; goes to the operator log)")
        mv.add_argument("--yes", action="store_true", help="do not ask to type the target's name")
        mv.add_argument(
            "--from",
            dest="from_weight",
            type=_weight_or_full,
            metavar="WEIGHT",
            help="the weight you saw (refused if the canary moved since); required by promote with --yes",
        )
        mv.set_defaults(action=name)
    ev = add_command(
        rollouts_sub,
        common,
        "evidence",
        run_evidence,
        help="did a deployed revision pay? its type's figures the 7 days before and after it went live",
    )
    ev.add_argument("target", metavar="TARGET")
    ev.add_argument("--revision", type=revision_number, help="the revision (default: the active one)")
    ev.add_argument("--format", choices=("table", "json"), default="table")
    an = add_command(canary_sub, common, "analyze", run_analyze, help="the judge's analysis now (not recorded)")
    an.add_argument("target", metavar="TARGET")
    an.add_argument("--format", choices=("table", "json"), default="table")


def _weight(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid weight {text[:20]!r} (a whole percentage, 1-99)") from None
    if not 1 <= value <= 99:
        raise argparse.ArgumentTypeError(f"must be 1..99 (%), got {value}")
    return value


def _weight_or_full(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid weight {text[:20]!r} (a whole percentage)") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 0..100 (%), got {value}")
    return value


def _read_artifact(path: str) -> dict[str, Any]:
    from fsar_tui.domain.canary import MAX_ARTIFACT_BYTES, ArtifactError, parse_artifact
    from fsar_tui.domain.sanitize import strip_controls

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ARTIFACT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--artifact {strip_controls(path)[:200]}: {exc.strerror or type(exc).__name__}") from None
    try:
        return parse_artifact(data)
    except ArtifactError as exc:
        raise UsageError(f"--artifact {strip_controls(path)[:200]}: {exc}; nothing written") from None


def _confirm(target: str, yes: bool, stdin=None) -> bool:
    """The operator types the target's name as it was shown: controls stripped (a name
    holding ESC or BEL could never be typed, nor shown)."""
    from fsar_tui.domain.sanitize import strip_controls

    stdin = stdin or sys.stdin
    if yes:
        return True
    if not stdin.isatty() and stdin is sys.stdin:
        raise UsageError("not a terminal: confirm with --yes")
    shown = strip_controls(target)
    print(f"type the target's name ({shown}) to confirm: ", end="", flush=True)
    return stdin.readline().strip() == shown.strip()


def run_deploy(args: Namespace, ctx: Context, stdin=None) -> int:
    from fsar_tui.commands.base import parse_window_arg
    from fsar_tui.db import canaries, rollouts
    from fsar_tui.db.actions import os_user
    from fsar_tui.domain.canary import StepsError, parse_steps
    from fsar_tui.domain.rollouts import artifact_diff, artifact_sha256
    from fsar_tui.domain.sanitize import strip_controls

    reason = (args.reason or "").strip()
    if not reason and not args.dry_run:
        raise UsageError("--reason is required: say why, it goes to the operator log")
    if ctx.settings.read_only and not args.dry_run:
        raise UsageError("--read-only: deploy changes the rollout (--dry-run shows what it would do)")
    artifact = _read_artifact(args.artifact)
    steps = None
    if args.canary is not None or args.steps is not None:
        try:
            steps = parse_steps(args.steps or "100", args.canary)
        except StepsError as exc:
            raise UsageError(f"--steps: {exc}") from None
        if steps == [100]:
            raise UsageError("--steps: a canary needs a first weight below 100 (e.g. --canary 10)")
    interval_s = 0 if args.interval in ("0", "0s") else parse_window_arg(args.interval, "--interval")
    if interval_s > MAX_INTERVAL_S:
        raise UsageError(f"--interval {args.interval}: at most 7 days a step")
    sha = artifact_sha256(artifact)
    with ctx.connect(autocommit=False) as conn:
        active, current = canaries.active_revision(conn, args.target)
        latest = next((t.latest for t in rollouts.list_targets(conn) if t.target == args.target), 0)
        how = (
            "at once (it becomes the active revision)"
            if steps is None
            else f"as a canary: {' → '.join(f'{s} %' for s in steps)}, at least {args.interval} a step, "
            + ("promoted by an operator" if args.manual else "promoted by the judge")
        )
        print(strip_controls(f"deploy {args.target}: revision {latest + 1}, {how}"))
        for line in artifact_diff(current, artifact, f"revision {active} (active)", "new") or ["(identical)"]:
            line = strip_controls(f"  {line}")
            print(line if len(line) <= MAX_DIFF_LINE else f"{line[: MAX_DIFF_LINE - 1]}…")
        if active is not None and current == artifact:
            raise canaries.Refused(f"{args.target}: the artifact equals the active revision {active}; nothing written")
        no_traffic = canaries.routing_problem(conn, args.target)
        if steps is not None:
            if no_traffic:
                raise canaries.Refused(f"{no_traffic}; a canary there would wait for ever; nothing written")
            _refuse_without_way_back(conn, args.target)
        elif no_traffic:
            print(strip_controls(f"note: {no_traffic}"))
        if args.dry_run:
            print("dry run: nothing changed")
            return EXIT_OK
        if not _confirm(args.target, args.yes, stdin):
            print("fsar-tui: not confirmed; nothing changed", file=sys.stderr)
            return EXIT_FAILED
        done = canaries.deploy(
            conn,
            args.target,
            artifact,
            sha,
            expected_active=active,
            steps=steps,
            interval_s=interval_s,
            manual=args.manual,
            reason=reason,
            claimed=os_user(),
        )
        conn.commit()
    if done.canary_id is None or steps is None:
        print(f"{args.target}: revision {done.revision} is active")
    else:
        print(f"{args.target}: canary {done.canary_id} started: revision {done.revision} on {steps[0]} % of tasks")
    _announce(ctx, args.target, done, steps[0] if steps else 100)
    return EXIT_OK


def _refuse_without_way_back(conn, target: str) -> None:
    from fsar_tui.db import canaries, rollouts

    for t in rollouts.list_targets(conn):
        if t.target != target:
            continue
        if t.rollback_to is None and t.problem != "no earlier revision":
            raise canaries.Refused(f"{target}: rollback not ready ({t.problem}); a canary needs a way back")
        if t.rollback_to is not None and (problem := rollouts.rehearse(conn, t)) is not None:
            raise canaries.Refused(f"{target}: the rollback rehearsal fails ({problem}); no canary without a way back")


def _announce(ctx: Context, target: str, done, weight: int) -> None:
    if not ctx.settings.mqtt_url:
        return
    from fsar_tui.live.mqtt import announce_canary, announce_rollout

    try:
        if done.canary_id is None:
            asyncio.run(announce_rollout(ctx.settings.mqtt_url, target, done.revision, done.revision))
        else:
            asyncio.run(announce_canary(ctx.settings.mqtt_url, target, done.canary_id, "running", weight, "started"))
    except Exception as exc:  # the database is the truth: workers also get NOTIFY
        print(f"fsar-tui: done, but the MQTT control message failed: {type(exc).__name__}", file=sys.stderr)


def run_status(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import canaries
    from fsar_tui.domain.canary_view import status_json, status_lines

    with ctx.read_connect() as conn:
        if args.target:
            canaries.active_revision(conn, args.target)  # a usage error for an unknown target
        found = canaries.latest(conn, args.target)
        recent = {c.id: canaries.analyses(conn, c.id, 10) for c in found}
    if args.format == "json":
        print(json.dumps([status_json(c, recent[c.id]) for c in found], indent=2, default=str))
        return EXIT_OK
    for c in found:
        for line in status_lines(c):
            print(line)
    if not found:
        print("(no canaries)")
    return EXIT_OK


def run_decide(args: Namespace, ctx: Context, stdin=None) -> int:
    from fsar_tui.db import canaries
    from fsar_tui.db.actions import os_user
    from fsar_tui.domain.canary_view import status_lines

    reason = required_reason(args)
    if ctx.settings.read_only:
        raise UsageError(f"--read-only: {args.action} changes the canary")
    # Without a person reading the status first, two scripted promotes (or one after the
    # judge's) would each move a step: say which weight you are promoting from.
    if args.action == "promote" and args.yes and args.from_weight is None:
        raise UsageError("promote --yes needs --from WEIGHT: the weight you are promoting from")
    with ctx.connect() as conn:
        canary = canaries.running(conn, args.target)
        if args.from_weight is not None and canary.weight != args.from_weight:
            raise canaries.moved_since(conn, canary, f"--from {args.from_weight} %")
        for line in status_lines(canary):
            print(line)
        verdict = (canary.judgement or {}).get("verdict") if isinstance(canary.judgement, dict) else None
        if args.action == "promote" and verdict != "pass":
            print(f"the judge's last verdict is {verdict or 'none yet'}: this promote overrides it (the log says so)")
        if not _confirm(canary.target, args.yes, stdin):
            print("fsar-tui: not confirmed; nothing changed", file=sys.stderr)
            return EXIT_FAILED
        decided = canaries.decide(conn, canary, args.action, reason=reason, claimed=os_user())
    if decided.state == "running":
        print(f"{canary.target}: canary {canary.id} promoted to {decided.weight} % (step {decided.step + 1})")
    else:
        print(f"{canary.target}: canary {canary.id} {decided.state}")
    from fsar_tui.services.canary_pass import Outcome, announce_outcomes

    outcome = Outcome(canary.target, canary.id, "operator", args.action, reason, decided.weight, decided.state)
    for problem in announce_outcomes(ctx.settings.mqtt_url, [outcome]):
        print(f"fsar-tui: {problem}", file=sys.stderr)
    return EXIT_OK


def run_evidence(args: Namespace, ctx: Context) -> int:
    from fsar_tui import clock
    from fsar_tui.db import before_after, canaries
    from fsar_tui.domain import before_after_text

    with ctx.read_connect() as conn:
        active, _ = canaries.active_revision(conn, args.target)
        revision = args.revision or active
        if revision is None:
            raise UsageError(f"{args.target} has no active revision: name one with --revision")
        evidence = before_after.revision_evidence_sync(conn, args.target, revision, clock.now())
    if args.format == "json":
        data = {"target": args.target, "revision": revision, **before_after_text.to_json(evidence)}
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(before_after_text.lines(evidence)))
    return EXIT_OK


def run_analyze(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import canaries
    from fsar_tui.domain.canary import judgement_json
    from fsar_tui.domain.canary_view import judgement_lines
    from fsar_tui.services.canary_pass import analyse

    with ctx.read_connect() as conn:
        canary = canaries.running(conn, args.target)
        judgement = analyse(conn, canary)
    if args.format == "json":
        print(json.dumps({"target": canary.target, "canary": canary.id, **judgement_json(judgement)}, indent=2))
    else:
        for line in judgement_lines(judgement):
            print(line)
    return EXIT_FAILED if judgement.verdict == "fail" else EXIT_OK


__all__ = ["CheckFailed", "register"]
