"""The CLI face: one module per command family, each registering its own sub-parsers.

Every module listed in FAMILIES has `register(sub, common)`; handlers are
`handler(args, ctx) -> int` (commands/base.py). Order is the order of `--help`.
No module here imports Textual or aiomqtt at import time (a test checks `sys.modules`).
"""

from __future__ import annotations

import importlib

from fsar_tui.commands.base import Parser

FAMILIES = (
    "schema",
    "fleet",
    "tasks",
    "profile",
    "roi",
    "report",
    "stripe",
    "rollouts",
    "audit",
    "log",
    "proposals",
    "governance",
    "retention",
    "metrics",
    "serve",
)
# Modules whose commands live under another family's (`fsar-tui rollouts deploy`,
# `rollouts canary …`): module → the family that calls its `register(family_sub, common)`.
SUBFAMILIES = {"canary": "rollouts"}


def register_all(sub, common: Parser) -> None:
    for family in FAMILIES:
        importlib.import_module(f"fsar_tui.commands.{family}").register(sub, common)
