"""dashboard: log-in failures per user name and per address, kept across restarts and workers

Revision ID: d003
Revises: w001
"""

import sqlalchemy as sa
from alembic import op

revision = "d003"
down_revision = "w001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("wait_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "key", name="uq_login_failures_kind_key"),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
