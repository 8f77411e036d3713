"""Alembic environment: migrates on the connection (or engine) handed over by storage.migrate,
or on the URL for the `alembic` command line. Code never puts the URL in Alembic's ConfigParser:
a `%` in a percent-encoded password breaks its interpolation."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine, create_engine
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


def run_migrations() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as new_connection:
        run_on(new_connection)


run_migrations()
