"""Random instances of every scale."""
