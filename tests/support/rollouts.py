"""The rollout target the rollback tests share (the `rollout_db` fixture in conftest.py):
prompt/implement_idea with two revisions, the second active; and reading it back."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from fsar_tui.db import bulk
from fsar_tui.domain.rollouts import artifact_sha256
from support.sql import q

V1 = {"prompt_version": "v7", "system": "You implement product ideas as small PRs.", "temperature": 0.2}
V2 = {
    "prompt_version": "v8",
    "system": "You implement product ideas as small, tested PRs — «ünïcode».",
    "temperature": 0.25,
    "tools": ["git", "pytest"],
}


def insert_rollout(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        bulk.insert_rollout(
            conn,
            "prompt/implement_idea",
            "prompt",
            "implement_idea",
            [(V1, artifact_sha256(V1), at, "initial"), (V2, artifact_sha256(V2), at, "ask for tests")],
        )


def revisions(dsn):
    return q(
        dsn,
        """SELECT rr.revision, rr.artifact::text, rr.sha256, rr.rollback_of FROM rollout_revisions rr
                     JOIN rollouts r ON r.id = rr.rollout_id WHERE r.target = 'prompt/implement_idea'
                     ORDER BY rr.revision""",
    )


def active(dsn):
    return q(dsn, "SELECT active_revision FROM rollouts WHERE target = 'prompt/implement_idea'")[0][0]
