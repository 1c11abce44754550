"""album posting time and length, chapter ends

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("albums") as batch:
        batch.add_column(sa.Column("duration_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("album_tracks") as batch:
        batch.add_column(sa.Column("end_s", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("album_tracks") as batch:
        batch.drop_column("end_s")
    with op.batch_alter_table("albums") as batch:
        batch.drop_column("posted_at")
        batch.drop_column("duration_s")
