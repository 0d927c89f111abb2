"""The canary judge: is a rollout target's canary revision worse than its stable one?

Owns the verdict of one look at a canary step (Kayenta's model — per-metric verdicts
rolled into a score and an overall verdict — with our statistics): canary and stable arms
over the same window (since the current step started), four built-in metrics plus any
``extra`` judgements (gate metrics) computed elsewhere; and ``canary_bucket``, the task →
arm assignment the SQL side computes too. Pure: no I/O; the arms arrive as sums and
log-bucket histograms (histogram.py), as the database aggregates them. The primitives
live in canary_stats.py; the error rates the defaults give are measured by
canary_simulation.py and re-measured by tests/test_canary_error_rates.py.

Every metric is a ratio canary / stable, > 1 worse, judged by two one-sided questions:

- FAIL when "canary worse than stable × tolerance" is shown at ``fail_alpha`` (p <
  fail_alpha). The judge looks again every ``look_every`` canary attempts and never
  corrects for it, so fail_alpha is strict, and the tolerance means a canary exactly as
  good as stable sits a margin away from the null: together they keep false aborts under
  1 % over a whole rollout (measured, not assumed).
- PASS when non-inferiority is shown: the one-sided ``pass_confidence`` upper bound of the
  ratio is ≤ ``margin``. A canary that is much worse cannot show that before it fails.
- else INCONCLUSIVE, with ``needed`` (below). Under ``min_samples`` in either arm, or with
  nothing to compare (no successes, no priced tasks, mixed currencies), always
  inconclusive: never a pass on no data.

``ci`` is the two-sided interval at level 2·pass_confidence − 1 (90 % for 0.95): its
upper end is exactly the one-sided bound the PASS rule compares with the margin.

The metrics and their statistics:

- failure_rate (attempts): rate ratio; p from the exact conditional binomial test of the
  ratio against the tolerance (exact at small counts, conservative for binomial data);
  interval by the Katz log method, ½ added to each cell when a count is 0.
- run_time (successful attempts' run-time histograms; figure p90 ms) and tokens (per
  finished task; figure the median): Mann–Whitney U between the histograms, bins as tied
  groups, the canary shifted down by round(log tol / log γ) buckets for the fail test
  and by floor(log margin / log γ) for the pass test; effect = γ^HL (Hodges–Lehmann
  shift on the log scale, whole buckets); interval by inverting the test over bucket
  shifts. Resolution one bucket: effect and bounds are within γ − 1 ≈ 1.6 % of the
  continuous answers, and the tolerance and margin are rounded to a whole bucket
  (≤ 0.8 %; the margin downwards, so rounding never makes a pass).
- cost_per_success (finished tasks): R = Σcost / successes per arm; log(R_c / R_s) with
  the delta-method variance from the sums; normal tests and interval on that log ratio.

``needed`` (inconclusive only) counts more canary *attempts*, the unit of the rollout's
traffic and of look_every: from the current estimate and standard error, assuming both
shrink as 1/√n at the current split, the first n at which either rule would decide (the
pass bound reaching the margin, or the fail test reaching fail_alpha, by its normal
approximation); metrics counted in tasks or successful attempts convert with the
canary's own attempts per sample. Below min_samples it is the shortfall. None when no
amount of data decides at the current estimate (it sits between margin and tolerance,
or there is no variance to scale, e.g. no failures in either arm: a failure-free stable
arm cannot anchor a ratio).

Overall: FAIL if any metric fails; PASS if every metric (extra included) passes; else
INCONCLUSIVE with needed = the largest of the inconclusive metrics'. Score = 100 ×
passes / metrics.

DEFAULT, and why (error rates measured by canary_simulation.py, steps 10 % → 50 %):

- fail_alpha 0.001: a rollout is 10–30 looks × 4 metrics; at 0.001 an identical canary
  is aborted in 0.12 % of rollouts (6 of 5,000), by failure_rate noise, while a canary
  failing twice as often is still aborted in 98 % within 1,000 canary attempts.
- tolerance ×1.10 everywhere: an equal canary sits log 1.1 from every fail null, which is
  what makes repeated looks affordable once the samples are in the hundreds.
- margin ×1.50 for failure_rate: at a 6 % base rate a ratio bound of 1.5 takes ~1,000
  canary attempts over both steps (a bound of 1.2 would take ~6× more); a 2× canary was
  never promoted. ×1.10 for run_time, tokens and cost_per_success: their log-scale
  spread (σ ≈ 0.4–0.5) bounds them within 10 % from ~100 samples.
- pass_confidence 0.95: the usual one-sided non-inferiority level.
- min_samples 80: below it the normal approximations (rank test, delta method) are not
  trusted; 80, not 100, so the first look (100 attempts, ~94 successful) can decide.
- look_every 100: the cadence the error rates were measured at; looking more often
  raises the false-abort rate and the judge's cost, less often delays every decision.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from types import MappingProxyType

from fsar_tui.domain.canary_stats import (
    Ranks,
    first_shift,
    katz_log_ratio,
    rate_ratio_p,
    ratio_of_means,
    upper_p,
)
from fsar_tui.domain.histogram import GAMMA, LOG_GAMMA, quantile

CANARY_METRICS = ("failure_rate", "run_time", "cost_per_success", "tokens")
VERDICTS = ("pass", "fail", "inconclusive")
_Z = NormalDist()


def canary_bucket(canary_id: int, task_id: int) -> float:
    """Where task_id falls in canary canary_id's traffic split, in [0, 1): the first 32
    bits of md5("<canary_id>:<task_id>") over 2³². A task runs on the canary revision when
    this is < weight / 100, so raising the weight keeps every canary task on the canary.
    The SQL side computes the same number (the same md5 prefix read as an integer)."""
    digest = hashlib.md5(f"{canary_id}:{task_id}".encode()).hexdigest()
    return int(digest[:8], 16) / 2**32


@dataclass(frozen=True)
class ArmSample:
    """One revision's work finished in the window."""

    revision: int  # the revision number (for display)
    attempts: int  # attempts that ended in the window (succeeded, failed, or retried)
    failed_attempts: int  # of those, the ones that did not succeed
    run_ms: Mapping[int, int]  # histogram.bucket(run time ms) -> count, successful attempts
    tokens: Mapping[int, int]  # histogram.bucket(input+output tokens) -> count, per finished task
    tasks: int  # finished tasks (succeeded + failed) in the window
    successes: int  # succeeded tasks
    cost_sum: Decimal  # Σ cost_minor over those finished tasks (exact minor units, waste included)
    cost_sq_sum: Decimal  # Σ cost_minor²
    success_cost_sum: Decimal  # Σ cost_minor over the succeeded tasks
    currency: str | None  # the one currency these sums are in (None: no priced tasks)


