"""The migrations build exactly the tables the models describe, on SQLite and on PostgreSQL, and have
one head, so two developers' migrations can never both apply out of order without anyone noticing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from tests.support.postgres import postgres_cluster
from yaguar.server.schema import alembic_config, upgrade
from yaguar.storage import Base, make_db_engine


def test_the_migrations_have_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"several heads {heads}: point the newest migration's down_revision at the other"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, db_url: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield db_url
        return
    with postgres_cluster() as url:
        yield url


def test_every_table_matches_its_model(database_url: str) -> None:
    engine = make_db_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            built = set(inspect(conn).get_table_names()) - {"alembic_version"}
            context = MigrationContext.configure(conn, opts={"render_as_batch": True, "compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert built == set(Base.metadata.tables)
    assert diffs == [], "the models and the migrations disagree; write a migration:\n" + "\n".join(
        map(repr, diffs)
    )
