"""The canary judge's stated error rates, measured: a seeded simulation of whole rollouts.

Owns ``simulate_run`` (one canary rollout, step by step, judged at every look) and
``measure`` (many of them), and the STATED_* figures the README states and
tests/test_canary_error_rates.py re-measures. Pure: no I/O, standard library only.

Traffic. One task type and model as the reference simulator draws them
(fsar_tui/sim/profiles.py; the constants are copied here because the domain imports
nothing outside itself, and a test checks they still agree): implement_idea on
gpt-4o-mini — run time lognormal, median 12 s, sigma 0.5; 6 % of attempts fail; an
attempt reads lognormal(90 k, 0.4) and writes lognormal(4 k, 0.5) tokens (a failed one
a third of that); a task tries up to 3 times. The task records its last attempt's tokens,
as execution_tasks does. Cost follows the simulator's prices: every attempt's tokens at
gpt-4o-mini's list price (15 / 60 minor units per Mtok in / out) plus compute at 120
minor units per hour of run time (the seeder's current rate), failed attempts included.
The canary is the same with its multipliers: failure rate × F, run time × D (every
quantile, so p90 × D), tokens × T (and their cost with them).

Rollout. Each task goes to the canary with probability weight / 100 (its attempts stay
on its arm); every ``look_every`` new canary attempts the judge runs (``decide``, the
judge's own tests) on the window's cumulative histograms and sums. PASS → the next step
with a fresh window (both arms reset); the last step passing → promoted; FAIL → aborted;
more than ``max_canary`` canary attempts in all → undecided.

Measured (DEFAULT judge, steps 10 % → 50 %, 1,000 runs each on the SEEDS below;
re-measured by the test): an identical canary is aborted in 0 of 1,000 runs (0.12 %, 6
of 5,000, on other seeds) and promoted in all, after 1,100 canary attempts at the median
and 2,205 at p95 (98.4 % within 3,000); a canary failing twice as often is aborted in
all, after 404 canary attempts at the median and 811 at p95 (98.2 % within 1,000; 98.8 %
of 3,000 on other seeds); one running 1.5× as long at every quantile is aborted in all,
at the first look (100–101 canary attempts) at the median and p95 (99.6 % within 200).
The STATED_* bounds sit below these with headroom. For orientation (500 runs each):
tokens × 1.5 aborted at the first look; run time × 1.2 aborted in all (p95 901
attempts); failure rate × 1.5 aborted in 97 % (median 1,310 attempts), promoted in 3 %.

Fidelity and speed (3 × 1,000 runs take ~7 s of one core): run-time deviates come from
a table of 4,096 equally likely normal quantiles, token draws from a fixed pool of 4,096
(read, written) pairs, both tabulated per arm with their buckets and costs; how many of
a batch's first attempts fail is drawn as a binomial (geometric gaps), and the tasks
whose first attempt succeeds go through in bulk; the stable tasks between two looks are
one batch — their number is a sum of geometric gaps between canary tasks, and within a
window order does not matter, only the cumulative sums do. Histograms (Counters) and
sums grow incrementally and go to the judge as they are. A look happens once the new
canary attempts reach look_every (canary tasks run in batches of 90 % of the attempts
still missing, whole tasks, so a look overshoots by a retry or two).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import mul
from statistics import NormalDist

from fsar_tui.domain.canary_judge import DEFAULT, ArmSample, JudgeConfig, decide
from fsar_tui.domain.histogram import bucket

# As fsar_tui/sim/profiles.py has them (checked by tests/test_canary_error_rates.py).
TASK_TYPE, MODEL = "implement_idea", "gpt-4o-mini"
MEDIAN_S, SIGMA = 12.0, 0.5  # DURATIONS[(TASK_TYPE, MODEL)]
FAILURE_RATE = 0.06  # TYPES[TASK_TYPE].failure_rate, per attempt
TOKENS_IN, TOKENS_OUT = 90_000, 4_000  # TOKENS[MODEL]; draw_attempt_with's sigmas:
SIGMA_IN, SIGMA_OUT = 0.4, 0.5
PRICE_IN, PRICE_OUT = 15, 60  # PRICE_HISTORY[MODEL], minor units per Mtok
COMPUTE_PER_HOUR = 120  # COMPUTE_RATE_HISTORY's current rate, minor units per hour
MAX_ATTEMPTS = 3

MAX_CANARY = 20_000

# The stated error rates (README "Canary judgement: stated error rates").
STATED_IDENTICAL_ABORTED = 0.01  # at most this fraction of identical canaries aborted
STATED_DETECTED = 0.95  # at least this fraction of bad canaries aborted ...
STATED_FAILURE_2X_N = 1_000  # ... within this many canary attempts (2× failure rate)
STATED_DURATION_1_5X_N = 200  # ... (1.5× run time)
STATED_IDENTICAL_PROMOTED = 0.95  # at least this fraction of identical canaries promoted ...
STATED_PROMOTE_N = 3_000  # ... within this many canary attempts over both steps
# The seeds the stated figures were measured on (and the test re-measures): runs = 1,000 each.
SEEDS = {"identical": 0, "failure_2x": 1_000_000, "duration_1_5x": 2_000_000}

_RUN_BITS, _PAIR_BITS = 12, 12
_NORMAL = NormalDist()
# Run time: 4,096 equally likely normal quantiles (the midpoints of their slices).
_ZS = tuple(_NORMAL.inv_cdf((k + 0.5) / (1 << _RUN_BITS)) for k in range(1 << _RUN_BITS))


def _normal_pairs(seed: int, n: int) -> tuple[tuple[float, float], ...]:
    rng = random.Random(seed)
    return tuple((rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)) for _ in range(n))


# Tokens: a fixed pool of 4,096 independent (read, written) normal pairs, drawn once.
_TOKEN_POOL = _normal_pairs(20261130, 1 << _PAIR_BITS)


@dataclass(frozen=True)
class RunOutcome:
    outcome: str  # 'aborted' | 'promoted' | 'undecided'
    canary_attempts_at_decision: int  # canary attempts over every step until the decision (or the give-up)
    looks: int  # judge runs over every step


@dataclass(frozen=True)
class ErrorRates:
    runs: int
    aborted_fraction: float
    promoted_fraction: float
    undecided: float  # fraction of runs neither aborted nor promoted within max_canary
    p50_canary_attempts_to_abort: int | None
    p95_canary_attempts_to_abort: int | None
    p50_canary_attempts_to_promote: int | None
    p95_canary_attempts_to_promote: int | None
    abort_attempts: tuple[int, ...]  # sorted: canary attempts at each abort
    promote_attempts: tuple[int, ...]  # sorted: canary attempts at each promotion

    def aborted_within(self, attempts: int) -> float:
        """Fraction of all runs aborted within that many canary attempts."""
        return sum(1 for a in self.abort_attempts if a <= attempts) / self.runs if self.runs else 0.0

    def promoted_within(self, attempts: int) -> float:
        """Fraction of all runs promoted within that many canary attempts."""
        return sum(1 for a in self.promote_attempts if a <= attempts) / self.runs if self.runs else 0.0


class _Draws:
    """One revision's behaviour, tabulated: per run-time quantile index its bucket and
    compute cost; per token pair of the pool the task's token bucket and token cost (for
    a succeeded and for a failed attempt); the failure probability."""

    def __init__(self, failure: float, duration: float, tokens: float) -> None:
        self.failure = min(1.0, FAILURE_RATE * failure)
        self.log_keep = math.log1p(-self.failure) if self.failure < 1 else -math.inf
        run_s = [MEDIAN_S * duration * math.exp(SIGMA * z) for z in _ZS]
        self.run_bucket = [bucket(s * 1000) for s in run_s]
        self.run_cost = [s * COMPUTE_PER_HOUR / 3600 for s in run_s]
        self.tok_bucket: list[int] = []
        self.tok_cost: list[float] = []
        self.tok_bucket_failed: list[int] = []
        self.tok_cost_failed: list[float] = []
        for z_in, z_out in _TOKEN_POOL:
            read = max(1, int(TOKENS_IN * tokens * math.exp(SIGMA_IN * z_in)))
            written = max(1, int(TOKENS_OUT * tokens * math.exp(SIGMA_OUT * z_out)))
            self.tok_bucket.append(bucket(read + written))
            self.tok_cost.append((read * PRICE_IN + written * PRICE_OUT) / 1e6)
            self.tok_bucket_failed.append(bucket(read + written // 3))
            self.tok_cost_failed.append((read * PRICE_IN + written // 3 * PRICE_OUT) / 1e6)


class _Arm:
    """One revision's traffic in the current window: its draws and running sums."""

    def __init__(self, draws: _Draws) -> None:
        self.draws = draws
        self.reset()

    def reset(self) -> None:
        self.attempts = self.failed = self.tasks = self.successes = 0
        self.cost = self.cost_sq = self.success_cost = 0.0
        self.run_ms: Counter[int] = Counter()
        self.tokens: Counter[int] = Counter()

    def run_tasks(self, rng: random.Random, tasks: int) -> int:
        """Runs `tasks` tasks to the end; returns the attempts they took. How many first
        attempts fail is drawn as a binomial (geometric gaps); the tasks whose first
        attempt succeeds — most — then go through in bulk, in any order (only the window's
        sums count): a run-time and a token-pair index each, table lookups, Counter updates."""
        t = self.draws
        failing = _binomial(rng, tasks, t.failure, t.log_keep)
        getrandbits = rng.getrandbits
        runs = [getrandbits(_RUN_BITS) for _ in range(tasks - failing)]
        pairs = [getrandbits(_PAIR_BITS) for _ in range(tasks - failing)]
        run_bucket, run_cost, tok_bucket, tok_cost = t.run_bucket, t.run_cost, t.tok_bucket, t.tok_cost
        self.run_ms.update([run_bucket[i] for i in runs])
        self.tokens.update([tok_bucket[i] for i in pairs])
        costs = [run_cost[i] + tok_cost[j] for i, j in zip(runs, pairs, strict=True)]
        first = sum(costs)
        self.cost += first
        self.success_cost += first
        self.cost_sq += sum(map(mul, costs, costs))
        attempts, successes = tasks, tasks - failing
        for _ in range(failing):
            tries, cost, last = self._retried(rng)
            attempts += tries - 1
            self.failed += tries - 1 if last > 0 else tries
            self.tokens[abs(last)] += 1
            self.cost += cost
            self.cost_sq += cost * cost
            if last > 0:
                self.success_cost += cost
                successes += 1
        self.attempts += attempts
        self.tasks += tasks
        self.successes += successes
        return attempts

    def _retried(self, rng: random.Random) -> tuple[int, float, int]:
        """A task whose first attempt failed: (attempts, cost, ±token bucket of the last
        attempt: + when it succeeded, − when the task failed)."""
        t = self.draws
        ir, ip = rng.getrandbits(_RUN_BITS), rng.getrandbits(_PAIR_BITS)
        cost = t.run_cost[ir] + t.tok_cost_failed[ip]
        for tries in range(2, MAX_ATTEMPTS + 1):
            ir, ip = rng.getrandbits(_RUN_BITS), rng.getrandbits(_PAIR_BITS)
            if rng.random() >= t.failure:
                self.run_ms[t.run_bucket[ir]] += 1
                return tries, cost + t.run_cost[ir] + t.tok_cost[ip], t.tok_bucket[ip]
            cost += t.run_cost[ir] + t.tok_cost_failed[ip]
        return MAX_ATTEMPTS, cost, -t.tok_bucket_failed[ip]

    def sample(self, revision: int) -> ArmSample:
        return ArmSample(
            revision=revision,
            attempts=self.attempts,
            failed_attempts=self.failed,
            run_ms=self.run_ms,
            tokens=self.tokens,
            tasks=self.tasks,
            successes=self.successes,
            cost_sum=Decimal(self.cost),
            cost_sq_sum=Decimal(self.cost_sq),
            success_cost_sum=Decimal(self.success_cost),
            currency="USD" if self.tasks else None,
        )


