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
from dataclasses import dataclass
from datetime import datetime


def artifact_sha256(artifact: object) -> str:
    """sha256 of the artifact's canonical JSON (sorted keys) — how revisions are stamped."""
    return hashlib.sha256(json.dumps(artifact, sort_keys=True).encode()).hexdigest()


def default_target(active: int | None) -> int | None:
    """Without --to, a rollback goes to the revision before the active one (Helm's rule)."""
    return active - 1 if active is not None and active > 1 else None


def move_kind(to_origin: int, active_origin: int) -> str:
    """A move's name from the *original* revisions behind the target and the active one
    (copies followed to the revision first written): older content is a rollback, newer a
    roll-forward; the same content (a copy of what runs) counts as a rollback."""
    return "roll-forward" if to_origin > active_origin else "rollback"


def artifact_diff(current: object, chosen: object, current_label: str, chosen_label: str) -> list[str]:
    """Unified diff of the two artifacts as pretty JSON (what the rollback changes)."""
    a = json.dumps(current, sort_keys=True, indent=2, ensure_ascii=False).splitlines()
    b = json.dumps(chosen, sort_keys=True, indent=2, ensure_ascii=False).splitlines()
    return list(difflib.unified_diff(a, b, current_label, chosen_label, lineterm="", n=2))


@dataclass(frozen=True)
class Preview:
    """What a rollback (or roll-forward) would do; db/rollouts.preview reads it."""

    target: str
    active: int
    to: int
    current_artifact: object
    chosen_artifact: object
    in_flight: int  # tasks of the target's type running now
    last_verdicts: list[tuple[str, str | None, datetime | None]]  # (gate, verdict, at) for gates scoped to the type
    kind: str = "rollback"  # or "roll-forward": move_kind, as the operator log names it
    canary: tuple[int, int] | None = None  # a running canary (its revision, weight): the move aborts it


def preview_lines(p: Preview, kind: str | None = None) -> list[str]:
    """What a rollback would do, as the CLI prints it and the screen's dialog shows it:
    rollback or roll-forward (p.kind), the revision it goes to, the artifact diff, tasks
    in flight, the last verdicts of the gates in scope. Untrusted text: callers strip
    controls."""
    kind = kind or p.kind
    lines = [f"{kind} {p.target}: revision {p.active} (active) -> a new revision copying revision {p.to}"]
    lines += [
        f"  {line}"
        for line in artifact_diff(
            p.current_artifact, p.chosen_artifact, f"revision {p.active} (active)", f"revision {p.to}"
        )
        or ["(artifacts are identical)"]
    ]
    lines.append(f"tasks of this type in flight: {p.in_flight}")
    if p.canary is not None:
        lines.append(f"a canary runs (revision {p.canary[0]} at {p.canary[1]} %): the {kind} aborts it")
    verdicts = ", ".join(f"{g}: {v or 'never run'}" for g, v, _ in p.last_verdicts) or "no gates in scope"
    lines.append(f"last gate verdicts: {verdicts}")
    return lines
