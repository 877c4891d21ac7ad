"""Vårdmatch service and command line."""
