"""initial"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "shelf",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("code", sa.Uuid(), nullable=False),
        sa.Column("opened", sa.DateTime(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("label"),
    )
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shelf_id", sa.Integer(), nullable=False),
        sa.Column("price", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("lasts", sa.Interval(), nullable=False),
        sa.Column("opens_at", sa.Time(), nullable=False),
        sa.Column("made", sa.Date(), nullable=False),
        sa.Column("fragile", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Enum("draft", "live", name="status"), nullable=False),
        sa.ForeignKeyConstraint(["shelf_id"], ["shelf.id"], initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("item")
    op.drop_table("shelf")
    sa.Enum(name="status").drop(op.get_bind(), checkfirst=True)
