"""`fsar-tui report`: ROI, duration profiles, fraud flags, audit verdicts, open alerts and
open FSAR proposals (blocking first) for a period, as Markdown, JSON or CSV, optionally
mailed (SMTP) or posted (webhook).

The numbers come from the same query and arithmetic code as the screens and the
`roi` / `profile` commands (roi_report.records, profile_report.record), so a figure
never differs between a report and the screen. Money is minor units with its currency
in JSON and CSV — exact: task costs are decimals (JSON numbers, CSV decimal text) —
and decimal with the currency in Markdown, rounded once, half-even, the by-type rows
adding up to the summary as shown; the ROI section says the waste and how many attempts
had no price (roi_report.markdown_lines), the profiles carry their money as ROI does.

Delivery: with --smtp or --webhook the report is first written to a file (--out, else
./fsar-report-<UTC time>.<format>), then delivered; a failed delivery prints one line,
says where the file is, and exits 1 — the file stays. The mail's body is the Markdown
report; a JSON or CSV report is attached as well. The webhook always receives JSON.
Untrusted text (ideas, reasons, indicators, proposal ids and types) passes through
safe_str: inert, and redacted by the one policy; in Markdown every such name is also
escaped (domain/markdown.md_escape), so a gate named `[@click=…](…)` or `_x_` reads as
written, never as a link, emphasis or a table cell of its own. Each fraud flag names
the ideas it is about (`flag_ideas`: ids — the schema holds no idea names), on its
Markdown line and in JSON (`all_ideas`, `ideas`, `unattributed_entries`).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

from fsar_tui.domain import json_decimal
from fsar_tui.domain.attribution import DEFAULT as DEFAULT_METHOD
from fsar_tui.domain.formatting import fine_money, money
from fsar_tui.domain.fraud import ALL_IDEAS, DISPUTE_RATE, Flag
from fsar_tui.domain.markdown import md_escape
from fsar_tui.domain.sanitize import safe_str
from fsar_tui.services.attribution_report import markdown_lines as attribution_markdown
from fsar_tui.services.roi_report import csv_value
from fsar_tui.services.roi_report import markdown_lines as roi_markdown

IDEAS_SHOWN = 5  # on a fraud flag's Markdown line; JSON lists them all


def _plain(value):
    """JSON-able values: dates as ISO text, numerics as text (exact), nested as is; money
    (`*_minor`) stays Decimal — json_decimal writes it as an exact JSON number, as `roi` does."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: v if isinstance(v, Decimal) and _exact(str(k)) else _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return safe_str(value)
    return value


def _exact(key: str) -> bool:
    """Money kept exact (a JSON number): `*_minor`, and a profile's `cost_per_success` (major units)."""
    return key.endswith("_minor") or key == "cost_per_success"


def build(conn, days: int, now: datetime | None = None, method: str = DEFAULT_METHOD) -> dict:
    """The report's content (JSON-able) for the last `days` whole UTC days; `method`: how
    revenue is attributed (domain/attribution.METHODS)."""
    from fsar_tui.db import audit, fraud, proposals
    from fsar_tui.db import profiles as profile_queries
    from fsar_tui.db import roi as roi_queries
    from fsar_tui.domain.profile_money import by_key
    from fsar_tui.services.profile_report import records as profile_records
    from fsar_tui.services.roi_report import records as roi_records

    now = now or datetime.now(UTC)
    first, last = roi_queries.window_days(days, now.date())
    start, end = roi_queries.day_bounds(first, last)
    data = roi_queries.roi_data_sync(conn, first, last)
    found = profile_queries.load_profiles_sync(conn, start, min(end, now), now)
    flags = fraud.fraud_flags_sync(conn, start, end)
    idea_of = {e.id: e.idea_id for e in fraud.flag_entries_sync(conn, [i for f in flags for i in f.entry_ids])}
    return _plain(
        {
            "generated_at": now.replace(microsecond=0),
            "period": {"first_day": first, "last_day": last, "days": days},
            "roi": roi_records(data, "type", method),
            # Money beside the profiles: the ROI section's own rows (the same UTC days).
            "profiles": profile_records(found, ("type", "model"), by_key(data.costs, ("type", "model"))),
            "fraud_flags": [
                {
                    "rule": f.rule,
                    "severity": f.severity,
                    "subject": f.subject,
                    "reason": f.reason,
                    "count": f.count,
                    "entry_ids": list(f.entry_ids),
                    **flag_ideas(f, idea_of),
                }
                for f in flags
            ],
            "audit_gates": audit.latest_verdicts(conn),
            "open_alerts": audit.open_alerts(conn),
            # Whatever their age: an open proposal is open business, blocking ones first.
            "open_proposals": [
                {
                    "id": r.id,
                    "severity": r.severity,
                    "status": r.status,
                    "blocking": r.blocking,
                    "task_type": r.task_type,
                    "reported_at": r.reported_at,
                    "linked_tasks": r.linked,
                }
                for r in sorted(proposals.list_proposals_sync(conn), key=lambda r: not r.blocking)
                if r.status in ("new", "accepted")
            ],
        }
    )


