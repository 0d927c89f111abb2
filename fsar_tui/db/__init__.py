"""The data layer: the only place in fsar-tui that holds SQL.

`connect` opens connections and pools and turns driver errors into one-line messages;
`migrations` runs Alembic (with legacy adoption); `preflight` checks existing rows
against constraints a pending revision will add; `server` reads server facts.
"""
