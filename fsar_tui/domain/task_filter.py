"""The queue screen's filter language, parsed into a `TaskFilter` (pure; SQL is in db/).

    status:failed type:self_improvement model:gpt-4o since:2h error~timeout

Terms are separated by spaces; values with spaces are quoted (`error~"connection
refused"`). `key:value` (or `key=value`, as in `:queue status=failed`) matches
exactly, and a comma lists alternatives (`status:failed,cancelled`); `key~text`
matches a case-insensitive substring. Keys:

    status   queued | running | succeeded | failed | cancelled
    type     task_type          model   ai_model          worker   worker_id
    idea     idea_id            id      task id           since    age: 30s 15m 2h 7d 4w
    priority the claim's priority (integers; higher runs first)
    error~   text in the error  payload~  text in the payload JSON

A bare word means `error~word`. Anything else is a `FilterError` naming the term.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, fields
from typing import Any

from fsar_tui.domain.durations import DurationError, format_duration, parse_duration

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
EXACT_KEYS = {
    "status": "statuses",
    "type": "types",
    "model": "models",
    "worker": "workers",
    "idea": "ideas",
    "id": "ids",
    "priority": "priorities",
}
TEXT_KEYS = {"error": "error_contains", "payload": "payload_contains"}


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class TaskFilter:
    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    ideas: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    priorities: tuple[int, ...] = ()
    since_s: int | None = None
    error_contains: str | None = None
    payload_contains: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return self == TaskFilter()

    def to_query(self) -> str:
        """The filter written back in the language (parse(to_query()) == self)."""
        terms = []
        for key, attr in EXACT_KEYS.items():
            values = getattr(self, attr)
            if values:
                terms.append(f"{key}:{_quote(','.join(str(v) for v in values))}")
        if self.since_s is not None:
            terms.append(f"since:{format_duration(self.since_s)}")
        for key, attr in TEXT_KEYS.items():
            value = getattr(self, attr)
            if value is not None:
                terms.append(f"{key}~{_quote(value)}")
        return " ".join(terms)


def _quote(value: str) -> str:
    return shlex.quote(value) if value == "" or re.search(r"[\s'\"\\]", value) else value


def parse_filter(text: str) -> TaskFilter:
    try:
        terms = shlex.split(text)
    except ValueError as exc:
        raise FilterError(f"unbalanced quotes in filter: {exc}") from None
    values: dict[str, Any] = {}  # TaskFilter's keyword arguments
    for term in terms:
        m = re.match(r"^([a-z_]+)\s*(~|:|=)(.*)$", term, re.S)
        if not m:
            _set_text(values, "error_contains", term)
            continue
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "~":
            if key not in TEXT_KEYS:
                raise FilterError(f"{key!r} does not support ~ (use error~ or payload~)")
            _set_text(values, TEXT_KEYS[key], value)
        elif key == "since":
            try:
                values["since_s"] = parse_duration(value)
            except DurationError as exc:
                raise FilterError(str(exc)) from None
        elif key in EXACT_KEYS:
            items = [v for v in value.split(",") if v != ""]
            if not items:
                raise FilterError(f"{key}: needs a value")
            if key == "status":
                bad = [v for v in items if v not in STATUSES]
                if bad:
                    raise FilterError(f"unknown status {bad[0]!r}; use one of {', '.join(STATUSES)}")
            if key == "id":
                if not all(v.isdigit() for v in items):
                    raise FilterError(f"id: expects numbers, got {value!r}")
                items = [int(v) for v in items]
            if key == "priority":
                if not all(re.fullmatch(r"-?\d{1,5}", v) and -32768 <= int(v) <= 32767 for v in items):
                    raise FilterError(f"priority: expects integers from -32768 to 32767, got {value!r}")
                items = [int(v) for v in items]
            attr = EXACT_KEYS[key]
            values[attr] = tuple(dict.fromkeys([*values.get(attr, ()), *items]))
        else:
            known = ", ".join([*EXACT_KEYS, "since", *(k + "~" for k in TEXT_KEYS)])
            raise FilterError(f"unknown filter key {key!r}; known: {known}")
    return TaskFilter(**{f.name: values[f.name] for f in fields(TaskFilter) if f.name in values})


def _set_text(values: dict[str, Any], attr: str, text: str) -> None:
    values[attr] = f"{values[attr]} {text}" if attr in values else text
