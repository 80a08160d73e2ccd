"""The application's next migration, run on PostgreSQL after the move: a new column, a named constraint dropped."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.add_column("item", sa.Column("isbn", sa.String(13), nullable=True))
    op.drop_constraint(op.f("ck_item_weight_positive"), "item", type_="check")


def downgrade():
    op.drop_column("item", "isbn")
