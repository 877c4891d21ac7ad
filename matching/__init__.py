"""Vårdmatch's matching engine: pure Python over numpy, scipy, rapidfuzz and OR-Tools.

It never imports the service (api, models), fastapi or sqlalchemy.
"""
