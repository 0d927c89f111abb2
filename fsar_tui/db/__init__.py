"""The data layer: the only place in fsar-tui that holds SQL.

`connect` opens connections and pools and turns driver errors into one-line messages;
`migrations` runs Alembic (with legacy adoption); `preflight` checks existing rows
against constraints a pending revision will add; `server` reads server facts; one
module of parameterized SQL per domain (tasks, actions, profiles, roi, gates, drift,
rollouts, proposals, governance, operator_log, …).

Naming rule for twins: where a read exists both for the app (async, psycopg's
AsyncConnection) and for the CLI or a thread (sync), the async one has the plain name and
the sync one ends in `_sync` (`latest` / `latest_sync`). A function with no twin has the
plain name whatever it is. Rows a screen unpacks are typed (`class_row` dataclasses).
"""
