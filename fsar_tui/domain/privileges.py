"""The privilege declaration: what each fsar role may do to each table and function — the
one statement of it. The README's privilege tables are rendered from it (a test compares
them), the privilege-matrix test asserts the database grants exactly this (every table ×
role × SELECT/INSERT/UPDATE/DELETE/TRUNCATE, every function × role) and `fsar-tui
security-audit` compares it with the database it audits. Revision 0020 wrote the grants;
a change here needs a revision that changes them, or those tests and the audit fail.

The roles include each other: fsar_admin ⊃ fsar_operator ⊃ fsar_viewer. "No fsar grant"
is any other login (PUBLIC): it may do nothing here. Beyond the matrix, every grant of
every fsar object to any other role is judged by `judge_grant` (db/privileges.
undeclared_grants enumerates them with aclexplode): the integration contract's writers
(the fleet, the Stripe ingestion) may hold the few grants INTEGRATION_TABLES names, a
member of an fsar role none of its own; sequences as SEQUENCE_RIGHTS says; a partition (revision
0029: execution_tasks and task_events are partitioned) is not a table of the matrix: the fsar
roles and PUBLIC hold no grant on one (its parent's are what they use), another role only
what it may hold on the parent. fsar_viewer may SELECT every table
and view; beyond that the only direct writes are the admin's anonymization columns.
Every other change goes through the SECURITY DEFINER functions (db/action_functions.py,
db/governance_functions.py), which check the transition and write the operator log.
Pure data and rendering: standard library only.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace

VIEWER, OPERATOR, ADMIN = "fsar_viewer", "fsar_operator", "fsar_admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
PUBLIC = "public"  # any login without an fsar grant: has_*_privilege('public', …)
VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
WRITE_VERBS = VERBS[1:]

# Every table and view of the schema at head (the matrix test fails on one not listed).
TABLES = (
    "active_rollout_revisions",
    "alembic_version",
    "audit_gate_overrides",
    "audit_gates",
    "audit_runs",
    "canary_analyses",
    "compute_rates",
    "cost_rollups",
    "drift_alerts",
    "duration_rollups",
    "duration_sketch_dirty",
    "duration_sketches",
    "execution_blocks",
    "execution_tasks",
    "fraud_velocity",
    "fsar_proposals",
    "idea_completion_days",
    "ledger_daily",
    "ledger_entries",
    "live_gate_overrides",
    "model_prices",
    "notify_attempts",
    "notify_deliveries",
    "notify_events",
    "notify_states",
    "operator_actions",
    "operator_log_encodings",
    "operator_log_head",
    "payment_funnel_daily",
    "retention_log",
    "rollout_canaries",
    "rollout_revisions",
    "rollout_routes",
    "rollouts",
    "rollup_state",
    "stripe_events",
    "task_count_deltas",
    "task_counts",
    "task_duration_samples",
    "task_events",
)

# The direct writes, beyond fsar_viewer's SELECT everywhere: table → role → rights, a
# right being a verb or a verb with its columns ("UPDATE (payload)").
WRITES: dict[str, dict[str, tuple[str, ...]]] = {
    "execution_tasks": {ADMIN: ("UPDATE (error, payload, result)",)},
    "ledger_entries": {ADMIN: ("UPDATE (metadata)",)},
    "stripe_events": {ADMIN: ("UPDATE (payload)",)},
}


@dataclass(frozen=True)
class FunctionRight:
    signature: str  # as regprocedure prints it
    role: str | None  # the least role that may EXECUTE it (the roles above it too); None: its owner only
    what: str


FUNCTIONS: tuple[FunctionRight, ...] = (
    FunctionRight("fsar_sample_metrics(task_duration_samples)", VIEWER, "profile reads: a sample's metrics"),
    FunctionRight("fsar_task_sample(execution_tasks,smallint)", VIEWER, "rollup checks: a task as a sample"),
    FunctionRight("fsar_duration_bucket(double precision)", VIEWER, "histogram bucket of a duration"),
    FunctionRight("fsar_log_field(text)", VIEWER, "the log's hash input (pure)"),
    FunctionRight(
        "fsar_operator_actions_hash(text,bigint,timestamp with time zone,text,text,text,text,text,text,jsonb,"
        "jsonb,text)",
        VIEWER,
        "a log row's hash (pure)",
    ),
    FunctionRight("fsar_operator_actions_verify()", VIEWER, "the database's own walk of the log"),
    FunctionRight("fsar_task_action(text,bigint[],text[],text,text,text)", OPERATOR, "retry / cancel / requeue"),
    FunctionRight("fsar_rollout_rollback(text,integer,integer,text,text)", OPERATOR, "rollback / roll-forward"),
    FunctionRight(
        "fsar_rollout_deploy(text,jsonb,text,integer,integer[],integer,boolean,text,text)",
        OPERATOR,
        "deploy a revision, at once or as a canary",
    ),
    FunctionRight("fsar_canary_decide(text,bigint,integer,text,text,text,jsonb)", OPERATOR, "promote / abort a canary"),
    FunctionRight(
        "fsar_canary_record(bigint,integer,text,numeric,jsonb,text)", OPERATOR, "the canary judge's analyses"
    ),
    FunctionRight(
        "fsar_record_verdict(bigint,numeric,numeric,text,bigint,jsonb,text)", OPERATOR, "the audit pass's verdicts"
    ),
    FunctionRight("fsar_prune_audit_runs(integer,interval)", OPERATOR, "verdict retention (the audit pass)"),
    FunctionRight("fsar_drift_alert_raise(text,jsonb,numeric,numeric,jsonb)", OPERATOR, "drift alerts: open"),
    FunctionRight("fsar_drift_alert_resolve(text,jsonb,numeric,text)", OPERATOR, "drift alerts: resolve"),
    FunctionRight("fsar_drift_alert_ack(bigint,text,text)", OPERATOR, "drift alerts: acknowledge"),
    FunctionRight(
        "fsar_proposal_ingest(text,timestamp with time zone,integer,boolean,text,text,jsonb,jsonb,jsonb,text,text,"
        "text)",
        OPERATOR,
        "ingest FSAR reports",
    ),
    FunctionRight("fsar_proposal_decide(text,text,text,text,text)", OPERATOR, "accept / reject / implemented"),
    FunctionRight("fsar_proposal_lift_block(text,text,text)", OPERATOR, "lift a proposal's block"),
    FunctionRight("fsar_proposal_tick(text,integer,boolean,text,text)", OPERATOR, "tick or untick a checklist item"),
    FunctionRight("fsar_gate_override(text,text,timestamp with time zone,text)", ADMIN, "override a blocking gate"),
    FunctionRight(
        "fsar_gate_add(text,text,jsonb,bigint,text,numeric,boolean,bigint,text,text,text)", ADMIN, "add a gate"
    ),
    FunctionRight("fsar_gate_set(text,boolean,boolean,text,numeric,text,text)", ADMIN, "change a gate"),
    FunctionRight("fsar_record_reveal(text,text,text)", ADMIN, "log a reveal of raw data"),
    FunctionRight("fsar_log_anonymize(text,text,text,jsonb,text)", ADMIN, "log an anonymization"),
    FunctionRight(
        "fsar_ensure_partitions(timestamp with time zone,bigint,integer)",
        OPERATOR,
        "partition maintenance (the audit pass)",
    ),
    FunctionRight(
        "fsar_notify_claim(text,text,text,jsonb,jsonb,text[],text[])",
        OPERATOR,
        "notifications: claim a state change (the audit pass)",
    ),
    FunctionRight("fsar_notify_take(text[],integer,integer)", OPERATOR, "notifications: lease due deliveries"),
    FunctionRight("fsar_notify_record(bigint,uuid,boolean,integer,text)", OPERATOR, "notifications: record an attempt"),
    FunctionRight("fsar_backfill_rollups(bigint)", None, "rollup backfill (the owner's `profile --backfill`)"),
    FunctionRight("fsar_create_task_partition(bigint,bigint)", None, "partitions: one range of task ids"),
    FunctionRight(
        "fsar_create_event_partition(timestamp with time zone,timestamp with time zone)",
        None,
        "partitions: one range of event times",
    ),
    FunctionRight("fsar_cover_task_ids(bigint,bigint)", None, "partitions: the gaps of an id range (seed)"),
    FunctionRight(
        "fsar_cover_event_days(timestamp with time zone,timestamp with time zone)",
        None,
        "partitions: the gaps of a day range (seed)",
    ),
    FunctionRight("fsar_compact_task_counts()", None, "housekeeping, from the task triggers"),
    FunctionRight("fsar_fold_duration_samples()", None, "housekeeping, from the task triggers"),
    FunctionRight("fsar_rebuild_sketches()", None, "housekeeping"),
    FunctionRight("fsar_close_blocks_and_rebuild_sketches()", None, "housekeeping"),
    FunctionRight("fsar_task_status_changed()", None, "trigger: task events, NOTIFY"),
    FunctionRight("fsar_task_counts_changed()", None, "trigger: queue counters"),
    FunctionRight("fsar_task_counts_truncated()", None, "trigger: queue counters"),
    FunctionRight("fsar_task_rollups_changed()", None, "trigger: duration samples"),
    FunctionRight("fsar_price_attempt()", None, "trigger: an attempt's exact cost, waste"),
    FunctionRight("fsar_model_price_at(text,timestamp with time zone)", None, "pricing: the price in force"),
    FunctionRight(
        "fsar_model_price_in(text,text,timestamp with time zone)", None, "pricing: the price in force in a currency"
    ),
    FunctionRight("fsar_compute_rate_at(text,timestamp with time zone)", None, "pricing: the compute rate in force"),
    FunctionRight("fsar_token_cost(bigint,bigint,numeric,numeric)", None, "pricing: tokens × price (pure)"),
    FunctionRight(
        "fsar_priced_tokens(text,timestamp with time zone,bigint,bigint)", None, "pricing: tokens at the price then"
    ),
    FunctionRight(
        "fsar_run_cost(timestamp with time zone,timestamp with time zone,numeric)", None, "pricing: run time × rate"
    ),
    FunctionRight("fsar_ledger_daily_changed()", None, "trigger: ledger rollup"),
    FunctionRight("fsar_bulk_loader()", None, "triggers: is this the owner's bulk load"),
    FunctionRight("fsar_fraud_velocity_changed()", None, "trigger: fraud velocity state"),
    FunctionRight("fsar_stripe_event_funnel()", None, "trigger: payment funnel rollup"),
    FunctionRight("fsar_control_changed()", None, "trigger: NOTIFY of rollouts and blocks"),
    FunctionRight("fsar_override_changed()", None, "trigger: NOTIFY of overrides"),
    FunctionRight("fsar_canary_changed()", None, "trigger: NOTIFY of canaries"),
    FunctionRight("fsar_reject_change()", None, "trigger: append-only tables"),
    FunctionRight("fsar_operator_actions_chain()", None, "trigger: the log's hash chain"),
    FunctionRight("fsar_operator_log_head_guard()", None, "trigger: the log's head"),
)

# Sequences: fsar_viewer (and the roles that include it) may SELECT them — read where an
# id sequence stands; no fsar role may take or set a value.
SEQUENCE_RIGHTS: dict[str, tuple[str, ...]] = {VIEWER: ("SELECT",)}

# Roles outside the fsar roles. The integration contract (README: "The executing side")
# has the fleet and the Stripe ingestion write the tables below with roles of their own,
# not fsar roles: such a role may be granted SELECT on any table, view or sequence,
# INSERT and UPDATE (whole or columns) on these tables and USAGE on their id sequences —
# nothing else (no DELETE, TRUNCATE, REFERENCES or TRIGGER, no other table, no fsar
# function, no grant option). A role that is a member of an fsar role — a login the
# panel's users log in as — holds no grant of its own: its rights are its fsar role's.
INTEGRATION_TABLES = ("execution_tasks", "ledger_entries", "stripe_events")
OUTSIDE_WRITES = ("INSERT", "UPDATE")
# Membership in this predefined role writes every table of every database it can connect
# to: any non-superuser member (but the schema's owner) is a problem. pg_read_all_data is
# not judged: the roles protect writes, not reads (a viewer reads every row), and backup
# roles hold it.
WRITE_ALL = "pg_write_all_data"


@dataclass(frozen=True)
class Grant:
    """One aclexplode() row of an fsar object, its owner aside."""

    kind: str  # table, view, sequence, column, function, schema; partition (of a partitioned table)
    name: str  # the table / sequence / function (regprocedure text) / schema
    column: str | None
    grantee: str  # a role name, or PUBLIC
    privilege: str  # SELECT, INSERT, … USAGE, CREATE, EXECUTE
    grantable: bool
    sequence_of: str | None = None  # a sequence: the table whose id it feeds
    member_of: tuple[str, ...] = ()  # the fsar roles the grantee belongs to (directly or not)
    partition_of: str | None = None  # a partition: its parent table


def judge_grant(g: Grant) -> str | None:
    """Why this grant is outside the declaration, or None. Grants of the matrix's verbs on
    tables, views and columns and EXECUTE on functions to the fsar roles and PUBLIC are
    the matrix's business (`compare`) and pass here."""
    where = f"{g.kind} {g.name}" + (f" ({g.column})" if g.column else "")
    line = f"{g.grantee} may {g.privilege} on {where}"
    if g.kind == "partition":
        if g.grantee in ROLES or g.grantee == "PUBLIC" or g.member_of:
            return f"{line}: not in the declaration — the panel's roles reach a partition's rows through its parent"
        # A role outside the fsar roles: judged as the same grant on the parent would be.
        g = replace(g, kind="column" if g.column else "table", name=g.partition_of or g.name)
    if g.grantable:
        return f"{line} WITH GRANT OPTION: not in the declaration"
    if g.kind == "schema":
        return None if g.privilege == "USAGE" else f"{line}: not in the declaration (objects could be planted)"
    declared_role = g.grantee in ROLES or g.grantee == "PUBLIC"
    if declared_role:
        if g.kind in ("table", "view", "column") and g.privilege in VERBS:
            return None  # the matrix
        if g.kind == "function" and g.privilege == "EXECUTE":
            return None  # the matrix
        if g.kind == "sequence" and g.privilege in SEQUENCE_RIGHTS.get(g.grantee, ()):
            return None
        return f"{line}: not in the declaration"
    if g.member_of:
        role = max(g.member_of, key=lambda r: RANK.get(r, -1))  # the widest: the others are in it
        return (
            f"{line}: not in the declaration — a member of {role} holds no grant of its own (its rights are {role}'s)"
        )
    if g.privilege == "SELECT" and g.kind in ("table", "view", "column", "sequence"):
        return None
    if g.kind in ("table", "column") and g.name in INTEGRATION_TABLES and g.privilege in OUTSIDE_WRITES:
        return None
    if g.kind == "sequence" and g.privilege == "USAGE" and g.sequence_of in INTEGRATION_TABLES:
        return None
    return (
        f"{line}: not in the declaration — a role outside the fsar roles may SELECT, and INSERT/UPDATE "
        f"{', '.join(INTEGRATION_TABLES)} only"
    )


