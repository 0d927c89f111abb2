"""Did the self-improvement pay? Before/after evidence for one change to a task type (issue 19).

Owns the windows, the comparison and the verdict (before_after_text.py: its lines and
JSON). Pure: db/before_after.py gathers the two windows' sums; the canary judge
(canary_judge.py, canary_stats.py) does the statistics, "after" playing the canary and
"before" the stable revision. The change is an FSAR proposal marked implemented (the
operator log's `proposal.implemented` row: the only record of when) or a rollout
revision becoming active (created, or for a canaried revision from the canary's start
to its promotion); the comparison itself only takes (task type, when).

Windows: whole UTC days, because the money rollups are daily. Before = the
``WINDOW_DAYS`` (7) days ending at the midnight that starts the change's day; after =
as many days from the midnight after the change settled (the change's own day holds
both regimes and is in neither window). While after is still short it ends now (today
partly): the evidence says how many of its days have passed, and for a metric that
cannot decide yet, how many more samples it needs at its current estimate (and how many
days that is at the after window's pace). Both windows hold every task of the type, all
models and revisions; a proposal without a task type compares every type.

Metrics (after / before ratios, < 1 better, except ROI):
- failure rate: failed / (succeeded + failed) finished tasks, from the cost rollups —
  per task, not per attempt as the canary counts (the rollups keep outcomes, not
  attempts); the judge's Katz interval of the rate ratio.
- run time of successful tasks: the duration rollups' log-bucket histograms; the p90s
  are shown, the effect is the whole distribution's shift (the judge's Hodges–Lehmann
  estimate of the Mann–Whitney shift, its interval inverted over bucket shifts).
- cost per success: AI cost (model + compute, as the ROI screen's; failed tasks' cost
  included) / successes, over the succeeded and failed tasks priced in the currency most
  of them use. Its delta-method interval needs Σcost² per
  task, which no rollup holds, so it reads the raw tasks; when retention archived tasks
  of either window it says "history archived" (restore them) instead of a figure over
  the rows left. The other metrics come from rollups, which retention never drops.
- ROI per currency: (revenue attributed to the type − its AI cost) / AI cost, revenue
  split by the ROI screen's method (domain/roi.attribute: each idea's net revenue over
  its tasks by cost, with the window's weights, one day at a time). Its interval: the
  ratio estimator over days, delta method with the days as units, Student t with
  Welch–Satterthwaite degrees of freedom (no bootstrap, so no seed). Shown as the change
  in percentage points; fewer than ``MIN_DAYS`` days in a window: "too few days". Like
  the ROI screen's, AI cost here includes cancelled tasks (the others leave them out).

Intervals are 98.75 % each, so the four together hold at 95 % (Bonferroni): a metric
counts as moved only when its interval excludes no change. Verdict: helped (some better,
none worse), hurt (some worse, none better), mixed, no clear change, or too little data
(under ``MIN_SAMPLES`` per window, or nothing comparable). Other changes to the same type
inside the windows are listed: the comparison cannot tell them apart.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from statistics import NormalDist

from fsar_tui.domain.canary_judge import DEFAULT, ArmSample, JudgeConfig, MetricJudgement, judge
from fsar_tui.domain.canary_stats import ratio_of_means
from fsar_tui.domain.roi import CostRow, LedgerRow, attribute

WINDOW_DAYS = 7
MIN_SAMPLES = 30  # per window and metric (tasks, successful tasks, priced tasks)
MIN_DAYS = 3  # per window, for ROI's day-level interval
FAMILY = 0.95  # the four intervals together
METRICS = ("failure_rate", "run_time", "cost_per_success", "roi")
LEVEL = 1 - (1 - FAMILY) / len(METRICS)  # each interval: 98.75 %
CONFIG = JudgeConfig(
    fail_alpha=DEFAULT.fail_alpha,
    pass_confidence=1 - (1 - LEVEL) / 2,  # the judge's ci is two-sided at 2·pass_confidence − 1
    tolerance=DEFAULT.tolerance,
    margin=DEFAULT.margin,
    min_samples=MIN_SAMPLES,
    look_every=DEFAULT.look_every,
)
LABELS = {"failure_rate": "failure rate", "run_time": "p90 run time", "cost_per_success": "cost/success"}
UNITS = {"failure_rate": "finished tasks", "run_time": "successful tasks", "cost_per_success": "priced tasks"}
DAY = timedelta(days=1)


def _midnight(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Windows:
    """[start, end) of both windows (UTC midnights, but after_end: now while it fills)."""

    changed_at: datetime
    settled_at: datetime  # the change finished (a canary's promotion); = changed_at otherwise
    days: int
    before_start: datetime
    before_end: datetime
    after_start: datetime
    after_end: datetime  # = after_start when nothing after yet

    @property
    def complete(self) -> bool:
        return self.after_end >= self.after_start + self.days * DAY

    @property
    def after_days(self) -> float:
        return max(0.0, (self.after_end - self.after_start) / DAY)

    def day_list(self, after: bool) -> list[date]:
        start, end = (self.after_start, self.after_end) if after else (self.before_start, self.before_end)
        return [(start + i * DAY).date() for i in range(math.ceil((end - start) / DAY))]


def windows(
    changed_at: datetime, now: datetime, days: int = WINDOW_DAYS, settled_at: datetime | None = None
) -> Windows:
    """The windows around a change (module docstring); every time in UTC."""
    if days < 1:
        raise ValueError("windows need at least one day")
    changed_at, now = changed_at.astimezone(UTC), now.astimezone(UTC)
    settled = max((settled_at or changed_at).astimezone(UTC), changed_at)
    before_end = _midnight(changed_at)
    after_start = _midnight(settled) + DAY
    after_end = min(max(now, after_start), after_start + days * DAY)
    return Windows(changed_at, settled, days, before_end - days * DAY, before_end, after_start, after_end)


@dataclass(frozen=True)
class CostMoments:
    """One currency's priced finished tasks (succeeded + failed) of a window, raw tasks."""

    currency: str
    tasks: int
    successes: int
    total: Decimal  # Σ AI cost (minor units)
    total_sq: Decimal
    success_total: Decimal


