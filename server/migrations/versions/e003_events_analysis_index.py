"""ecology: index events by camera, species and time (with offset and count), so the analysis pages
count a year of events from the index alone

Revision ID: e003
Revises: s001
"""

from alembic import op

revision = "e003"
down_revision = "s001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_device_species_started",
            ["device_id", "species", "started_at", "utc_offset_min", "count"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_device_species_started")
