"""Verification, explanations and reports over an instance and its solution."""
