"""ecology: deployments per camera, reviews of single boxes, and device alerts (an alert without event)

Revision ID: e001
Revises: m001
"""

import sqlalchemy as sa
from alembic import op

revision = "e001"
down_revision = "m001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=63), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("uncertainty_m", sa.Float(), nullable=True),
        sa.Column("site", sa.String(length=120), nullable=True),
        sa.Column("habitat", sa.String(length=120), nullable=True),
        sa.Column("camera_model", sa.String(length=120), nullable=True),
        sa.Column("camera_height_m", sa.Float(), nullable=True),
        sa.Column("bait", sa.Boolean(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_deployments_device_id_devices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index("ix_deployments_device_start", ["device_id", "start"], unique=False)
    op.create_table(
        "box_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("detection_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("species", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["detection_id"], ["detections.id"], name=op.f("fk_box_reviews_detection_id_detections")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_box_reviews_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_box_reviews")),
    )
    with op.batch_alter_table("box_reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_box_reviews_detection_created", ["detection_id", "created_at"], unique=False
        )
    # A device alert (camera offline, battery low...) belongs to a camera, not to an event.
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute(
        "DELETE FROM alert_deliveries WHERE alert_id IN (SELECT id FROM alerts WHERE event_id IS NULL)"
    )
    op.execute("DELETE FROM alerts WHERE event_id IS NULL")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("box_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_box_reviews_detection_created")
    op.drop_table("box_reviews")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_device_start")
    op.drop_table("deployments")