@dataclass(frozen=True)
class Arm:
    """One window's data as db/before_after.py gathers it."""

    succeeded: int  # finished tasks (rollups)
    failed: int
    run_ms: Mapping[int, int]  # successful tasks' run time, histogram.bucket -> count (rollups)
    costs: Sequence[CostMoments] | None  # raw tasks; None: retention archived some of the window
    money: Mapping[str, Sequence[tuple[Decimal, Decimal]]]  # currency -> per day (AI cost, attributed revenue)


def daily_money(
    task_type: str | None,
    days: Sequence[date],
    type_costs: Sequence[tuple[date, str, Decimal]],
    window_costs: Sequence[CostRow],
    ledger: Mapping[date, Sequence[LedgerRow]],
) -> dict[str, list[tuple[Decimal, Decimal]]]:
    """Per currency, per day of `days`: the type's AI cost, and the revenue attributed to
    it — each day's ledger split by the whole window's cost weights (roi.attribute), so
    the days add up to the window's attribution within a minor unit a day."""
    cost: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    revenue: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for day, currency, amount in type_costs:
        if currency:
            cost[(currency, day)] += amount
    for day in days:
        for ((group_type, _, _), currency), part in attribute(window_costs, ledger.get(day, ())).by_group.items():
            if task_type is None or group_type == task_type:
                revenue[(currency, day)] += part
    currencies = sorted({c for c, _ in cost} | {c for c, _ in revenue})
    return {c: [(cost.get((c, d), Decimal(0)), revenue.get((c, d), Decimal(0))) for d in days] for c in currencies}


@dataclass(frozen=True)
class Comparison:
    metric: str  # one of METRICS
    label: str
    currency: str | None
    before: float | None  # rate (0..1), p90 ms, minor units per success, ROI %
    after: float | None
    effect: float | None  # after / before (ROI: after − before, percentage points)
    ci: tuple[float, float] | None  # LEVEL interval of the effect; 0 / inf: unbounded
    moved: str  # better | worse | no clear change | too little data | not comparable | history archived
    needed: int | None  # more after samples (`unit`) before the interval could exclude no change
    unit: str
    why: str  # one plain line when there is no interval

    @property
    def judged(self) -> bool:
        return self.moved in ("better", "worse", "no clear change")


