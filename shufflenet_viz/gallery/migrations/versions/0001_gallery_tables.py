"""The gallery's tables: rooms, photos (bytes in the database), predictions, rate-limit buckets.

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
        "rooms",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("join_code", sa.String(12), nullable=False, unique=True),
        sa.Column("teacher_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("locked", sa.Boolean, nullable=False),
        sa.Column("moderated", sa.Boolean, nullable=False),
        sa.Column("left_model", sa.String(80), nullable=False),
        sa.Column("right_model", sa.String(80), nullable=False),
        sa.Column("student_cap", sa.Integer, nullable=False),
        sa.Column("room_cap", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "photos",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("room_id", sa.String(32), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("student", sa.String(64), nullable=False),
        sa.Column("delete_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.Column("thumbnail", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "predictions",
        sa.Column("photo_id", sa.String(32), sa.ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model_name", sa.String(80), primary_key=True),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("room_id", sa.String(32), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=True,
                  index=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("rate_buckets", "predictions", "photos", "rooms"):
        op.drop_table(table)
