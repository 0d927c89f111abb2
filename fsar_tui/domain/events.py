"""The messages live sources deliver, and how raw payloads become them.

NOTIFY payloads (written by the database trigger) and MQTT messages (published by
workers, DESIGN.md §4) carry the same facts under slightly different names; both
parse into `TaskChange`. Anything malformed is dropped (it is a hint, not the truth:
the database is), and counted so the header can show it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class TaskChange:
    id: int
    task_type: str
    ai_model: str | None
    from_status: str | None
    to_status: str
    attempt: int
    at: str | None = None
    duration_ms: int | None = None
    cost: int | None = None


@dataclass(frozen=True)
class ControlChange:
    """A rollout switch or a change of execution blocks."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Presence:
    worker_id: str
    state: str
    data: dict[str, Any]


@dataclass
class Batch:
    """What a consumer receives: coalesced task changes plus control and presence.

    `resync` means a source (re)connected and events may have been missed: reload the
    state from the database. `raw_events` is how many events this batch stands for.
    """

    tasks: list[TaskChange] = field(default_factory=list)
    control: list[ControlChange] = field(default_factory=list)
    presence: list[Presence] = field(default_factory=list)
    resync: bool = False
    raw_events: int = 0


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_notify(payload: str) -> TaskChange | ControlChange | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("kind")
    if kind == "task":
        task_id, attempt = _int(data.get("id")), _int(data.get("attempt"))
        if task_id is None or attempt is None or data.get("to") not in STATUSES:
            return None
        return TaskChange(task_id, str(data.get("type")), data.get("model"), data.get("from"), data["to"], attempt)
    if kind in ("rollout", "block"):
        return ControlChange(kind, data)
    return None


def task_message(change: TaskChange) -> dict[str, Any]:
    """The MQTT JSON body for a transition (DESIGN.md §4, plus `from`)."""
    return {
        "id": change.id,
        "task_type": change.task_type,
        "ai_model": change.ai_model,
        "status": change.to_status,
        "from": change.from_status,
        "attempt": change.attempt,
        "at": change.at,
        "duration_ms": change.duration_ms,
        "cost": change.cost,
    }


def topic_segment(name: str) -> str:
    """A name (a rollout target, a task type: operator or agent text) in an MQTT topic:
    percent-encoded but for `/` — targets are named like paths (`prompt/implement_idea`)
    and the topics documented as `…/rollouts/{target}` keep their levels — so `+`, `#`,
    NUL and controls cannot become wildcards or break the publish; at most 200 characters."""
    return quote(name[:200], safe="/")


def task_topic(change: TaskChange) -> str:
    return f"fsar/v1/tasks/{change.task_type}/{change.to_status}"


def parse_mqtt(topic: str, payload: bytes) -> TaskChange | ControlChange | Presence | None:
    parts = topic.split("/")
    try:
        data = json.loads(payload.decode("utf-8")) if payload else {}
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if parts[:3] == ["fsar", "v1", "tasks"] and len(parts) == 5:
        task_id, attempt = _int(data.get("id")), _int(data.get("attempt"))
        status = data.get("status")
        if task_id is None or attempt is None or status not in STATUSES:
            return None
        return TaskChange(
            task_id,
            str(data.get("task_type", parts[3])),
            data.get("ai_model"),
            data.get("from"),
            status,
            attempt,
            data.get("at"),
            _int(data.get("duration_ms")),
            _int(data.get("cost")),
        )
    if parts[:3] == ["fsar", "v1", "workers"] and len(parts) >= 4:
        return Presence("/".join(parts[3:]), str(data.get("state", "offline")), data)
    if parts[:3] == ["fsar", "v1", "control"]:
        return ControlChange(parts[3] if len(parts) > 3 else "control", data)
    return None