@dataclass(frozen=True)
class JudgeConfig:
    """The judge's rules; DEFAULT holds the values whose error rates are measured."""

    fail_alpha: float  # one-sided level per metric per look for FAIL (strict: the judge looks many times)
    pass_confidence: float  # one-sided confidence of the non-inferiority bound for PASS
    tolerance: Mapping[str, float]  # per metric: degradation ratio tolerated before a FAIL is possible
    margin: Mapping[str, float]  # per metric: PASS when the upper bound of canary/stable ≤ margin
    min_samples: int  # minimum canary samples per metric (and per arm) before anything but inconclusive
    look_every: int  # new canary attempts between two analyses (the cadence the error rates assume)

    def __post_init__(self) -> None:
        if not 0 < self.fail_alpha < 0.5:
            raise ValueError(f"fail_alpha must be in (0, 0.5), got {self.fail_alpha}")
        if not 0.5 < self.pass_confidence < 1:
            raise ValueError(f"pass_confidence must be in (0.5, 1), got {self.pass_confidence}")
        for name in ("tolerance", "margin"):
            table = getattr(self, name)
            missing = [m for m in CANARY_METRICS if m not in table]
            if missing or any(not (v > 0 and math.isfinite(v)) for v in table.values()):
                raise ValueError(f"{name} needs a positive finite ratio for each of {CANARY_METRICS}")
        if self.min_samples < 1 or self.look_every < 1:
            raise ValueError("min_samples and look_every must be at least 1")


