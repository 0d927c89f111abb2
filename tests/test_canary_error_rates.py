"""The canary judge's stated error rates (README, "Canary judgement: stated error
rates"), re-measured: 1,000 seeded rollouts each of an identical canary, one with twice
the failure rate and one with 1.5× the run time (fsar_tui/domain/canary_simulation.py),
against the STATED_* bounds; and the simulation's traffic against the reference
simulator's profile it copies."""

from __future__ import annotations

import inspect
import random
from decimal import Decimal

import pytest

from fsar_tui.domain import canary_simulation as sim
from fsar_tui.domain.histogram import quantile
from fsar_tui.sim import profiles

RUNS = 1_000


def test_the_traffic_is_the_reference_simulators():
    assert profiles.DURATIONS[(sim.TASK_TYPE, sim.MODEL)] == (sim.MEDIAN_S, sim.SIGMA)
    assert profiles.TYPES[sim.TASK_TYPE].failure_rate == sim.FAILURE_RATE
    assert profiles.TOKENS[sim.MODEL] == (sim.TOKENS_IN, sim.TOKENS_OUT)
    source = inspect.getsource(profiles.draw_attempt_with)
    assert f"_lognormal(rng, in_med, {sim.SIGMA_IN})" in source
    assert f"_lognormal(rng, out_med, {sim.SIGMA_OUT})" in source
    assert "output_tokens // 3" in source
    _, price_in, price_out = profiles.PRICE_HISTORY[sim.MODEL][-1]
    assert (price_in, price_out) == (Decimal(sim.PRICE_IN), Decimal(sim.PRICE_OUT))
    assert min(profiles.COMPUTE_RATE_HISTORY)[1] == sim.COMPUTE_PER_HOUR  # the most recent rate


@pytest.mark.parametrize("duration", [1.0, 1.5])
def test_the_simulated_arms_behave_as_drawn(duration):
    arm = sim._Arm(sim._Draws(1.0, duration, 1.0))
    arm.run_tasks(random.Random(1), 40_000)
    assert arm.failed / arm.attempts == pytest.approx(sim.FAILURE_RATE, abs=0.004)
    assert arm.attempts / arm.tasks == pytest.approx(1 + 0.06 + 0.06**2, abs=0.005)
    assert quantile(arm.run_ms, 0.5) == pytest.approx(12_000 * duration, rel=0.02)
    assert quantile(arm.run_ms, 0.9) == pytest.approx(12_000 * duration * 1.8975, rel=0.02)  # e^(0.5·z₀.₉)
    assert quantile(arm.tokens, 0.5) == pytest.approx(94_200, rel=0.03)  # 90 k·e^0 + ~4.2 k written
    assert arm.successes / arm.tasks == pytest.approx(1 - 0.06**3, abs=0.001)
    cost_per_task = float(arm.sample(1).cost_sum) / arm.tasks
    # Per attempt: tokens 1.46 read + 0.27 written, compute 0.45 × duration (minor units); 1.064 attempts a task.
    assert cost_per_task == pytest.approx((1.46 + 0.27 + 0.45 * duration) * 1.064, rel=0.02)


def test_the_simulation_is_deterministic():
    assert sim.simulate_run(5) == sim.simulate_run(5)
    outcome = sim.simulate_run(5, failure_multiplier=4.0)
    assert outcome.outcome == "aborted" and outcome.looks >= 1


def test_an_identical_canary_is_rarely_aborted_and_mostly_promoted():
    rates = sim.measure(RUNS, sim.SEEDS["identical"])
    assert rates.aborted_fraction <= sim.STATED_IDENTICAL_ABORTED, rates
    assert rates.promoted_within(sim.STATED_PROMOTE_N) >= sim.STATED_IDENTICAL_PROMOTED, rates


def test_twice_the_failure_rate_is_aborted():
    rates = sim.measure(RUNS, sim.SEEDS["failure_2x"], failure_multiplier=2.0)
    assert rates.aborted_within(sim.STATED_FAILURE_2X_N) >= sim.STATED_DETECTED, rates


def test_one_and_a_half_times_the_run_time_is_aborted():
    rates = sim.measure(RUNS, sim.SEEDS["duration_1_5x"], duration_multiplier=1.5)
    assert rates.aborted_within(sim.STATED_DURATION_1_5X_N) >= sim.STATED_DETECTED, rates
