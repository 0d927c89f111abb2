"""The simulator's one table of parameters: how each (task_type, ai_model) behaves.

Durations are lognormal: median seconds and sigma (shape) per (type, model) —
self_improvement slowest, implement_idea fastest. Each type has a traffic weight, a
failure rate, a model mix and a list of realistic error texts; each model has token
draws and a price history. `draw_attempt()` turns (seed, task id, attempt) into an
outcome deterministically, so a run's outcomes do not depend on which worker won
the claim race.

Money, chosen so the fleet reads like a plausible business (issue 17): ROI ~115–125 %
per currency over a 30-day seed (USD only), the simulator's the same profiles.
- Cost: list prices per Mtok (gpt-4o-mini $0.15/$0.60; gpt-4o $5/$15, then $2.50/$10
  for the last 14 days; claude-3-5-sonnet $3/$15); an agent attempt reads ~90–150 k
  tokens and writes 4–8 k (a failed one a third of that), so an attempt costs ~1.7 ¢
  (gpt-4o-mini) to ~60 ¢; compute $0.90/h, then $1.20/h for the last 10 days. A task
  costs ~45 ¢ on average (~92 % model, ~8 % compute; failures retry up to 3 times at
  6–15 % per attempt).
- Revenue: 7.5 % of successful idea tasks bring a customer to checkout (a payment
  intent); 80 % pay, 10 % are declined (generic_decline, insufficient_funds,
  do_not_honor, card_declined, expired_card, incorrect_cvc, processing_error), 10 %
  abandon. A plan is $5, $9, $19, $29 or $49 (Stripe's 2.9 % + 30 ¢ fee); 4 % of
  charges are refunded (median 12 h later), 0.5 % disputed (median 5 days, $15 fee):
  ~$1.25 of net revenue per successful idea task, ~$1 per task.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

# (task_type, ai_model) -> (median run time in seconds, lognormal sigma)
DURATIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("implement_idea", "gpt-4o-mini"): (12.0, 0.5),
    ("implement_idea", "gpt-4o"): (18.0, 0.55),
    ("implement_idea", "claude-3-5-sonnet"): (22.0, 0.6),
    ("idea_implementation", "gpt-4o-mini"): (55.0, 0.6),
    ("idea_implementation", "gpt-4o"): (80.0, 0.65),
    ("idea_implementation", "claude-3-5-sonnet"): (95.0, 0.7),
    ("self_improvement", "gpt-4o-mini"): (150.0, 0.7),
    ("self_improvement", "gpt-4o"): (240.0, 0.75),
    ("self_improvement", "claude-3-5-sonnet"): (300.0, 0.8),
}

ERRORS: dict[str, list[str]] = {
    "implement_idea": [
        "openai.RateLimitError: Error code: 429 - Rate limit reached for requests per min (RPM): Limit 500",
        "TimeoutError: model call exceeded 120s",
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0) while parsing model output",
        "git push rejected: non-fast-forward (branch idea/landing-copy moved)",
    ],
    "idea_implementation": [
        'psycopg.errors.UndefinedColumn: column "ai_model" of relation "execution_tasks" does not exist',
        "pytest: 3 failed, 41 passed in 12.4s",
        "ContextWindowExceededError: prompt is 131,412 tokens, model limit is 128,000",
        "subprocess.CalledProcessError: Command '['npm', 'run', 'build']' returned non-zero exit status 1.",
    ],
    "self_improvement": [
        "TimeoutError: model call exceeded 300s",
        "AssertionError: benchmark regression: p90 run time +18% vs baseline",
        "anthropic.APIStatusError: Error code: 529 - overloaded_error",
        "refused: proposed change touches protected path alembic/versions/",
    ],
}


@dataclass(frozen=True)
class TypeProfile:
    weight: float
    failure_rate: float
    models: dict[str, float]
    earns_revenue: bool


TYPES: dict[str, TypeProfile] = {
    "implement_idea": TypeProfile(0.45, 0.06, {"gpt-4o-mini": 0.6, "gpt-4o": 0.3, "claude-3-5-sonnet": 0.1}, True),
    "idea_implementation": TypeProfile(0.35, 0.10, {"gpt-4o-mini": 0.3, "gpt-4o": 0.5, "claude-3-5-sonnet": 0.2}, True),
    "self_improvement": TypeProfile(0.20, 0.15, {"gpt-4o": 0.6, "claude-3-5-sonnet": 0.4}, False),
}

TYPE_WEIGHTS: dict[str, float] = {name: p.weight for name, p in TYPES.items()}

# ai_model -> (median input tokens, median output tokens) per attempt: an agent loop
# re-sends its growing context every turn, so an attempt reads ~100 k tokens.
TOKENS: dict[str, tuple[int, int]] = {
    "gpt-4o-mini": (90_000, 4_000),
    "gpt-4o": (120_000, 6_000),
    "claude-3-5-sonnet": (150_000, 8_000),
}

# ai_model -> [(days before now it took effect, input, output minor units per Mtok)], USD
# (the providers' list prices: $0.15/$0.60, $5/$15 then $2.50/$10, $3/$15 per Mtok).
PRICE_HISTORY: dict[str, list[tuple[int, Decimal, Decimal]]] = {
    "gpt-4o-mini": [(400, Decimal("15"), Decimal("60"))],
    "gpt-4o": [(400, Decimal("500"), Decimal("1500")), (14, Decimal("250"), Decimal("1000"))],
    "claude-3-5-sonnet": [(400, Decimal("300"), Decimal("1500"))],
}
CURRENCY = "USD"
# [(days before now it took effect, minor units per hour of run time)], in CURRENCY.
COMPUTE_RATE_HISTORY: list[tuple[int, Decimal]] = [(400, Decimal("90")), (10, Decimal("120"))]

IDEAS = [f"idea_{n:03d}" for n in range(1, 41)]

# Money (drawn by sim/payments.py). A successful idea task brings a customer to checkout
# this often: a payment intent (10 M tasks: ~540 k intents, ~430 k charges, ~0.9 M ledger
# entries), from this many customers (few charges each, as in real life: the fraud
# checks' velocity and country rules then flag outliers, not everyone).
INTENT_RATE = 0.075
CUSTOMERS = 50_000
CARD_COUNTRIES = {"US": 70, "GB": 10, "DE": 10, "BR": 6, "NG": 4}
# Plans, in minor units of CURRENCY: a self-serve product's $5–$49 tiers.
CHARGE_AMOUNTS = [500, 900, 1900, 2900, 4900]
# What becomes of an intent: most succeed; card payments are declined a few % of the
# time; some customers leave the checkout (created, never confirmed).
INTENT_OUTCOMES = {"succeeded": 80, "payment_failed": 10, "abandoned": 10}
# Why a payment fails, as Stripe's last_payment_error gives it: (code, decline_code or None).
DECLINES: dict[tuple[str, str | None], float] = {
    ("card_declined", "generic_decline"): 30,
    ("card_declined", "insufficient_funds"): 30,
    ("card_declined", "do_not_honor"): 8,
    ("card_declined", None): 7,
    ("expired_card", None): 10,
    ("incorrect_cvc", None): 10,
    ("processing_error", None): 5,
}
# After a successful charge: refunded this often, disputed this often (plus a dispute fee).
REFUND_RATE = 0.04
DISPUTE_RATE = 0.005
DISPUTE_FEE_MINOR = 1500
# Seconds from checkout opening to the card's outcome; (median, sigma, least, most)
# seconds from the charge to a refund (hours to days) and to a dispute (days to weeks).
CHECKOUT_S = (3.0, 45.0)
REFUND_DELAY_S = (12 * 3600.0, 1.0, 1800.0, 14 * 86400.0)
DISPUTE_DELAY_S = (5 * 86400.0, 0.6, 86400.0, 45 * 86400.0)


def attempt_rng(seed: int, task_id: int, attempt: int) -> random.Random:
    return random.Random(f"{seed}:{task_id}:{attempt}")


_CUMULATIVE: dict[int, tuple[Mapping[Any, float], list[Any], list[float]]] = {}
K = TypeVar("K")


def weighted(rng: random.Random, table: Mapping[K, float]) -> K:
    """A key of `table` drawn by weight (one random() call; hot in bulk seeding)."""
    cached = _CUMULATIVE.get(id(table))
    if cached is None or cached[0] is not table:  # ids are reused once a dict is freed
        keys, cum, total = list(table), [], 0.0
        for w in table.values():
            total += w
            cum.append(total)
        cached = _CUMULATIVE[id(table)] = (table, keys, cum)
    _, keys, cum = cached
    return keys[min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(keys) - 1)]


def draw_task(rng: random.Random) -> tuple[str, str, str, dict]:
    """A new task: (task_type, ai_model, idea_id, payload)."""
    task_type = weighted(rng, TYPE_WEIGHTS)
    model = weighted(rng, TYPES[task_type].models)
    idea = rng.choice(IDEAS)
    payload: dict = {"idea_id": idea}
    if task_type == "self_improvement":
        payload = {"target": rng.choice(["scheduler", "roi-dashboard", "retry-policy", "prompt-library"])}
    else:
        payload["prompt"] = rng.choice(
            [
                "landing page copy",
                "pricing page A/B test",
                "checkout friction fix",
                "onboarding email sequence",
                "fraud rule for card testing",
            ]
        )
    if rng.random() < 0.05:
        # Agents do paste personal data and secrets into payloads; the panel must redact them.
        payload["requested_by"] = rng.choice(["ops+alice@example.com", "+1 415 555 0142"])
    return task_type, model, idea, payload


@dataclass(frozen=True)
class AttemptOutcome:
    duration_s: float
    succeeded: bool
    error: str | None
    input_tokens: int
    output_tokens: int
    result: dict | None


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    # gauss() is about twice as fast as lognormvariate()'s normalvariate (bulk seeding).
    return median * math.exp(sigma * rng.gauss(0.0, 1.0))


@dataclass(frozen=True)
class Multipliers:
    """A revision artifact's optional `simulate` section: how the reference executor makes a
    revision better or worse than another (issue 19: the demo's and the tests' canaries).
    Each factor defaults to 1; anything that is not a finite number in (0, 100] is ignored
    (an artifact is operator input: it must not crash a worker)."""

    failure_rate: float = 1.0
    duration: float = 1.0
    tokens: float = 1.0

    @classmethod
    def from_artifact(cls, section: object) -> Multipliers:
        if not isinstance(section, dict):
            return cls()

        def factor(key: str) -> float:
            value = section.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return 1.0
            return float(value) if math.isfinite(value) and 0 < value <= 100 else 1.0

        return cls(factor("failure_rate_multiplier"), factor("duration_multiplier"), factor("token_multiplier"))


SAME = Multipliers()


def draw_attempt(
    seed: int, task_id: int, attempt: int, task_type: str, model: str, multipliers: Multipliers = SAME
) -> AttemptOutcome:
    """The outcome of one attempt, determined by (seed, task id, attempt) alone — and the
    revision's multipliers, applied to the same draws (so a canary differs from stable by
    its multipliers only, not by luck)."""
    return draw_attempt_with(attempt_rng(seed, task_id, attempt), task_type, model, multipliers)


def draw_attempt_with(
    rng: random.Random, task_type: str, model: str, multipliers: Multipliers = SAME
) -> AttemptOutcome:
    median, sigma = DURATIONS.get((task_type, model), (60.0, 0.7))
    duration = _lognormal(rng, median, sigma) * multipliers.duration
    in_med, out_med = TOKENS.get(model, (8_000, 1_200))
    input_tokens = max(1, int(_lognormal(rng, in_med, 0.4) * multipliers.tokens))
    output_tokens = max(1, int(_lognormal(rng, out_med, 0.5) * multipliers.tokens))
    profile = TYPES.get(task_type)
    failure_rate = min(1.0, (profile.failure_rate if profile else 0.1) * multipliers.failure_rate)
    if rng.random() < failure_rate:
        errors = ERRORS.get(task_type, ["RuntimeError: unknown failure"])
        error = errors[int(rng.random() * len(errors))]
        return AttemptOutcome(duration, False, error, input_tokens, output_tokens // 3, None)
    result = {"summary": f"{task_type} done", "files_changed": 1 + int(rng.random() * 12)}
    if task_type != "self_improvement":
        result["pr"] = 100 + int(rng.random() * 9900)
    return AttemptOutcome(duration, True, None, input_tokens, output_tokens, result)


def external_id(seed: int, task_id: int, attempt: int, kind: str) -> str:
    digest = hashlib.sha1(f"{seed}:{task_id}:{attempt}:{kind}".encode()).hexdigest()[:24]
    return f"evt_{digest}"


def mean_run_s() -> float:
    """The mean run time of an enqueued task, in simulated seconds (lognormal means,
    weighted by the type and model mix; retries of failed attempts add ~failure rate)."""
    total = weight = 0.0
    for name, profile in TYPES.items():
        for model, share in profile.models.items():
            median, sigma = DURATIONS.get((name, model), (60.0, 0.7))
            w = profile.weight * share
            total += w * median * math.exp(sigma * sigma / 2) * (1 + profile.failure_rate)
            weight += w
    return total / weight


def sustainable_rate(workers: int, time_scale: float, utilisation: float = 0.8) -> float:
    """New tasks per second that `workers` keep up with at `time_scale` (each busy at
    most `utilisation`): above it the queue grows and the lowest priorities starve."""
    return workers * utilisation / (mean_run_s() * time_scale)