@dataclass(frozen=True)
class Evidence:
    subject: str  # 'proposal <id>' / 'revision <n> of <target>' (untrusted: shown through safe_str)
    task_type: str | None  # None: every type
    windows: Windows | None
    counts: tuple[tuple[int, int], tuple[int, int]]  # (finished, failed) before, after
    comparisons: tuple[Comparison, ...]
    verdict: str  # helped | hurt | mixed | no clear change | too little data | not available
    summary: str
    other_changes: tuple[tuple[str, datetime], ...] = ()  # (what, when) inside the windows


def unavailable(subject: str, task_type: str | None, why: str, w: Windows | None = None) -> Evidence:
    return Evidence(subject, task_type, w, ((0, 0), (0, 0)), (), "not available", why)


def compare(
    subject: str,
    task_type: str | None,
    w: Windows,
    before: Arm,
    after: Arm,
    other_changes: Sequence[tuple[str, datetime]] = (),
) -> Evidence:
    """The evidence (module docstring): the judge on both arms, ROI by days, the verdict."""
    currency = _main_currency(before, after)
    samples = [_sample(arm, currency) for arm in (after, before)]
    judged = {m.metric: m for m in judge(samples[0], samples[1], CONFIG).metrics}
    rows = [_from_judge(judged[m], samples[0], samples[1], w, after) for m in METRICS[:3]]
    rois = sorted(set(before.money) | set(after.money), key=lambda c: (c != currency, c))
    rows += [_roi(c, before.money.get(c, ()), after.money.get(c, ()), w) for c in rois]
    if not rois:
        rows.append(_blank("roi", "ROI", None, "not comparable", "no priced task of this type in either window"))
    counts = ((before.succeeded + before.failed, before.failed), (after.succeeded + after.failed, after.failed))
    head = rows[:4]  # the four the verdict (and the Bonferroni level) covers: ROI in the main currency
    verdict, summary = _verdict(head, w)
    return Evidence(subject, task_type, w, counts, tuple(rows), verdict, summary, tuple(other_changes))


def _main_currency(before: Arm, after: Arm) -> str | None:
    """The currency most priced tasks of both windows are in (without raw tasks: most cost)."""
    counts: dict[str, float] = defaultdict(float)
    for arm in (before, after):
        for m in arm.costs or ():
            counts[m.currency] += m.tasks
    if not counts:
        for arm in (before, after):
            for c, days in arm.money.items():
                counts[c] += float(sum(x for x, _ in days))
    return max(sorted(counts), key=lambda c: counts[c]) if counts else None


def _sample(arm: Arm, currency: str | None) -> ArmSample:
    m = next((m for m in arm.costs or () if m.currency == currency), None)
    zero = Decimal(0)
    return ArmSample(
        revision=0,
        attempts=arm.succeeded + arm.failed,
        failed_attempts=arm.failed,
        run_ms={b: n for b, n in arm.run_ms.items() if n > 0},
        tokens={},  # not compared: no rollup holds tokens
        tasks=m.tasks if m else 0,
        successes=m.successes if m else 0,
        cost_sum=m.total if m else zero,
        cost_sq_sum=m.total_sq if m else zero,
        success_cost_sum=m.success_total if m else zero,
        currency=currency if m else None,
    )


def _blank(
    metric: str, label: str, currency: str | None, moved: str, why: str, needed: int | None = None
) -> Comparison:
    unit = "days" if metric == "roi" else UNITS[metric]
    return Comparison(metric, label, currency, None, None, None, None, moved, needed, unit, why)


def _n(metric: str, s: ArmSample) -> int:
    return {"failure_rate": s.attempts, "run_time": sum(s.run_ms.values()), "cost_per_success": s.tasks}[metric]