def simulate_run(
    seed: int,
    *,
    failure_multiplier: float = 1.0,
    duration_multiplier: float = 1.0,
    token_multiplier: float = 1.0,
    steps: Sequence[float] = (10, 50),
    config: JudgeConfig = DEFAULT,
    max_canary: int = MAX_CANARY,
) -> RunOutcome:
    """One rollout of a canary through `steps` (weights in %), judged every look_every
    canary attempts; see the module docstring."""
    draws = _Draws(1.0, 1.0, 1.0), _Draws(failure_multiplier, duration_multiplier, token_multiplier)
    return _run(seed, draws, steps, config, max_canary)


def _binomial(rng: random.Random, n: int, p: float, log_keep: float) -> int:
    """Binomial(n, p), exactly, by geometric gaps between successes: O(n·p) draws."""
    if p <= 0.0:
        return 0
    if log_keep == -math.inf:
        return n
    uniform, log = rng.random, math.log
    count, at = 0, int(log(1.0 - uniform()) / log_keep)
    while at < n:
        count += 1
        at += 1 + int(log(1.0 - uniform()) / log_keep)
    return count


def _run(
    seed: int, draws: tuple[_Draws, _Draws], steps: Sequence[float], config: JudgeConfig, max_canary: int
) -> RunOutcome:
    rng = random.Random(seed)
    stable, canary = _Arm(draws[0]), _Arm(draws[1])
    total = looks = 0
    for weight in steps:
        share = weight / 100
        log_miss = math.log1p(-share) if share < 1 else -math.inf
        stable.reset()
        canary.reset()
        while True:
            new = canary_tasks = 0
            while new < config.look_every:  # a task's attempts stay together: stop at its end
                batch = max(1, int((config.look_every - new) * 0.9))
                new += canary.run_tasks(rng, batch)
                canary_tasks += batch
            # Stable tasks before each canary task: geometric gaps, drawn at once.
            if log_miss > -math.inf:
                uniform, log = rng.random, math.log
                stable.run_tasks(rng, sum([int(log(1.0 - uniform()) / log_miss) for _ in range(canary_tasks)]))
            total += new
            looks += 1
            verdict = decide(canary.sample(2), stable.sample(1), config)
            if verdict == "fail":
                return RunOutcome("aborted", total, looks)
            if verdict == "pass":
                break
            if total >= max_canary:
                return RunOutcome("undecided", total, looks)
    return RunOutcome("promoted", total, looks)


