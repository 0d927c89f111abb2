"""The seed's fixed furniture: rollouts whose revisions changed during the window (one
pins self_improvement's model, then is rolled back) and a few FSAR proposals (the one
real report, seed_report.txt, among them). `fsar-tui seed` (sim/seed.py) lays them
down before the tasks, which link to their ids.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fsar_tui.db import bulk

SEED_REPORT = Path(__file__).with_name("seed_report.txt")


def _sha(obj) -> str:
    from fsar_tui.domain.rollouts import artifact_sha256

    return artifact_sha256(obj)


def setup_rollouts(conn, end: datetime, days: int) -> dict[str | None, list[tuple[float, int, str | None]]]:
    """Rollouts with several revisions; returns per task_type [(from_epoch, revision_id, pinned_model)]."""
    span = timedelta(days=days)
    # (target, kind, task type, [(artifact, created_at, reason)])
    plans: list[tuple[str, str, str | None, list[tuple[dict[str, Any], datetime, str]]]] = [
        (
            "model/self_improvement",
            "model",
            "self_improvement",
            [
                ({"ai_model": "gpt-4o", "temperature": 0.2}, end - span - timedelta(days=1), "initial"),
                (
                    {"ai_model": "claude-3-5-sonnet", "temperature": 0.2},
                    end - span * 0.4,
                    "try claude for self-improvement",
                ),
                ({"ai_model": "gpt-4o", "temperature": 0.2}, end - span * 0.1, "rollback: p90 run time regressed"),
            ],
        ),
        (
            "prompt/implement_idea",
            "prompt",
            "implement_idea",
            [
                (
                    {"prompt_version": "v7", "system": "You implement product ideas as small PRs."},
                    end - span - timedelta(days=1),
                    "initial",
                ),
                (
                    {"prompt_version": "v8", "system": "You implement product ideas as small, tested PRs."},
                    end - span * 0.5,
                    "ask for tests",
                ),
            ],
        ),
        (
            "policy/fleet",
            "policy",
            None,
            [
                ({"max_attempts": 3, "lease_s": 30}, end - span - timedelta(days=1), "initial"),
                ({"max_attempts": 3, "lease_s": 60}, end - span * 0.7, "longer leases for slow models"),
            ],
        ),
    ]
    out: dict[str | None, list[tuple[float, int, str | None]]] = {}
    for target, kind, task_type, revisions in plans:
        ids = bulk.insert_rollout(
            conn, target, kind, task_type, [(art, _sha(art), at, reason) for art, at, reason in revisions]
        )
        out[task_type] = [
            (at.timestamp(), rid, art.get("ai_model")) for (art, at, _), rid in zip(revisions, ids, strict=True)
        ]
    return out


def setup_proposals(conn, end: datetime, days: int) -> list[str]:
    from fsar_tui.domain.fsar_report import parse_report

    seed = parse_report(SEED_REPORT.read_bytes(), str(SEED_REPORT))  # the one real report, as ingest-fsar reads it
    rows: list[dict[str, Any]] = [
        {
            "id": seed.id,
            "severity": seed.severity,
            "block_execution": seed.block_execution,
            "task_type": seed.task_type,
            "body": seed.body,
            "status": "accepted",
            "age_days": days * 0.8,
            "risks": list(seed.risks),
            "mitigations": list(seed.mitigations),
            "lifted": False,
            "sha256": seed.sha256,
        },
        {
            "id": "fsar_seed-0002",
            "severity": 8,
            "block_execution": True,
            "task_type": "idea_implementation",
            "body": "idea_implementation: failures spike after prompt v8; pause until reviewed.",
            "status": "implemented",
            "age_days": days * 0.45,
            "risks": ["Silent defects reach customers"],
            "mitigations": ["Block idea_implementation until the prompt is fixed"],
            "lifted": True,
        },
        {
            "id": "fsar_seed-0003",
            "severity": 3,
            "block_execution": False,
            "task_type": "implement_idea",
            "body": "implement_idea: cache repository checkouts between attempts to cut run time.",
            "status": "new",
            "age_days": 1.5,
            "risks": ["Stale checkouts"],
            "mitigations": ["Verify the cache by commit hash"],
            "lifted": False,
        },
    ]
    for row in rows:
        reported = end - timedelta(days=row["age_days"])
        sha = (
            row.pop("sha256", None) or hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
        )
        bulk.insert_proposal(
            conn,
            {
                **row,
                "reported_at": reported,
                "source_sha256": sha,
                "block_lifted_at": reported + timedelta(hours=6) if row["lifted"] else None,
            },
        )
    return [r["id"] for r in rows]
