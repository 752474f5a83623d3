"""ecology: device_conditions, what the device alerts remember of each camera's troubles

Revision ID: e002
Revises: e001
"""

import sqlalchemy as sa
from alembic import op

revision = "e002"
down_revision = "e001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_conditions",
        sa.Column("device_id", sa.String(length=63), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("told", sa.Boolean(), nullable=False),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "condition", name=op.f("pk_device_conditions")),
    )


def downgrade() -> None:
    op.drop_table("device_conditions")
