"""The first records schema: face counts per minute, people, camera status changes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_minutes",
        sa.Column("camera", sa.String(64), primary_key=True),
        sa.Column("minute", sa.DateTime, primary_key=True),
        sa.Column("label", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("person_key", sa.String(80), nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
        sa.Column("first_minute", sa.DateTime, nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("votes", sa.JSON, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
    )
    op.create_index("uq_people_camera_key", "people", ["camera", "person_key"], unique=True)
    op.create_index("ix_people_camera_first_minute", "people", ["camera", "first_minute"])
    op.create_table(
        "camera_status",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
    )
    op.create_index("ix_camera_status_camera_at", "camera_status", ["camera", "at"])


def downgrade() -> None:
    op.drop_table("camera_status")
    op.drop_table("people")
    op.drop_table("face_minutes")
