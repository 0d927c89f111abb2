"""Retention, pure: the policy as operators write it, the floors no policy may go under,
and the plan of which partitions to drop, each with its reason.

Policy: how long raw rows are kept, per table — `task_events = "14d"`, `tasks = "90d"`
(s, m, h, d or w; `--task-events 36h`). A table without an age is not touched. Rows are
dropped a partition at a time (revision 0029 partitions both tables), never row by row:

- task_events (one partition per UTC day): a day goes when its upper bound is at or
  before the cutoff (now − age) — every event in it is older than the policy;
- execution_tasks (ranges of ids): a range goes when it holds rows, every one of them is
  finished (no queued or running task, nor anything not terminal), the newest instant any
  of them carries (created, queued, started, finished) is before the cutoff, the rollups
  have counted every finished one (none is waiting for `profile --backfill`), no duration
  sample of its time is still unfolded, and it is not the range the next id falls in.
The DEFAULT partitions (rows outside every range) are never dropped.

Floors. Some figures still read raw rows over a window (db/ readers, listed in the
README's Retention section): the "failing now" view reads 24 h of events and their tasks;
audit gates measured on tasks (retry_rate, unpriced_attempts, anomaly_count,
sensitive_results, succeeded_without_result_rate) read their window plus their baseline
window of tasks, and the trust gate also the events of both windows. Every gate counts,
enabled or not (one enabled later reads its window). A policy shorter than any of these is
refused with the reason in one line — retention never changes a figure. A gate whose
reach meets rows already archived (added or edited since the drop) is not measured over
the rows left: archived_problem says "history archived", which `audit gate add` / `set
--enable` refuse with and an evaluation records as the gate's error.

No I/O: db/retention.py gathers the facts, services/retention.py acts on the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fsar_tui.domain.durations import DurationError, parse_window

TASKS = "execution_tasks"
EVENTS = "task_events"
TABLES = (EVENTS, TASKS)
# Policy keys as the CLI and config.toml spell them, per table.
KEYS = {EVENTS: "task_events", TASKS: "tasks"}
TERMINAL = ("succeeded", "failed", "cancelled")

DAY_S = 86400
# The "failing now" view (db/attempts.py): 24 h of failing events joined to their tasks.
FAILING_NOW_S = DAY_S
# Gate metrics measured on the tasks themselves (db/gates.py), and the one that also reads
# the events of its window (trust inflation: "no task_events trail to 'succeeded'").
RAW_TASK_METRICS = frozenset(
    {"retry_rate", "unpriced_attempts", "succeeded_without_result_rate", "anomaly_count", "sensitive_results"}
)
RAW_EVENT_METRICS = frozenset({"succeeded_without_result_rate"})


def format_duration(seconds: int) -> str:
    """An age as written in a policy: days rather than weeks ("14d", "36h", "90m")."""
    for unit, size in (("d", DAY_S), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class RetentionError(ValueError):
    """A policy that cannot be used: the message is one line saying why."""


def parse_age(text: str, what: str) -> int:
    """An age ("14d", "90d", "36h") in seconds; `what` names the option or key."""
    try:
        return parse_window(str(text))
    except DurationError as exc:
        raise RetentionError(f"{what}: {exc}") from None


@dataclass(frozen=True)
class Policy:
    """Seconds of raw rows kept per table; None: that table is not touched."""

    task_events_s: int | None = None
    tasks_s: int | None = None

    def age(self, table: str) -> int | None:
        return self.task_events_s if table == EVENTS else self.tasks_s

    @property
    def empty(self) -> bool:
        return self.task_events_s is None and self.tasks_s is None

    def cutoff(self, table: str, now: datetime) -> datetime | None:
        age = self.age(table)
        return None if age is None else now - timedelta(seconds=age)

    def describe(self) -> dict[str, str | None]:
        return {KEYS[t]: (None if self.age(t) is None else format_duration(self.age(t) or 0)) for t in (EVENTS, TASKS)}


def policy_from(task_events: str | None, tasks: str | None, *, source: str = "") -> Policy:
    """A Policy from the ages as typed; `source` prefixes messages (a flag or a file)."""
    prefix = f"{source}" if source else ""
    return Policy(
        task_events_s=None if task_events is None else parse_age(task_events, f"{prefix}task_events"),
        tasks_s=None if tasks is None else parse_age(tasks, f"{prefix}tasks"),
    )


@dataclass(frozen=True)
class GateReach:
    """An audit gate (enabled or not) as far as retention cares: how far back it reads."""

    name: str
    metric: str
    window_s: int
    baseline_window_s: int | None


@dataclass(frozen=True)
class Floor:
    """The shortest age a table may keep, and the reader that needs it."""

    seconds: int
    reason: str


def floors(gates: Iterable[GateReach]) -> dict[str, Floor]:
    """Per table, the longest window a raw-row reader looks back over."""
    out = {
        EVENTS: Floor(FAILING_NOW_S, "the failing-now view reads 24h of task events"),
        TASKS: Floor(FAILING_NOW_S, "the failing-now view reads the tasks of 24h of failures"),
    }
    for g in gates:
        if g.metric in RAW_TASK_METRICS:
            reach = g.window_s + (g.baseline_window_s or 0)
            if reach > out[TASKS].seconds:
                out[TASKS] = Floor(reach, f"gate {g.name} ({g.metric}) reads {format_duration(reach)} of tasks")
        # The trust gate reads the events of the tasks it measures, in the baseline
        # window as in the current one: its 'succeeded' events are as old as they are.
        if g.metric in RAW_EVENT_METRICS:
            reach = g.window_s + (g.baseline_window_s or 0)
            if reach > out[EVENTS].seconds:
                out[EVENTS] = Floor(reach, f"gate {g.name} ({g.metric}) reads {format_duration(reach)} of events")
    return out


def gate_reach_s(gate: GateReach) -> int:
    """How far back a gate reads raw rows: its window plus its baseline window."""
    return gate.window_s + (gate.baseline_window_s or 0)


def archived_problem(gate: GateReach, archived: dict[str, datetime], now: datetime) -> str | None:
    """Why `gate` cannot be measured over raw rows as of `now` — its window and baseline
    reach back into rows retention archived and dropped — or None. `archived`: per table,
    the newest instant of a dropped, not restored, row (db/retention.archived_reach)."""
    tables = ([TASKS] if gate.metric in RAW_TASK_METRICS else []) + (
        [EVENTS] if gate.metric in RAW_EVENT_METRICS else []
    )
    start = now - timedelta(seconds=gate_reach_s(gate))
    for table in tables:
        newest = archived.get(table)
        if newest is not None and newest >= start:
            return (
                f"history archived: gate {gate.name} reads {KEYS[table]} back to {_day(start)}, but retention "
                f"archived {KEYS[table]} up to {_day(newest)} (restore them with `fsar-tui retention restore`, "
                f"or shorten the gate's window)"
            )
    return None


def refusal(policy: Policy, table_floors: dict[str, Floor]) -> str | None:
    """One line saying why `policy` would change a figure, or None when it is safe."""
    for table in (EVENTS, TASKS):
        age, floor = policy.age(table), table_floors.get(table)
        if age is not None and floor is not None and age < floor.seconds:
            fix = ", or change that gate" if floor.reason.startswith("gate ") else ""
            return (
                f"{KEYS[table]} {format_duration(age)} is shorter than {format_duration(floor.seconds)}: "
                f"{floor.reason} (keep at least {format_duration(floor.seconds)}{fix})"
            )
    return None


Bound = int | datetime | None


@dataclass(frozen=True)
class PartitionFacts:
    """What the plan needs to know of one partition (db/retention.py reads it).

    For task_events only the bounds and `rows` matter; the other fields are the tasks'."""

    table: str
    name: str
    lower: Bound
    upper: Bound
    is_default: bool
    rows: int | None = None  # None: not counted (not needed to decide)
    unfinished: int = 0  # rows not in a terminal status (queued, running, …)
    newest: datetime | None = None  # the latest created/queued/started/finished instant of any row
    uncounted: int = 0  # finished rows the rollups have not counted (a backfill pending)
    unfolded: bool = False  # duration samples not folded yet from its time
    receives_new: bool = False  # the range the next task id falls in
    first_created: datetime | None = None  # the created_at of its lowest id (a cheap look before a scan)
    restored_at: datetime | None = None  # when `retention restore` last brought rows of it back
    blocked: str | None = None  # why no range of the table may go at all (a foreign key into it)


