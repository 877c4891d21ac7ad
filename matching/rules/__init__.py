"""The hard rules, scores and resources of a round, vectorised over all pairs (and once more in plain Python)."""
