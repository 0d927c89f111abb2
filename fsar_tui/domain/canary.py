"""Canary arithmetic that is not statistics (that is domain/canary_judge.py): reading a
deployed artifact and the steps an operator types, what the judge does with a verdict,
and the words the CLI and screen 4 use for a canary's state.

- An artifact is untrusted input: at most MAX_ARTIFACT_BYTES (1 MiB), UTF-8, one JSON
  object, nested at most MAX_DEPTH levels, with finite numbers and strings PostgreSQL's
  jsonb can hold (no NUL, no lone surrogate). Anything else is refused with one line
  before anything is written.
- Steps: "10,50,100" — 1 to 20 weights in 1..100, strictly increasing, ending at 100
  (the last step is the promotion: the canary revision becomes the active one).
- The judge's rule per analysis (`next_move`): fail → abort at once; pass → promote when
  the step has run its interval, and the target is not manual (else hold and say why);
  inconclusive or error → hold the weight, saying why. Missing evidence never promotes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fsar_tui.domain.json_text import depth_over

MAX_ARTIFACT_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_STEPS = 20
# The judge runs in the audit pass (every minute in an open panel, or `fsar-tui audit
# run` from cron): an analysis older than this says the judge is not running.
STALE_AFTER_S = 300


@dataclass(frozen=True)
class Canary:
    """A canary as db/canaries reads it."""

    id: int
    target: str
    task_type: str | None
    state: str  # running | promoted | aborted
    canary_revision: int
    stable_revision: int
    canary_revision_id: int
    stable_revision_id: int
    steps: list[int]
    step: int
    weight: int
    interval_s: int
    manual: bool
    started_at: datetime
    started_by: str
    start_reason: str
    step_started_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None
    judgement: dict[str, Any] | None
    judged_at: datetime | None
    hold_reason: str | None
    judged_by: str | None  # the role that recorded the judgement (revision 0036)
    pass_at: datetime | None  # the newest verdict any audit pass recorded: the judge runs in the pass
    now: datetime  # the database's clock when read
    claimed: dict[str, int] = field(default_factory=dict)  # tasks stamped per side this step: canary, stable


class ArtifactError(ValueError):
    """Why an artifact file cannot be deployed (one line)."""


def parse_artifact(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"the artifact is {len(data):,} bytes; at most {MAX_ARTIFACT_BYTES:,} (1 MiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"the artifact is not UTF-8 (byte {exc.start})") from None

    def refuse_constant(name: str) -> Any:
        raise ArtifactError(f"the artifact is not valid JSON: {name} is not a JSON number")

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except ArtifactError:
        raise
    except RecursionError:
        raise ArtifactError(f"the artifact is nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ArtifactError(f"the artifact is not valid JSON: {exc.msg} ({where})") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ArtifactError(f"the artifact is not valid JSON: {str(exc).split(':')[0]}") from None
    if not isinstance(value, dict):
        raise ArtifactError(f"the artifact must be a JSON object, not {type(value).__name__}")
    if depth_over(value, MAX_DEPTH):
        raise ArtifactError(f"the artifact is nested deeper than {MAX_DEPTH} levels")
    _check_storable(value)
    return value


def _check_storable(value: Any) -> None:
    """jsonb refuses NUL and lone surrogates; JSON has no infinity (1e400 parses as one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += list(item.keys()) + list(item.values())
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, float) and not math.isfinite(item):
            raise ArtifactError("the artifact holds a number too large for JSON (it parses as infinity)")
        elif isinstance(item, str):
            if "\x00" in item:
                raise ArtifactError("the artifact holds a NUL character (\\u0000), which PostgreSQL cannot store")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ArtifactError("the artifact holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None


class StepsError(ValueError):
    """Why a --steps text is refused (one line)."""


def parse_steps(text: str, first: int | None = None) -> list[int]:
    """'10,50,100' → [10, 50, 100]; `first` (--canary WEIGHT) is put in front when the
    steps do not start with it."""
    parts = text.split(",") if text.strip() else []
    if any(not part.strip() for part in parts):
        raise StepsError(f"steps {text[:40]!r}: an empty weight between commas")
    try:
        steps = [int(part) for part in parts]
    except ValueError:
        raise StepsError(f"steps {text[:40]!r}: comma-separated whole percentages, e.g. 10,50,100") from None
    if first is not None and (not steps or steps[0] != first):
        steps = [first, *steps]
    if not 1 <= len(steps) <= MAX_STEPS:
        raise StepsError(f"steps: 1 to {MAX_STEPS} weights")
    if any(not 1 <= s <= 100 for s in steps):
        raise StepsError("steps: each weight between 1 and 100 (%)")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise StepsError("steps must increase")
    if steps[-1] != 100:
        raise StepsError("steps must end at 100 (the promotion)")
    return steps


@dataclass(frozen=True)
class Move:
    action: str | None  # 'promote' | 'abort' | None (hold)
    hold: str | None  # why the weight holds (None when it moves)


def next_move(
    verdict: str,
    *,
    why: str,
    step_started_at: datetime,
    interval_s: int,
    manual: bool,
    now: datetime,
    weight: int,
) -> Move:
    if verdict == "fail":
        return Move("abort", None)
    if verdict == "pass":
        due = step_started_at + timedelta(seconds=interval_s)
        if now < due:
            return Move(None, f"passed; the step runs its interval: promotes after {due:%H:%M:%S} UTC")
        if manual:
            return Move(None, f"passed; waiting for an operator's promote (P) at {weight} %")
        return Move("promote", None)
    if verdict == "error":
        return Move(None, f"the judge could not analyse ({why}); weight held at {weight} %")
    return Move(None, f"inconclusive ({why}); weight held at {weight} %")


def staleness(
    judged_at: datetime | None, step_started_at: datetime, now: datetime, pass_at: datetime | None = None
) -> str | None:
    """Why the screen should doubt the judgement: neither an analysis nor an audit pass
    (`pass_at`: the newest verdict any pass recorded) for STALE_AFTER_S. A pass that ran
    without analysing is the judge waiting for look_every canary attempts (a slow canary),
    not a judge that stopped."""
    seen = [t for t in (judged_at, pass_at) if t is not None]
    since = max(seen) if seen else step_started_at
    age = (now - since).total_seconds()
    if age <= STALE_AFTER_S:
        return None
    what = "no analysis and no audit pass" if not seen else "the last analysis or audit pass was"
    return f"{what} {int(age // 60)} min ago: is an audit pass running? The weight holds meanwhile"


def judgement_json(judgement: Any) -> dict[str, Any]:
    """A Judgement (domain/canary_judge.py) as JSON-safe data: non-finite floats → None."""

    def clean(value: Any) -> Any:
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, tuple | list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if hasattr(value, "__dataclass_fields__"):
            return {k: clean(getattr(value, k)) for k in value.__dataclass_fields__}
        return value

    out: dict[str, Any] = clean(judgement)
    return out


def weight_line(state: str, weight: int, step: int, steps: list[int]) -> str:
    if state == "promoted":
        return "promoted: 100 %"
    if state == "aborted":
        return "aborted: 0 % (all traffic on stable)"
    return f"{weight} % (step {step + 1} of {len(steps)}: {' → '.join(str(s) for s in steps)})"
