"""Alembic environment: the engine comes from outreach.db; the metadata from outreach.models."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from outreach import models  # noqa: F401  (registers every table)
from outreach.db import make_engine
from outreach.learning import learner  # noqa: F401  (and the learning tables)

config = context.config
target_metadata = SQLModel.metadata

engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