DEFAULT = JudgeConfig(
    fail_alpha=0.001,
    pass_confidence=0.95,
    tolerance=MappingProxyType({"failure_rate": 1.10, "run_time": 1.10, "cost_per_success": 1.10, "tokens": 1.10}),
    margin=MappingProxyType({"failure_rate": 1.50, "run_time": 1.10, "cost_per_success": 1.10, "tokens": 1.10}),
    min_samples=80,
    look_every=100,
)


@dataclass(frozen=True)
class MetricJudgement:
    """One metric's verdict at one look."""

    metric: str  # 'failure_rate' | 'run_time' | 'cost_per_success' | 'tokens' | 'gate:<name>'
    verdict: str  # 'pass' | 'fail' | 'inconclusive'
    canary: float | None  # failure rate (0..1), p90 run time (ms), cost per success (minor units), median tokens
    stable: float | None
    effect: float | None  # canary/stable ratio estimate (1 = no change; > 1 = worse for all four metrics)
    ci: tuple[float, float] | None  # two-sided (2·pass_confidence − 1) interval of the ratio; 0 / inf: unbounded
    p_value: float | None  # one-sided p of "canary worse than stable × tolerance"
    needed: int | None  # inconclusive: estimated more canary attempts to decide (None otherwise / unknown)
    why: str  # one plain line


@dataclass(frozen=True)
class Judgement:
    verdict: str  # 'pass' | 'fail' | 'inconclusive'
    score: float  # 0..100: % of judged metrics that pass
    metrics: tuple[MetricJudgement, ...]
    needed: int | None  # more canary attempts before the verdict can change from inconclusive
    summary: str  # one line


def judge(
    canary: ArmSample, stable: ArmSample, config: JudgeConfig = DEFAULT, extra: Sequence[MetricJudgement] = ()
) -> Judgement:
    """The verdict of one look: per metric, then overall (see the module docstring)."""
    metrics = (*_built_in(canary, stable, config, full=True), *extra)
    for m in extra:
        if m.verdict not in VERDICTS:
            raise ValueError(f"{m.metric}: verdict must be one of {VERDICTS}, got {m.verdict!r}")
    # A fleet that prices no model has no cost to compare, however long it waits: with
    # enough tasks on both sides and no priced task on either, cost per success is left
    # out of the verdict (and said so) rather than holding every canary for ever. Too few
    # tasks, or prices on one side only, still hold it.
    unpriced = _unpriced(canary, stable, config)
    if unpriced:
        metrics = tuple(m for m in metrics if m.metric != "cost_per_success")
    verdict = _overall(m.verdict for m in metrics)
    passes = sum(m.verdict == "pass" for m in metrics)
    waits = [m.needed for m in metrics if m.verdict == "inconclusive" and m.needed is not None]
    needed = max(waits) if verdict == "inconclusive" and waits else None
    summary = _summary(verdict, metrics, needed)
    if unpriced:
        summary += "; cost per success not judged: no priced task on either side (model_prices)"
    return Judgement(verdict, 100.0 * passes / len(metrics), metrics, needed, summary)


def decide(canary: ArmSample, stable: ArmSample, config: JudgeConfig = DEFAULT) -> str:
    """judge(...).verdict without the figures only a reader needs (effects, intervals,
    needed, why): the same tests, for the simulation's many looks."""
    unpriced = _unpriced(canary, stable, config)
    built_in = _built_in(canary, stable, config, full=False)
    return _overall(m.verdict for m in built_in if not (unpriced and m.metric == "cost_per_success"))


def _unpriced(c: ArmSample, s: ArmSample, cfg: JudgeConfig) -> bool:
    return c.currency is None and s.currency is None and min(c.tasks, s.tasks) >= cfg.min_samples