RANK = {None: 99, VIEWER: 0, OPERATOR: 1, ADMIN: 2, PUBLIC: -1}


def includes(role: str, other: str) -> bool:
    """Does `role` have what `other` is granted (itself, or a role it includes)?"""
    return role in ROLES and other in ROLES and RANK[role] >= RANK[other]


def table_rights(table: str, role: str) -> frozenset[str]:
    """What `role` (an fsar role or PUBLIC) may do to `table`, as declared."""
    if role not in ROLES:
        return frozenset()
    rights = {"SELECT"}
    for granted_to, granted in WRITES.get(table, {}).items():
        if includes(role, granted_to):
            rights.update(granted)
    return frozenset(rights)


def may_execute(function: FunctionRight, role: str) -> bool:
    return function.role is not None and includes(role, function.role)


def compare(
    actual_tables: dict[tuple[str, str], frozenset[str]], actual_functions: dict[tuple[str, str], bool]
) -> list[str]:
    """Every difference between the database (as db/privileges.actual_rights reads it) and
    the declaration, one line each; [] when they agree."""
    problems = []
    tables = {t for t, _ in actual_tables}
    for table in sorted(tables ^ set(TABLES)):
        problems.append(f"table {table} is {'not declared' if table in tables else 'declared but missing'}")
    for (table, role), rights in sorted(actual_tables.items()):
        if table not in TABLES:
            continue
        want = table_rights(table, role)
        if rights != want:
            extra = ", ".join(sorted(rights - want))
            missing = ", ".join(sorted(want - rights))
            problems.append(
                f"{role} on {table}: "
                + "; ".join(([f"may {extra}"] if extra else []) + ([f"may not {missing}"] if missing else []))
                + f" (declared: {', '.join(sorted(want)) or 'nothing'})"
            )
    declared = {f.signature: f for f in FUNCTIONS}
    functions = {f for f, _ in actual_functions}
    for sig in sorted(functions ^ set(declared)):
        problems.append(f"function {sig} is {'not declared' if sig in functions else 'declared but missing'}")
    for (sig, role), can in sorted(actual_functions.items()):
        if sig in declared and can != may_execute(declared[sig], role):
            problems.append(f"{role} {'may' if can else 'may not'} EXECUTE {sig} (declared: the opposite)")
    return problems


