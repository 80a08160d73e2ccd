"""Alembic's environment: the database from PGFERRY_TEST_DB, types compared (alembic check)."""

import sys
from pathlib import Path

from alembic import context

sys.path.insert(0, str(Path(__file__).parent.parent))
from models import Base, engine

with engine().connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
