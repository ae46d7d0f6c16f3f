"""``python -m bench``: the load harness entry point.

The harness (fan-out, rooms, cluster, join and chat scenarios against
baselines) is the benchmark issue's work; until it lands this says so and
exits 0 so ``make bench`` stays a working command.
"""

import sys

print("collab bench: the load harness is not implemented yet (see the benchmark issue).")
sys.exit(0)
