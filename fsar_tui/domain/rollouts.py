"""Rollout arithmetic: artifact hashes, which revision a rollback goes to, the preview diff.

A rollout target (a model, prompt, policy or config the agents run) has numbered
revisions with full artifact snapshots; a rollback or roll-forward never rewrites
history, it appends a revision whose artifact is a copy of the chosen one (as Helm
does). Pure: the database work is in db/rollouts.py.
"""

from __future__ import annotations

import difflib
import hashlib
import json


def artifact_sha256(artifact: object) -> str:
    """sha256 of the artifact's canonical JSON (sorted keys) — how revisions are stamped."""
    return hashlib.sha256(json.dumps(artifact, sort_keys=True).encode()).hexdigest()


def default_target(active: int | None) -> int | None:
    """Without --to, a rollback goes to the revision before the active one (Helm's rule)."""
    return active - 1 if active is not None and active > 1 else None


def artifact_diff(current: object, chosen: object, current_label: str, chosen_label: str) -> list[str]:
    """Unified diff of the two artifacts as pretty JSON (what the rollback changes)."""
    a = json.dumps(current, sort_keys=True, indent=2).splitlines()
    b = json.dumps(chosen, sort_keys=True, indent=2).splitlines()
    return list(difflib.unified_diff(a, b, current_label, chosen_label, lineterm="", n=2))
