"""merge the alerts and dashboard branches: from here on the schema has one head

Every new migration revises the one head (``alembic heads`` prints one line); a test keeps it so.

Revision ID: m001
Revises: a001, d002
"""

revision = "m001"
down_revision = ("a001", "d002")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # a merge point: nothing to change


def downgrade() -> None:
    pass
