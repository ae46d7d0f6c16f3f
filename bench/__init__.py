"""Load harness (see the benchmark issue); talks to servers only over the network."""