def _from_judge(j: MetricJudgement, a: ArmSample, b: ArmSample, w: Windows, after: Arm) -> Comparison:
    metric, unit = j.metric, UNITS[j.metric]
    label, currency = LABELS[metric], a.currency if metric == "cost_per_success" else None
    n_a, n_b = _n(metric, a), _n(metric, b)
    if metric == "cost_per_success" and after.costs is None:
        return _blank(metric, label, None, "history archived", _ARCHIVED)
    if j.effect is None or j.ci is None:
        if n_a >= MIN_SAMPLES and n_b >= MIN_SAMPLES:
            return _blank(metric, label, currency, "not comparable", j.why)
        short = f"{n_b:,} {unit} before, {n_a:,} after; {MIN_SAMPLES} needed in each"
        needed = MIN_SAMPLES - n_a if n_b >= MIN_SAMPLES and n_a < MIN_SAMPLES else None
        if n_b < MIN_SAMPLES:
            short += " (more after data cannot make up the missing baseline)"
        out = _blank(metric, label, currency, "too little data", short, needed)
        return replace(out, before=j.stable, after=j.canary)
    lo, hi = j.ci
    moved = "worse" if lo > 1 else "better" if hi < 1 else "no clear change"
    needed = None
    if moved == "no clear change" and lo > 0 and math.isfinite(hi):
        z = NormalDist().inv_cdf(CONFIG.pass_confidence)
        se2 = ((math.log(hi) - math.log(lo)) / (2 * z)) ** 2
        var_a, var_b = _shares(metric, a, b)
        share = var_a / (var_a + var_b) if var_a + var_b > 0 else 0.5
        needed = _more(math.log(j.effect), z, share * se2, (1 - share) * se2, n_a)
    return Comparison(metric, label, currency, j.stable, j.canary, j.effect, j.ci, moved, needed, unit, "")


_ARCHIVED = "retention archived raw tasks of these windows (restore them: `fsar-tui retention restore`)"


def _shares(metric: str, a: ArmSample, b: ArmSample) -> tuple[float, float]:
    """Each arm's share of the variance of the log ratio (after, before), up to a factor."""
    if metric == "failure_rate":
        x, n1, y, n2 = a.failed_attempts, a.attempts, b.failed_attempts, b.attempts
        if x == 0 or y == 0:  # Haldane, as the Katz interval
            return 1 / (x + 0.5) - 1 / (n1 + 1), 1 / (y + 0.5) - 1 / (n2 + 1)
        return 1 / x - 1 / n1, 1 / y - 1 / n2
    if metric == "cost_per_success":
        arms = [ratio_of_means(s.tasks, s.cost_sum, s.cost_sq_sum, s.success_cost_sum, s.successes) for s in (a, b)]
        if arms[0] is not None and arms[1] is not None:
            return arms[0][1], arms[1][1]
    return 1 / max(1, _n(metric, a)), 1 / max(1, _n(metric, b))


def _more(est: float, crit: float, var_a: float, var_b: float, n_a: int) -> int | None:
    """More after samples until |est| clears crit × SE, if est holds and var_a ∝ 1/n_a;
    None when no amount does (est = 0, or the before window alone is too noisy)."""
    target = (est / crit) ** 2 - var_b
    if est == 0 or target <= 0 or n_a <= 0:
        return None
    return max(1, math.ceil(n_a * var_a / target - n_a))


# -- ROI: the ratio estimator over days ------------------------------------------------------


def _ratio(days: Sequence[tuple[Decimal, Decimal]]) -> tuple[float, float]:
    """(Σrevenue / Σcost, its delta-method variance with the days as units)."""
    n = len(days)
    sx, sy = sum(float(x) for x, _ in days), sum(float(y) for _, y in days)
    r = sy / sx
    residuals = sum((float(y) - r * float(x)) ** 2 for x, y in days)
    return r, n * residuals / ((n - 1) * sx * sx)


