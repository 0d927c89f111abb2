"""`make bench` entry point.

No benchmark exists yet: the first ones (seed rate, claim throughput, event latency)
arrive with the executor issue. This says so instead of printing an empty table.
"""

import sys

print("bench: no benchmarks yet (placeholder until the executor issue adds them)", file=sys.stderr)
sys.exit(0)
