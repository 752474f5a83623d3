"""ecology: the hours each camera was heard, per UTC day, kept by triggers; events indexed by species
with camera, offset and count, and by their last change (the analysis pages count from these instead
of a year of rows, and ask cheaply whether anything changed)

The triggers fire on every heartbeat and frame inserted, whoever writes them. On SQLite a migration
that rebuilds the heartbeats or media table (batch mode "move and copy") drops its trigger: such a
migration must create it again (``_sqlite_trigger``).

Revision ID: e004
Revises: d003
"""

import sqlalchemy as sa
from alembic import op

revision = "e004"
down_revision = "d003"
branch_labels = None
depends_on = None

SOURCES = {"heartbeats": "received_at", "media": "captured_at"}


def _sqlite_trigger(table: str, column: str) -> str:
    return f"""
CREATE TRIGGER {table}_heard AFTER INSERT ON {table} WHEN NEW.{column} IS NOT NULL
BEGIN
    INSERT INTO device_heard_days (device_id, day, hours)
    VALUES (NEW.device_id, substr(NEW.{column}, 1, 10), 1 << CAST(substr(NEW.{column}, 12, 2) AS INTEGER))
    ON CONFLICT (device_id, day) DO UPDATE SET hours = hours | excluded.hours;
END"""  # noqa: S608 - names from SOURCES, no input


POSTGRES_FUNCTION = """
CREATE FUNCTION yaguar_note_heard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamp;
BEGIN
    IF TG_TABLE_NAME = 'heartbeats' THEN
        at := NEW.received_at AT TIME ZONE 'UTC';
    ELSE
        at := NEW.captured_at AT TIME ZONE 'UTC';
    END IF;
    IF at IS NOT NULL THEN
        INSERT INTO device_heard_days (device_id, day, hours)
        VALUES (NEW.device_id, at::date, 1 << extract(hour FROM at)::int)
        ON CONFLICT (device_id, day) DO UPDATE SET hours = device_heard_days.hours | excluded.hours;
    END IF;
    RETURN NULL;
END $$"""


def _backfill(sqlite: bool) -> str:
    if sqlite:
        day, hour = "substr(at, 1, 10)", "CAST(substr(at, 12, 2) AS INTEGER)"
    else:
        day, hour = "(at AT TIME ZONE 'UTC')::date", "extract(hour FROM at AT TIME ZONE 'UTC')::int"
    rows = " UNION ALL ".join(
        f"SELECT device_id, {column} AS at FROM {table} WHERE {column} IS NOT NULL"  # noqa: S608
        for table, column in SOURCES.items()
    )
    # The sum of distinct powers of two is their bitwise OR (SQLite has no OR aggregate).
    return f"""
INSERT INTO device_heard_days (device_id, day, hours)
SELECT device_id, day, sum(1 << hour) FROM (
    SELECT DISTINCT device_id, {day} AS day, {hour} AS hour FROM ({rows}) AS heard
) AS hours GROUP BY device_id, day"""  # noqa: S608 - names from SOURCES, no input


def upgrade() -> None:
    op.create_table(
        "device_heard_days",
        sa.Column("device_id", sa.String(length=63), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "day"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_species_cover",
            ["species", "started_at", "device_id", "utc_offset_min", "count"],
            unique=False,
        )
        batch_op.create_index("ix_events_updated", ["updated_at"], unique=False)
    sqlite = _sqlite()
    op.execute(_backfill(sqlite))
    if sqlite:
        for table, column in SOURCES.items():
            op.execute(_sqlite_trigger(table, column))
        return
    op.execute(POSTGRES_FUNCTION)
    for table in SOURCES:
        op.execute(
            f"CREATE TRIGGER {table}_heard AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION yaguar_note_heard()"
        )


def downgrade() -> None:
    for table in SOURCES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_heard" + ("" if _sqlite() else f" ON {table}"))
    if not _sqlite():
        op.execute("DROP FUNCTION IF EXISTS yaguar_note_heard()")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_updated")
        batch_op.drop_index("ix_events_species_cover")
    op.drop_table("device_heard_days")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
