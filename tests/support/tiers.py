"""The fast tier (`make test-fast`, FSAR_TEST_FAST=1) starts no servers: what would
start one calls refuse_in_fast_tier first, so a test that needs one after all fails
saying so. Imports nothing heavy (the xdist workers of the fast tier import it too)."""

from __future__ import annotations

import os


def refuse_in_fast_tier(what: str) -> None:
    if os.environ.get("FSAR_TEST_FAST") == "1":
        raise RuntimeError(
            f"FSAR_TEST_FAST=1: this test needs {what}, which the fast tier does not start; "
            "it belongs in the `services` tier (see tests/conftest.py)"
        )
