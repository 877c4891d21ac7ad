"""Backends and strategies that solve the model: min-cost flow, greedy, CP-SAT, LP/MIP, and the reference solvers."""
