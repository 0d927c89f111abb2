"""`fsar-tui ingest-fsar …` and `fsar-tui proposals …`: FSAR proposals, headless.

ingest-fsar PATH… : files, directories (their regular files, sorted, not recursive,
    hidden files skipped) or `-` for standard input. Every report is parsed first; any
    parse error (printed as `fsar-tui: FILE:LINE: reason`) or any conflict (a stored
    report with the same id and other content) stores nothing and exits 1. Otherwise one
    transaction stores the new reports; ones already stored identically are counted as
    unchanged. Summary on stdout: `ingested 1, unchanged 0`.
proposals list [--format table|json]
proposals show ID [--format text|json]: headers, body, risks, mitigations, linked tasks
    (redacted by the policy unless `--reveal`, which needs fsar_admin and is logged). The
    checklist is numbered from 1, risks first, then mitigations (the screen's order). An
    implemented proposal ends with "Evidence: before/after" — did it pay: its task type's
    failure rate, p90 run time, cost per success and ROI in the 7 days before and after it
    was marked implemented, with intervals and a verdict (domain/before_after.py); JSON
    carries it as "evidence" (null for a proposal not implemented).
proposals accept|reject|implemented ID --reason TEXT [--expect STATUS]
proposals lift ID --reason TEXT: lift the proposal's execution block.
proposals tick ID N [--reason TEXT] / proposals untick ID N [--reason TEXT]: tick or
    untick checklist item N, numbered as `proposals show` prints it (the screen's `space`).
    Idempotent: an item already in the state asked for is left alone ("already ticked",
    exit 0, nothing logged); a number that names no item is a usage error (exit 2).
Every change is one transaction with an operator_actions row.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentTypeError, Namespace
from pathlib import Path

from fsar_tui.commands.base import Context, Parser, add_command, required_reason, subcommands
from fsar_tui.domain.fsar_report import MAX_REPORT_BYTES, FsarReport, ReportError, parse_report
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(sub, common: Parser) -> None:
    ingest = add_command(
        sub,
        common,
        "ingest-fsar",
        run_ingest,
        help="ingest FSAR Proposal Reports (all or nothing)",
        description="Parse every report named (files, directories, - for standard input), then store them in one "
        "transaction. A parse error (FILE:LINE: reason) or a conflict (the same id stored with other "
        "content) stores nothing and exits 1; a report already stored identically is a no-op.",
    )
    ingest.add_argument("paths", nargs="*", metavar="PATH")

    props = add_command(sub, common, "proposals", help="FSAR proposals")
    props_sub = subcommands(props, "proposals_command")
    pl = add_command(props_sub, common, "list", run_list, help="by severity, then newest")
    pl.add_argument("--format", choices=("table", "json"), default="table")
    ps = add_command(props_sub, common, "show", run_show, help="one proposal in full (redacted)")
    ps.add_argument("id", metavar="ID")
    ps.add_argument("--format", choices=("text", "json"), default="text")
    for name, text in (
        ("accept", "accept a new proposal"),
        ("reject", "reject a proposal (ends its block)"),
        ("implemented", "mark a proposal implemented (ends its block)"),
        ("lift", "lift a proposal's execution block"),
    ):
        pd = add_command(props_sub, common, name, run_decide, help=text)
        pd.add_argument("id", metavar="ID")
        pd.add_argument("--reason", help="why (required; goes to the operator log)")
        if name != "lift":
            pd.add_argument("--expect", metavar="STATUS", help="refuse unless the proposal is still in this status")
        pd.set_defaults(expect=None)
    for name, text in (
        ("tick", "tick checklist item N (a no-op when it is ticked already)"),
        ("untick", "untick checklist item N (a no-op when it is not ticked)"),
    ):
        pt = add_command(props_sub, common, name, run_tick, help=text)
        pt.add_argument("id", metavar="ID")
        pt.add_argument(
            "item", metavar="N", type=item_number, help="the item's number as `proposals show` prints it (from 1)"
        )
        pt.add_argument("--reason", help="optional note for the operator log (default: the item's text)")


def item_number(text: str) -> int:
    """An argparse `type=`: a checklist item's number (its range is the proposal's: db/proposals.tick)."""
    try:
        return int(text.strip())
    except ValueError:
        shown = repr(text if len(text) <= 40 else text[:40] + "…")
        raise ArgumentTypeError(
            f"{shown} is not an item number: use the number `proposals show ID` prints (1, 2, …)"
        ) from None


def _read_capped(fh, source: str) -> bytes:
    # One byte past the limit is enough for the parser to say "too large" at line 1,
    # without reading a runaway file into memory.
    return fh.read(MAX_REPORT_BYTES + 1)


def report_sources(paths: list[str]) -> list[tuple[str, bytes]]:
    """(source name, raw bytes) for every report named; a missing path is a usage error."""
    out: list[tuple[str, bytes]] = []
    for name in paths:
        if name == "-":
            out.append(("<stdin>", _read_capped(sys.stdin.buffer, "<stdin>")))
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise UsageError(f"{name}: directory holds no report files")
        elif path.is_file():
            files = [path]
        else:
            raise UsageError(f"{name}: no such file or directory")
        for file in files:
            try:
                with file.open("rb") as fh:
                    out.append((str(file), _read_capped(fh, str(file))))
            except OSError as exc:
                raise UsageError(f"{file}: cannot read: {exc.strerror}") from None
    return out


def parse_all(sources: list[tuple[str, bytes]]) -> tuple[list[FsarReport], list[ReportError]]:
    reports, errors = [], []
    for source, data in sources:
        try:
            reports.append(parse_report(data, source))
        except ReportError as err:
            errors.append(err)
    return reports, errors


def run_ingest(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import proposals
    from fsar_tui.db.actions import os_user

    if not args.paths:
        raise UsageError("name at least one report file, directory or - for standard input")
    reports, errors = parse_all(report_sources(args.paths))
    if errors:
        for err in errors:
            print(f"fsar-tui: {err}", file=sys.stderr)
        print(f"fsar-tui: {len(errors)} report(s) rejected; nothing stored", file=sys.stderr)
        return EXIT_FAILED
    with ctx.connect() as conn:
        result = proposals.ingest(conn, reports, actor=os_user())
    print(f"ingested {len(result.inserted)}, unchanged {len(result.unchanged)}")
    return EXIT_OK


def _when(value) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def run_list(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import proposals
    from fsar_tui.domain.sanitize import safe_str

    with ctx.read_connect() as conn:
        rows = proposals.list_proposals_sync(conn)
    if args.format == "json":
        print(
            json.dumps(
                [
                    {
                        "id": safe_str(r.id),
                        "severity": r.severity,
                        "status": r.status,
                        "block_execution": r.block_execution,
                        "blocking": r.blocking,
                        "block_lifted_at": r.block_lifted_at.isoformat() if r.block_lifted_at else None,
                        "task_type": safe_str(r.task_type or ""),
                        "reported_at": r.reported_at.isoformat(),
                        "linked_tasks": r.linked,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return EXIT_OK
    print(f"{'sev':>3}  {'status':<11} {'block':<8} {'type':<20} {'reported (UTC)':<16}  {'tasks':>5}  id")
    for r in rows:
        block = "BLOCKING" if r.blocking else ("lifted" if r.block_execution and r.block_lifted_at else "-")
        print(
            f"{r.severity:>3}  {r.status:<11} {block:<8} {safe_str(r.task_type or '-'):<20} "
            f"{_when(r.reported_at):<16}  {r.linked:>5}  {safe_str(r.id)}"
        )
    return EXIT_OK


def run_show(args: Namespace, ctx: Context) -> int:
    from fsar_tui import clock
    from fsar_tui.db import before_after, proposals
    from fsar_tui.domain import before_after_text
    from fsar_tui.domain.sanitize import safe_str as show  # redacted unless this run's --reveal was allowed

    with ctx.read_connect() as conn:
        p = proposals.get_proposal_sync(conn, args.id)
        evidence = None
        if p.row.status == "implemented":
            evidence = before_after.proposal_evidence_sync(conn, p.row.id, clock.now())
    r = p.row
    if args.format == "json":
        print(
            json.dumps(
                {
                    "id": show(r.id),
                    "severity": r.severity,
                    "status": r.status,
                    "block_execution": r.block_execution,
                    "blocking": r.blocking,
                    "task_type": show(r.task_type or ""),
                    "reported_at": r.reported_at.isoformat(),
                    "body": show(p.body),
                    "risks": [show(x) for x in p.risks],
                    "mitigations": [show(x) for x in p.mitigations],
                    "extra_headers": {show(k): show(v) for k, v in p.extra_headers.items()},
                    # The numbers of the ticked items (from 1: risks, then mitigations).
                    "ticked": [item.number for item in p.items() if item.ticked],
                    "sha256": p.sha256,
                    "linked_tasks": r.linked,
                    "tasks": [
                        {"id": t[0], "task_type": show(t[1]), "ai_model": show(t[2] or ""), "status": t[3]}
                        for t in p.tasks
                    ],
                    "evidence": None if evidence is None else before_after_text.to_json(evidence),
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(
        f"{show(r.id)} · severity {r.severity} · {r.status}"
        + (" · BLOCKS " + show(r.task_type or "") if r.blocking else "")
        + f" · reported {_when(r.reported_at)} UTC · sha256 {p.sha256[:12]}…"
    )
    for key, value in p.extra_headers.items():
        print(f"  {show(key)}: {show(value)}")
    print()
    print(show(p.body))
    items = p.items()
    width = len(str(len(items)))
    for title, kind in (("Risks", "risks"), ("Mitigations", "mitigations")):
        print(f"\n{title}:")
        for item in items:
            if item.kind == kind:
                print(f"  {item.number:>{width}}. [{'x' if item.ticked else ' '}] {show(item.text)}")
    print(f"\nlinked tasks: {r.linked}")
    for task_id, task_type, model, status, created in p.tasks[:20]:
        print(f"  {task_id}  {show(task_type)}  {show(model or '-')}  {status}  {_when(created)}")
    if evidence is not None:
        print()
        print("\n".join(before_after_text.lines(evidence)))
    return EXIT_OK


def run_decide(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import proposals
    from fsar_tui.db.actions import os_user

    reason = required_reason(args)
    with ctx.connect() as conn:
        if args.proposals_command == "lift":
            proposals.lift_block(conn, args.id, actor=os_user(), reason=reason)
            print(f"proposal {args.id}: block lifted")
        else:
            new = proposals.decide(
                conn, args.id, args.proposals_command, actor=os_user(), reason=reason, expected_status=args.expect
            )
            print(f"proposal {args.id}: {new}")
    return EXIT_OK


def run_tick(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import proposals
    from fsar_tui.db.actions import os_user

    wanted = args.proposals_command == "tick"
    with ctx.connect() as conn:
        changed = proposals.tick(
            conn, args.id, args.item, ticked=wanted, actor=os_user(), reason=(args.reason or "").strip()
        )
    if changed:
        print(f"proposal {args.id}: item {args.item} {'ticked' if wanted else 'unticked'}")
    else:
        print(f"proposal {args.id}: item {args.item} was {'already' if wanted else 'not'} ticked; nothing changed")
    return EXIT_OK