def _overall(verdicts: Iterable[str]) -> str:
    seen = set(verdicts)
    if "fail" in seen:
        return "fail"
    return "pass" if seen == {"pass"} else "inconclusive"


def _built_in(c: ArmSample, s: ArmSample, cfg: JudgeConfig, full: bool) -> tuple[MetricJudgement, ...]:
    for arm in (c, s):
        if min(arm.run_ms.values(), default=0) < 0 or min(arm.tokens.values(), default=0) < 0:
            raise ValueError("histogram counts cannot be negative")
        if not (0 <= arm.failed_attempts <= arm.attempts and 0 <= arm.successes <= arm.tasks):
            raise ValueError(f"revision {arm.revision}: counts out of range (failed ≤ attempts, successes ≤ tasks)")
    succeeded = sum(c.run_ms.values())
    per_task = c.attempts / c.tasks if c.tasks else 1.0
    per_success = c.attempts / succeeded if succeeded else 1.0
    return (
        _failure_rate(c, s, cfg),
        _shift_metric("run_time", c.run_ms, s.run_ms, 0.9, per_success, cfg, full),
        _cost_per_success(c, s, cfg, per_task),
        _shift_metric("tokens", c.tokens, s.tokens, 0.5, per_task, cfg, full),
    )


# -- one metric --------------------------------------------------------------------


def _levels(cfg: JudgeConfig) -> tuple[float, float]:
    return _Z.inv_cdf(cfg.pass_confidence), _Z.inv_cdf(1 - cfg.fail_alpha)


def _short(
    metric: str, n_c: int, n_s: int, cfg: JudgeConfig, per: float, figures: tuple[float | None, float | None], what: str
) -> MetricJudgement:
    """Inconclusive below min_samples: needed = the canary's shortfall (the stable arm's,
    scaled to the canary at the current split, if that is larger), in attempts."""
    short = cfg.min_samples - n_c
    if n_s < cfg.min_samples:
        short = max(short, math.ceil((cfg.min_samples - n_s) * n_c / n_s) if n_s and n_c else cfg.min_samples)
    needed = max(1, math.ceil(short * per))
    why = f"{what}: {n_c} canary vs {n_s} stable, {cfg.min_samples} needed in each"
    return MetricJudgement(metric, "inconclusive", figures[0], figures[1], None, None, None, needed, why)


def _needed(n: int, est: float, se: float, metric: str, cfg: JudgeConfig, per: float) -> int | None:
    """More canary attempts until a rule decides if est holds and se ∝ 1/√n (docstring)."""
    if se <= 0 or not math.isfinite(se):
        return None
    z_pass, z_fail = _levels(cfg)
    log_m, log_t = math.log(cfg.margin[metric]), math.log(cfg.tolerance[metric])
    totals = []
    if est < log_m:
        totals.append(n * (z_pass * se / (log_m - est)) ** 2)
    if est > log_t:
        totals.append(n * (z_fail * se / (est - log_t)) ** 2)
    if not totals:
        return None
    return max(1, math.ceil((min(totals) - n) * per))


def _verdict(p: float, upper: float, metric: str, cfg: JudgeConfig) -> str:
    if p < cfg.fail_alpha:
        return "fail"
    return "pass" if upper <= cfg.margin[metric] else "inconclusive"


def _failure_rate(c: ArmSample, s: ArmSample, cfg: JudgeConfig) -> MetricJudgement:
    metric = "failure_rate"
    n1, a, n2, b = c.attempts, c.failed_attempts, s.attempts, s.failed_attempts
    figures = (a / n1 if n1 else None, b / n2 if n2 else None)
    if n1 < cfg.min_samples or n2 < cfg.min_samples:
        return _short(metric, n1, n2, cfg, 1.0, figures, "too few attempts")
    z_pass, _ = _levels(cfg)
    est, se = katz_log_ratio(a, n1, b, n2)
    p = rate_ratio_p(a, n1, b, n2, cfg.tolerance[metric])
    lo, hi = math.exp(est - z_pass * se), math.exp(est + z_pass * se)
    verdict = _verdict(p, hi, metric, cfg)
    needed = _needed(n1, est, se, metric, cfg, 1.0) if verdict == "inconclusive" else None
    if a == 0 and b == 0 and verdict == "inconclusive":
        needed = None
    head = f"canary fails {_pct(figures[0])} of attempts vs {_pct(figures[1])}"
    return _judgement(metric, verdict, figures, math.exp(est), (lo, hi), p, needed, head, cfg)


