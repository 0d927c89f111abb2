"""Retry and reconnect delays: capped exponential backoff with full jitter.

delay(n) is uniform in [0, min(cap, base * 2**(n-1))] (AWS "full jitter"): retries
of many tasks failing together spread out instead of stampeding back at once.
"""

from __future__ import annotations

import random


def backoff_ceiling(attempt: int, base: float, cap: float) -> float:
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    # Avoid float overflow for huge attempt numbers: the cap is reached long before.
    return min(cap, base * float(2 ** min(attempt - 1, 62)))


def backoff_delay(attempt: int, rng: random.Random, *, base: float = 1.0, cap: float = 300.0) -> float:
    return rng.uniform(0.0, backoff_ceiling(attempt, base, cap))