def flag_ideas(flag: Flag, idea_of: dict[int, str | None]) -> dict:
    """Which ideas a fraud flag is about: a dispute-rate flag's idea, or all ideas (its
    subject 'all'); else the ideas of the ledger entries it lists (its newest, at most
    FraudRules.max_entries), most entries first, and how many of those have no idea."""
    if flag.rule == DISPUTE_RATE and flag.subject == ALL_IDEAS:
        return {"all_ideas": True, "ideas": [], "unattributed_entries": 0}
    counts: dict[str, int] = {}
    if flag.rule == DISPUTE_RATE:
        counts[flag.subject] = 0
    unattributed = 0
    for entry_id in flag.entry_ids:
        idea = idea_of.get(entry_id)
        if idea:
            counts[idea] = counts.get(idea, 0) + 1
        elif entry_id in idea_of:
            unattributed += 1
    ideas = sorted(counts, key=lambda i: (-counts[i], i))
    return {"all_ideas": False, "ideas": ideas, "unattributed_entries": unattributed}


def _flag_ideas_text(f: dict, escape=md_escape) -> str:
    """A flag's ideas for its Markdown line (already made safe by `_plain`; `escape`: str
    for CSV)."""
    if f["all_ideas"]:
        return "all ideas"
    ideas = f["ideas"]
    text = ", ".join(escape(i) for i in ideas[:IDEAS_SHOWN])
    if len(ideas) > IDEAS_SHOWN:
        text += f" and {len(ideas) - IDEAS_SHOWN} more"
    text = (f"idea {text}" if len(ideas) == 1 else f"ideas {text}") if ideas else "no idea"
    if ideas and f["unattributed_entries"]:
        text += f" ({f['unattributed_entries']} entries without one)"
    return text


