"""Benchmarks: eventkit side by side with the raw clients, in one run, as ratios."""