def measure(
    runs: int = 1000,
    seed0: int = 0,
    *,
    failure_multiplier: float = 1.0,
    duration_multiplier: float = 1.0,
    token_multiplier: float = 1.0,
    steps: Sequence[float] = (10, 50),
    config: JudgeConfig = DEFAULT,
    max_canary: int = MAX_CANARY,
) -> ErrorRates:
    """simulate_run for seeds seed0 … seed0 + runs − 1, summarised."""
    draws = _Draws(1.0, 1.0, 1.0), _Draws(failure_multiplier, duration_multiplier, token_multiplier)
    outcomes = [_run(seed, draws, steps, config, max_canary) for seed in range(seed0, seed0 + runs)]
    aborts = sorted(o.canary_attempts_at_decision for o in outcomes if o.outcome == "aborted")
    promotes = sorted(o.canary_attempts_at_decision for o in outcomes if o.outcome == "promoted")
    undecided = sum(o.outcome == "undecided" for o in outcomes)
    n = max(1, runs)
    return ErrorRates(
        runs=runs,
        aborted_fraction=len(aborts) / n,
        promoted_fraction=len(promotes) / n,
        undecided=undecided / n,
        p50_canary_attempts_to_abort=_rank(aborts, 0.5),
        p95_canary_attempts_to_abort=_rank(aborts, 0.95),
        p50_canary_attempts_to_promote=_rank(promotes, 0.5),
        p95_canary_attempts_to_promote=_rank(promotes, 0.95),
        abort_attempts=tuple(aborts),
        promote_attempts=tuple(promotes),
    )


def _rank(values: Sequence[int], q: float) -> int | None:
    """The nearest-rank q-quantile of sorted values (None when empty)."""
    if not values:
        return None
    return values[max(0, math.ceil(q * len(values)) - 1)]