def markdown(rep: dict) -> str:
    p = rep["period"]
    out = [
        f"# fsar-tui report {p['first_day']} .. {p['last_day']} (UTC)",
        "",
        f"Generated {rep['generated_at']}.",
        "",
        "## ROI",
        "",
        f"Attribution: {rep['roi']['attribution_method']}.",
        "",
    ]
    out += roi_markdown(rep["roi"], md_escape)
    out += attribution_markdown(rep["roi"], md_escape)
    out += ["", "## Duration profiles (type × model; percentiles within 0.8 %; money as in ROI)", ""]
    if rep["profiles"]:
        out += [
            (
                "| type | model | runs | p50 s | p90 s | p99 s | failure rate | queue wait p90 s | cost / success | "
                "waste |"
            ),
            "|" + "---|" * 10,
        ]
        for r in rep["profiles"]:
            fail = "-" if r["failure_rate"] is None else f"{100 * r['failure_rate']:.1f} %"
            out.append(
                f"| {md_escape(r['type'])} | {md_escape(r['model'] or '-')} | {r['samples']:,} | {r['p50_s']} | "
                f"{r['p90_s']} | {r['p99_s']} | {fail} | {r['wait_p90_s']} | "
                f"{fine_money(r['cost_per_success_minor'], r['currency'])} | "
                f"{money(r['waste_minor'], r['currency'])}"
                + (
                    f" ({r['unpriced_attempts']:,} attempts without a price or compute rate)"
                    if r["unpriced_attempts"]
                    else ""
                )
                + " |"
            )
    else:
        out.append("No finished tasks in the period.")
    out += ["", "## Fraud flags", ""]
    out += [
        f"- severity {f['severity']}, {f['rule']}, {_flag_ideas_text(f)}: {md_escape(f['reason'])} "
        f"({f['count']} entries)"
        for f in rep["fraud_flags"]
    ] or ["None."]
    out += ["", "## Audit gates (latest verdict)", ""]
    out += [
        f"- {'HARD' if g['hard'] else 'soft'} {md_escape(g['name'])} ({g['metric']} {g['comparator']} "
        f"{g['threshold']}): {g['verdict'] or 'never run'}" + (f", value {g['value']}" if g["value"] else "")
        for g in rep["audit_gates"]
    ] or ["No audit gates defined."]
    out += ["", "## Open alerts", ""]
    out += [
        f"- {a['state']} since {a['opened_at']}: {md_escape(a['indicator'])} {md_escape(json.dumps(a['scope']))} "
        f"(baseline {a['baseline']}, now {a['current']})"
        for a in rep["open_alerts"]
    ] or ["None."]
    out += ["", "## Open FSAR proposals", ""]
    out += [
        f"- {'**BLOCKING** ' if p['blocking'] else ''}severity {p['severity']}, {p['status']}: {md_escape(p['id'])} "
        f"({md_escape(p['task_type'] or '-')}, reported {p['reported_at']}, {p['linked_tasks']} linked tasks)"
        for p in rep["open_proposals"]
    ] or ["None."]
    return "\n".join(out) + "\n"


def csv_text(rep: dict) -> str:
    """One long table: section, name, currency, field, value (spreadsheets pivot it)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "name", "currency", "field", "value"])
    for s in rep["roi"]["summary"]:
        for field, value in s.items():
            if field != "currency":
                w.writerow(["roi", "total", s["currency"], field, csv_value(value)])
    for model, n in rep["roi"]["unpriced_attempts"]["by_model"].items():
        w.writerow(["roi", "unpriced_attempts", "", model, n])
    for r in rep["roi"]["breakdown"]:
        for field, value in r.items():
            if field not in ("type", "currency"):
                w.writerow(["roi_by_type", r["type"], r["currency"], field, csv_value(value)])
    for r in rep["profiles"]:
        name = f"{r['type']} × {r['model'] or '-'}"
        for field, value in r.items():
            if field not in ("type", "model", "currency"):
                w.writerow(["profiles", name, r.get("currency") or "", field, csv_value(value)])
    for f in rep["fraud_flags"]:
        w.writerow(["fraud_flags", f"{f['rule']}:{f['subject']}", "", "reason", f["reason"]])
        w.writerow(["fraud_flags", f"{f['rule']}:{f['subject']}", "", "ideas", _flag_ideas_text(f, str)])
    for g in rep["audit_gates"]:
        w.writerow(["audit_gates", g["name"], "", "verdict", g["verdict"] or "never run"])
    for a in rep["open_alerts"]:
        w.writerow(["open_alerts", a["indicator"], "", a["state"], a["opened_at"]])
    for p in rep["open_proposals"]:
        w.writerow(["open_proposals", p["id"], "", "blocking" if p["blocking"] else p["status"], p["severity"]])
    return out.getvalue()


def render(rep: dict, fmt: str) -> str:
    if fmt == "json":
        return json_decimal.dumps(rep, indent=2) + "\n"
    if fmt == "csv":
        return csv_text(rep)
    return markdown(rep)


MIME = {"md": "text/markdown", "json": "application/json", "csv": "text/csv"}