def _roi(
    currency: str, before: Sequence[tuple[Decimal, Decimal]], after: Sequence[tuple[Decimal, Decimal]], w: Windows
) -> Comparison:
    label = f"ROI {currency}"

    def blank(moved: str, why: str, needed: int | None = None) -> Comparison:
        return _blank("roi", label, currency, moved, why, needed)

    if len(before) < MIN_DAYS or len(after) < MIN_DAYS:
        needed = MIN_DAYS - len(after) if len(before) >= MIN_DAYS else None
        return blank(
            "too little data",
            f"too few days: {len(before)} before, {len(after)} after, {MIN_DAYS} needed in each",
            needed,
        )
    for name, days in (("before", before), ("after", after)):
        if sum(x for x, _ in days) <= 0:
            return blank("not comparable", f"no {currency} cost of this type in the {name} window")
    if not any(y for _, y in (*before, *after)):
        return blank("not comparable", "no revenue attributed to this type in either window")
    (r_b, v_b), (r_a, v_a) = _ratio(before), _ratio(after)
    roi_b, roi_a = 100 * (r_b - 1), 100 * (r_a - 1)
    v_b, v_a = 1e4 * v_b, 1e4 * v_a
    diff, var = roi_a - roi_b, v_a + v_b
    denominator = v_a**2 / (len(after) - 1) + v_b**2 / (len(before) - 1)
    df = var**2 / denominator if denominator > 0 else math.inf
    crit = t_quantile(1 - (1 - LEVEL) / 2, df)
    half = crit * math.sqrt(var)
    lo, hi = diff - half, diff + half
    moved = "better" if lo > 0 else "worse" if hi < 0 else "no clear change"
    needed = _more(diff, crit, v_a, v_b, len(after)) if moved == "no clear change" else None
    return Comparison("roi", label, currency, roi_b, roi_a, diff, (lo, hi), moved, needed, "days", "")


def t_quantile(p: float, df: float) -> float:
    """The p-quantile (0.5 ≤ p < 1) of Student's t with df > 0 degrees of freedom (any
    real df: Welch's are fractional), by bisection on the CDF; the normal's for df = inf."""
    if not 0.5 <= p < 1 or not df > 0:
        raise ValueError(f"t_quantile needs 0.5 <= p < 1 and df > 0, got {p}, {df}")
    if math.isinf(df) or df > 1e7:
        return NormalDist().inv_cdf(p)
    lo, hi = 0.0, 1.0
    while t_upper(hi, df) > 1 - p:
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_upper(mid, df) > 1 - p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


def t_upper(t: float, df: float) -> float:
    """P(T ≥ t) for t ≥ 0: ½ I_{df/(df+t²)}(df/2, ½), the regularized incomplete beta."""
    return 0.5 * _beta_inc(df / 2, 0.5, df / (df + t * t))


def _beta_inc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


# -- the verdict -----------------------------------------------------------------------------


def _verdict(head: Sequence[Comparison], w: Windows) -> tuple[str, str]:
    better = [c for c in head if c.moved == "better"]
    worse = [c for c in head if c.moved == "worse"]
    yet = "" if w.complete else f" (after window {w.after_days:.1f} of {w.days} days)"
    unjudged: dict[str, list[str]] = {}
    for c in head:
        if not c.judged:
            unjudged.setdefault(c.moved, []).append(c.label)
    rest = "; ".join(f"{moved}: {', '.join(labels)}" for moved, labels in unjudged.items())
    if not better and not worse:
        if not any(c.judged for c in head):
            return "too little data", f"too little data{yet}: no metric could be judged ({rest})"
        still = ", ".join(f"{c.label} {effect_text(c)}" for c in head if c.judged)
        return "no clear change", f"no clear change{yet}: no interval excludes no change ({still}" + (
            f"; {rest})" if rest else ")"
        )
    verdict = "mixed" if better and worse else "helped" if better else "hurt"
    groups = [("better", better), ("worse", worse)]
    named = [
        f"{kind} on " + (", ".join(f"{c.label} {effect_text(c)}" for c in group) or "none")
        for kind, group in (groups[::-1] if verdict == "hurt" else groups)
    ]
    return verdict, f"{verdict}{yet}: " + "; ".join(named) + (f"; {rest}" if rest else "")


def effect_text(c: Comparison) -> str:
    if c.effect is None:
        return "–"
    return f"{c.effect:+.1f} pts" if c.metric == "roi" else f"×{c.effect:.2f}"