def _cost_per_success(c: ArmSample, s: ArmSample, cfg: JudgeConfig, per_task: float) -> MetricJudgement:
    metric = "cost_per_success"
    figures = (
        float(c.cost_sum) / c.successes if c.successes and c.currency else None,
        float(s.cost_sum) / s.successes if s.successes and s.currency else None,
    )
    if c.tasks < cfg.min_samples or s.tasks < cfg.min_samples:
        return _short(metric, c.tasks, s.tasks, cfg, per_task, figures, "too few finished tasks")
    lacking = None
    if c.currency is None or s.currency is None:
        lacking = "no priced tasks in the " + ("canary" if c.currency is None else "stable") + " arm"
    elif c.currency != s.currency:
        lacking = f"the arms' costs are in different currencies ({c.currency} vs {s.currency})"
    arms = [ratio_of_means(x.tasks, x.cost_sum, x.cost_sq_sum, x.success_cost_sum, x.successes) for x in (c, s)]
    if lacking is None and (arms[0] is None or arms[1] is None):
        lacking = "no successes or no cost in the " + ("canary" if arms[0] is None else "stable") + " arm"
    if lacking is not None or arms[0] is None or arms[1] is None:
        why = f"cost per success not comparable: {lacking}"
        return MetricJudgement(metric, "inconclusive", figures[0], figures[1], None, None, None, None, why)
    z_pass, _ = _levels(cfg)
    est = arms[0][0] - arms[1][0]
    se = math.sqrt(arms[0][1] + arms[1][1])
    log_t = math.log(cfg.tolerance[metric])
    if se > 0:
        p = upper_p((est - log_t) / se)
    else:
        p = 0.0 if est > log_t else 1.0
    lo, hi = math.exp(est - z_pass * se), math.exp(est + z_pass * se)
    verdict = _verdict(p, hi, metric, cfg)
    needed = _needed(c.tasks, est, se, metric, cfg, per_task) if verdict == "inconclusive" else None
    head = f"canary costs {_num(figures[0])} vs {_num(figures[1])} {c.currency} minor units per success"
    return _judgement(metric, verdict, figures, math.exp(est), (lo, hi), p, needed, head, cfg)


def _shift_metric(
    metric: str,
    ch: Mapping[int, int],
    sh: Mapping[int, int],
    q: float,
    per: float,
    cfg: JudgeConfig,
    full: bool,
) -> MetricJudgement:
    n_c, n_s = sum(ch.values()), sum(sh.values())
    figures = (quantile(ch, q), quantile(sh, q)) if full else (None, None)
    samples = "successful attempts" if metric == "run_time" else "finished tasks"
    if n_c < cfg.min_samples or n_s < cfg.min_samples:
        return _short(metric, n_c, n_s, cfg, per, figures, f"too few {samples}")
    ranks = Ranks(ch, sh)
    z_pass, _ = _levels(cfg)
    p = ranks.p_greater(round(math.log(cfg.tolerance[metric]) / LOG_GAMMA))
    d_margin = math.floor(math.log(cfg.margin[metric]) / LOG_GAMMA + 1e-9)
    passes = ranks.z(d_margin, 0.5) <= -z_pass
    verdict = "fail" if p < cfg.fail_alpha else "pass" if passes else "inconclusive"
    if not full:
        return MetricJudgement(metric, verdict, figures[0], figures[1], None, None, p, None, "")
    hl = ranks.hodges_lehmann()
    lowest, highest = ranks.first, ranks.last
    d_lo = first_shift(lambda d: ranks.z(d, -0.5) < z_pass, hl, lowest, highest) - 1
    d_hi = first_shift(lambda d: ranks.z(d, 0.5) <= -z_pass, hl, lowest, highest)
    # The bound is reported as the verdict's own test found it (z is monotone in d up to
    # tie-variance wobbles): a pass has its upper bound within the margin, and only a pass.
    d_hi = min(d_hi, d_margin) if passes else max(d_hi, d_margin + 1)
    lo = 0.0 if d_lo < lowest else GAMMA**d_lo
    hi = math.inf if d_hi > highest else GAMMA**d_hi
    needed = None
    if verdict == "inconclusive" and lo > 0 and math.isfinite(hi):
        se = (math.log(hi) - math.log(lo)) / (2 * z_pass)
        needed = _needed(n_c, hl * LOG_GAMMA, se, metric, cfg, per)
    if metric == "run_time":
        head = f"canary p90 run time {_ms(figures[0])} vs {_ms(figures[1])}"
    else:
        head = f"canary median tokens {_num(figures[0])} vs {_num(figures[1])}"
    return _judgement(metric, verdict, figures, GAMMA**hl, (lo, hi), p, needed, head, cfg)


