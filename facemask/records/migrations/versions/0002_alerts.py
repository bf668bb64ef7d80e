"""Alert events (facemask.records.alerts): camera, time, rule, message, value, snapshot file.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("snapshot", sa.String(300), nullable=False),
    )
    op.create_index("ix_alerts_camera_at", "alerts", ["camera", "at"])


def downgrade() -> None:
    op.drop_table("alerts")