@dataclass(frozen=True)
class Restore:
    """A `retention restore` as retention_log recorded it: the archive's range and when.
    The rows may have gone into a partition of another name (one made for the range, or
    one already covering it): ranges, not names, say which partitions it touched."""

    table: str
    lower: Bound
    upper: Bound
    at: datetime


def _overlaps(a_lower: Bound, a_upper: Bound, b_lower: Bound, b_upper: Bound) -> bool:
    def before(low: Bound, high: Bound) -> bool:  # low < high, an open end never bars
        return low is None or high is None or low < high  # type: ignore[operator]

    return before(a_lower, b_upper) and before(b_lower, a_upper)


def last_restore(facts: PartitionFacts, restores: Iterable[Restore]) -> datetime | None:
    """When rows of `facts`' range were last restored, or None."""
    times = [r.at for r in restores if r.table == facts.table and _overlaps(r.lower, r.upper, facts.lower, facts.upper)]
    return max(times, default=None)


@dataclass(frozen=True)
class Decision:
    facts: PartitionFacts
    drop: bool
    reason: str


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if (at.hour or at.minute) else at.strftime("%Y-%m-%d")


def decide(facts: PartitionFacts, policy: Policy, now: datetime) -> Decision:
    """Drop this partition or keep it, and why (one line either way)."""
    cutoff = policy.cutoff(facts.table, now)
    age = policy.age(facts.table)

    def keep(reason: str) -> Decision:
        return Decision(facts, False, reason)

    if facts.is_default:
        return keep("the DEFAULT partition (rows outside every range) is never dropped")
    if cutoff is None or age is None:
        return keep(f"no {KEYS[facts.table]} retention configured")
    within = format_duration(age)
    if facts.blocked:
        return keep(facts.blocked)
    # An operator restored it to look at it: the restore counts as new, or the next
    # scheduled pass would archive it again under their feet.
    if facts.restored_at is not None and facts.restored_at > cutoff:
        return keep(f"restored {_day(facts.restored_at)}: kept {within} from its restore")
    if facts.table == EVENTS:
        if not isinstance(facts.upper, datetime):
            return keep("open-ended range (MAXVALUE): never past the policy")
        if facts.upper > cutoff:
            return keep(f"events up to {_day(facts.upper)}: within {within}")
        return Decision(facts, True, f"every event before {_day(facts.upper)}, older than {within}")
    if facts.receives_new:
        return keep("the range the next task id falls in")
    if facts.first_created is not None and facts.first_created >= cutoff:
        return keep(f"its first task was created {_day(facts.first_created)}: within {within}")
    if facts.rows == 0:
        return keep("empty: nothing to archive")
    if facts.unfinished:
        return keep(f"{facts.unfinished:,} task(s) queued, running or not finished: never dropped")
    if facts.newest is None or facts.newest >= cutoff:
        newest = "unknown" if facts.newest is None else _day(facts.newest)
        return keep(f"its newest task changed {newest}: within {within}")
    if facts.uncounted:
        return keep(
            f"{facts.uncounted:,} finished task(s) not counted by the rollups yet (run `fsar-tui profile --backfill`)"
        )
    if facts.unfolded:
        return keep("duration samples of its time not folded into the rollups yet (next run)")
    return Decision(
        facts, True, f"{facts.rows or 0:,} finished task(s), the newest {_day(facts.newest)}: older than {within}"
    )


def plan(partitions: Sequence[PartitionFacts], policy: Policy, now: datetime) -> list[Decision]:
    """A decision for every partition, in the order given."""
    return [decide(p, policy, now) for p in partitions]


def format_bound(bound: Bound) -> str:
    """A bound as shown and as written in a manifest: an id, an ISO instant, MIN/MAXVALUE."""
    if bound is None:
        return "-"
    if isinstance(bound, datetime):
        return bound.isoformat()
    return str(bound)