# -- words ---------------------------------------------------------------------------


def _judgement(
    metric: str,
    verdict: str,
    figures: tuple[float | None, float | None],
    effect: float,
    ci: tuple[float, float],
    p: float,
    needed: int | None,
    head: str,
    cfg: JudgeConfig,
) -> MetricJudgement:
    level = round(100 * (2 * cfg.pass_confidence - 1))
    tol, margin = cfg.tolerance[metric], cfg.margin[metric]
    # Run time and tokens are judged by the shift of the whole distribution (Hodges–Lehmann,
    # on the log scale), not by the ratio of the p90s / medians shown beside it: say so.
    what = "shift " if metric in ("run_time", "tokens") else ""
    text = f"{head} ({what}×{effect:.2f}, {level} % CI ×{ci[0]:.2f}–×{ci[1]:.2f})"
    if verdict == "fail":
        text += f": worse beyond ×{tol:.2f} (p = {p:.1g})"
    elif verdict == "pass":
        text += f": within ×{margin:.2f}"
    else:
        wait = "no sample size decides at this estimate" if needed is None else f"~{_attempts(needed)}"
        text += f": not yet worse beyond ×{tol:.2f} (p = {p:.2g}) nor shown within ×{margin:.2f}; {wait}"
    return MetricJudgement(metric, verdict, figures[0], figures[1], effect, ci, p, needed, text)


def _summary(verdict: str, metrics: Sequence[MetricJudgement], needed: int | None) -> str:
    passes = sum(m.verdict == "pass" for m in metrics)
    if verdict == "fail":
        failed = [m for m in metrics if m.verdict == "fail"]
        named = ", ".join(f"{m.metric} ×{m.effect:.2f}" if m.effect is not None else m.metric for m in failed)
        return f"fail: worse beyond tolerance on {named}"
    if verdict == "pass":
        return f"pass: all {len(metrics)} metrics within their margins"
    waiting = ", ".join(m.metric for m in metrics if m.verdict == "inconclusive")
    more = f"; ~{_attempts(needed)}" if needed is not None else ""
    return f"inconclusive: {passes} of {len(metrics)} pass, waiting on {waiting}{more}"


def _attempts(n: int) -> str:
    if n > 1_000_000:  # at the current estimate it would practically never decide
        return "over a million more canary attempts"
    return f"{n:,} more canary attempt" + ("" if n == 1 else "s")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x / 1000:.1f} s" if x >= 1000 else f"{x:.0f} ms"


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    if abs(x) >= 1000:
        return f"{x / 1000:.1f} k"
    return f"{x:.2f}"


__all__ = [
    "CANARY_METRICS",
    "DEFAULT",
    "ArmSample",
    "JudgeConfig",
    "Judgement",
    "MetricJudgement",
    "canary_bucket",
    "decide",
    "judge",
]
