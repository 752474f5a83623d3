"""species classifiers chosen while the station runs (``yaguar-station classifiers use``)

Revision ID: s001
Revises: e002
"""

import sqlalchemy as sa
from alembic import op

revision = "s001"
down_revision = "e002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classifier_choices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chosen_by", sa.String(length=64), nullable=False),
        sa.Column("classifiers", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("classifier_choices")