def _cell(rights: frozenset[str]) -> str:
    return ", ".join(sorted(rights, key=lambda r: VERBS.index(r.split()[0]))) or "—"


def render_markdown() -> str:
    """The README's privilege tables (between its `privileges` markers)."""
    header = f"| {{}} | {' | '.join(f'`{r}`' for r in ROLES)} | no fsar grant |"
    rule = "|---" * (len(ROLES) + 2) + "|"
    lines = [header.format("table or view"), rule]
    for table in TABLES:
        cells = [_cell(table_rights(table, r)) for r in (*ROLES, PUBLIC)]
        lines.append(f"| `{table}` | {' | '.join(cells)} |")
    lines += ["", f"| function | {' | '.join(f'`{r}`' for r in ROLES)} | no fsar grant | what for |", rule + "---|"]
    for f in FUNCTIONS:
        cells = ["EXECUTE" if may_execute(f, r) else "—" for r in (*ROLES, PUBLIC)]
        lines.append(f"| `{f.signature}` | {' | '.join(cells)} | {f.what} |")
    sequences = "; ".join(f"`{r}` {', '.join(v)}" for r, v in SEQUENCE_RIGHTS.items())
    integration = ", ".join(f"`{t}`" for t in INTEGRATION_TABLES)
    beyond = (
        f"Sequences: {sequences} (and the roles that include it); nothing else for any fsar role or PUBLIC. "
        "Roles outside the fsar roles (the fleet, the Stripe ingestion — the integration contract): SELECT on "
        f"any table, view or sequence; {' and '.join(OUTSIDE_WRITES)} on {integration}; USAGE on their id "
        "sequences; nothing else. A role that is a member of an fsar role holds no grant of its own. Every fsar "
        "table, view, sequence and function is owned by the migrating role (the owner of `alembic_version`), "
        "which is no fsar role nor a member of one; no other role may CREATE in the schema or hold a grant "
        f"option, and no role but superusers and that owner may be a member of `{WRITE_ALL}`."
    )
    lines += ["", *textwrap.wrap(beyond, width=88, break_on_hyphens=False)]
    return "\n".join(lines) + "\n"
