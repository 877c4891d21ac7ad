"""Alembic environment: runs online against the URL set in the programmatic config."""

from __future__ import annotations

from alembic import context

import models  # noqa: F401  (registers every table on the metadata)
from models.base import Base
from models.db import make_engine
from models.migrate import ours

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set"
engine = make_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=ours,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
