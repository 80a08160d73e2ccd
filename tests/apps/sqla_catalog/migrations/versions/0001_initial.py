"""initial: the models' tables, as the models say (a native enum type or not: see models.py)"""

import sys
from pathlib import Path

from alembic import op

sys.path.insert(0, str(Path(__file__).parents[2]))
from models import Base

revision = "0001"
down_revision = None


def upgrade():
    Base.metadata.create_all(op.get_bind())


def downgrade():
    Base.metadata.drop_all(op.get_bind())
