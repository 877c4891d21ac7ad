"""Vårdmatch persistence (SQLAlchemy models)."""
