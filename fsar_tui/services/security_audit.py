"""The deployment checks of `fsar-tui security-audit`: the app's role is not a superuser
(nor BYPASSRLS); operator_actions refuses UPDATE and DELETE to it (attempted, rolled
back); the read-only role fsar_viewer cannot write and the three roles exist as NOLOGIN;
TLS when the host is not local (judged by where the session really went); the operator
log's hash chain verifies — recomputed here, against the head the database keeps — and
its protections hold (services/log_integrity.py: only the shipped triggers, enabled; no
rule, policy or inheritance; owned by the migrating role; functions the shipped ones);
the state-changing functions are the shipped ones; no fsar function is executable by
PUBLIC; and the grants are exactly the declared ones (domain/privileges.py, the README's
table): the matrix for fsar_viewer, fsar_operator, fsar_admin and PUBLIC, then EVERY
grantee of every fsar table, column, sequence and function (aclexplode over the ACLs:
a login holding fsar_operator granted UPDATE on execution_tasks directly is named, with
the privilege and the object), the owners (every fsar object the migrating role's) and
the members of pg_write_all_data.

Nothing here calls a function of ours to decide: a replaced function would run as the
auditing role and could answer anything."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def security_checks(conn, dsn: str) -> list[Check]:
    from fsar_tui.db import governance
    from fsar_tui.dsn import tls_verdict

    role, superuser, bypass = governance.role_facts(conn)
    powers = [p for p, has in (("SUPERUSER", superuser), ("BYPASSRLS", bypass)) if has]
    checks = [
        Check(
            "app role is not a superuser",
            not powers,
            f"role {role}" + (f" has {' and '.join(powers)}" if powers else ""),
        )
    ]
    attempts = governance.try_change_operator_actions(conn)
    leaks = {verb: what for verb, what in attempts.items() if what}
    checks.append(
        Check(
            "operator_actions rejects UPDATE and DELETE",
            not leaks,
            "; ".join(f"{v}: {w}" for v, w in leaks.items()) or f"both refused for {role}",
        )
    )
    writable = governance.viewer_write_privileges(conn)
    roles = governance.roles_present(conn)
    missing = [r for r, login in roles.items() if login is None]
    login = [r for r, can in roles.items() if can]
    problems = (
        ([f"missing role(s) {', '.join(missing)} (run fsar-tui migrate)"] if missing else [])
        + ([f"{', '.join(login)} can log in (must be NOLOGIN)"] if login else [])
        + (
            [f"fsar_viewer can write {', '.join(writable[:5])}" + ("…" if len(writable) > 5 else "")]
            if writable
            else []
        )
    )
    checks.append(
        Check(
            "read-only role cannot write",
            not problems,
            "; ".join(problems) or "fsar_viewer: SELECT only; roles NOLOGIN",
        )
    )
    ok, detail = tls_verdict(
        dsn, connected_host=conn.info.hostaddr or conn.info.host, tls_in_use=bool(conn.pgconn.ssl_in_use)
    )
    checks.append(Check("TLS for remote connections", ok, detail))
    from fsar_tui.services.log_integrity import check_log

    log = check_log(conn, ask_database=False)
    checks.append(
        Check(
            "operator log hash chain verifies",
            log.verdict.ok,
            (
                f"intact: {log.verdict.rows:,} rows, last seq {log.verdict.last_seq}, matches the head"
                if log.verdict.ok
                else f"{log.verdict.problem} (fsar-tui log verify)"
            )
            + "".join(f"; {n}" for n in log.notes),
        )
    )
    checks.append(
        Check(
            "operator log's triggers and functions are the shipped ones",
            not log.problems,
            "; ".join(log.problems)
            or "only the shipped triggers, enabled; no rule, policy or other owner; functions match the shipped source",
        )
    )
    from fsar_tui.db import (
        action_functions,
        canary_functions,
        governance_functions,
        notify_functions,
        partition_functions,
        privileges,
    )
    from fsar_tui.domain import privileges as declared

    # Revision 0035 re-created the rollback (it aborts a running canary): its text is the head's.
    head = [fn for fn in action_functions.HEAD if fn.name not in {f.name for f in canary_functions.HEAD}]
    shipped = canary_functions.HEAD + governance_functions.FUNCTIONS + partition_functions.FUNCTIONS
    replaced = privileges.shipped_function_problems(conn, head + list(shipped + notify_functions.FUNCTIONS))
    checks.append(
        Check(
            "state-changing functions are the shipped ones",
            not replaced,
            "; ".join(replaced[:5]) + ("…" if len(replaced) > 5 else "")
            or "source, SECURITY DEFINER and search_path as shipped",
        )
    )
    public = privileges.public_executable(conn)
    checks.append(
        Check(
            "no fsar function is executable by PUBLIC",
            not public,
            f"PUBLIC may EXECUTE {', '.join(public[:5])}" + ("…" if len(public) > 5 else "")
            if public
            else "EXECUTE granted to fsar roles only",
        )
    )
    differences = privileges.undeclared_grants(conn) + privileges.owner_problems(conn)
    differences += declared.compare(*privileges.actual_rights(conn, (*declared.ROLES, declared.PUBLIC)))
    checks.append(
        Check(
            "grants are exactly the declared ones",
            not differences,
            "; ".join(differences[:5]) + (f"; … {len(differences) - 5} more" if len(differences) > 5 else "")
            or "every table and function × role as the README's privilege table says",
        )
    )
    return checks
